#!/usr/bin/env bash
# Installs everything lowbit's build and tests need on Debian 12 (run as root, idempotent).
# Debian packages: compiler toolchain, libraries; PyPI: the independent oracles used by tests.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(build-essential cmake ninja-build clang-14 libclang-rt-14-dev clang-format
      libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev libfmt-dev
      libopenblas-dev libcpp-httplib-dev zstd python3-pip
      chromium chromium-driver) # headless browser for the `lowbit serve` chat-page test
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Python oracles (numpy reference forward pass, gguf/safetensors readers and writers, HF tokenizers) and the
# server tests' clients (openai, selenium).
py=${PYTHON:-python3}
"$py" -m pip install -q --disable-pip-version-check -r "$(dirname "$0")/requirements-test.txt"
