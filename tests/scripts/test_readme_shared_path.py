#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# README's test command is `LOWBIT_SHARED=../shared scripts/test.sh`: a path relative to the caller's directory,
# while ctest runs every test in the build directory. Checks (a) README still prints that command, (b) each script
# README names resolves LOWBIT_SHARED (scripts/lib/shared_env.sh) before it changes directory, (c) the resolver
# turns a relative path into the right absolute one from another directory, leaves an absolute one alone, keeps an
# unset one unset, and refuses a missing directory with a message and exit status 3.
import os
import subprocess
import sys
import tempfile

SRC = os.environ.get("LOWBIT_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESOLVER = os.path.join(SRC, "scripts", "lib", "shared_env.sh")
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def resolve(cwd, value):
    env = {k: v for k, v in os.environ.items() if k != "LOWBIT_SHARED"}
    if value is not None:
        env["LOWBIT_SHARED"] = value
    script = f'source "{RESOLVER}"; lowbit_resolve_shared || exit $?; echo "${{LOWBIT_SHARED:-<unset>}}"'
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True)


readme = open(os.path.join(SRC, "README.md"), encoding="utf-8").read()
check("LOWBIT_SHARED=../shared scripts/test.sh" in readme, "README no longer prints the test command")
for name in ("test.sh", "quickstart.sh", "fuzz.sh"):
    text = open(os.path.join(SRC, "scripts", name), encoding="utf-8").read()
    r, c = text.find("lowbit_resolve_shared"), text.find("cd \"$(dirname")
    check(0 <= r < c, f"scripts/{name} must call lowbit_resolve_shared before its cd")

with tempfile.TemporaryDirectory() as tmp:
    shared = os.path.join(tmp, "shared")
    repo = os.path.join(tmp, "main")
    os.makedirs(os.path.join(shared, "data"))
    os.makedirs(repo)
    r = resolve(repo, "../shared")
    check(r.returncode == 0 and r.stdout.strip() == os.path.realpath(shared), f"relative: {r.returncode} {r.stdout!r}")
    r = resolve(tmp, "shared/")
    check(r.returncode == 0 and r.stdout.strip() == os.path.realpath(shared), f"relative 2: {r.stdout!r}")
    r = resolve("/", shared)
    check(r.returncode == 0 and r.stdout.strip() == os.path.realpath(shared), f"absolute: {r.stdout!r}")
    r = resolve(repo, None)
    check(r.returncode == 0 and r.stdout.strip() == "<unset>", f"unset: {r.stdout!r}")
    r = resolve(repo, "../nowhere")
    check(r.returncode == 3 and "is not a directory" in r.stderr and "nowhere" in r.stderr,
          f"missing: {r.returncode} {r.stderr!r}")

print(f"{'ok' if failures == 0 else 'FAILED'}: README shared-path checks ({failures} failures)")
sys.exit(1 if failures else 0)
