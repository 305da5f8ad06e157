#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The committed src/runtime/tokenizer/unicode_tables.cpp must be exactly what tools/gen_unicode_tables.py
# writes. Skips (77) when this Python's Unicode database differs from the one the table was generated from.
import os
import re
import subprocess
import sys
import unicodedata

src = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
table = os.path.join(src, "src", "runtime", "tokenizer", "unicode_tables.cpp")
with open(table, encoding="utf-8") as f:
    committed = f.read()
m = re.search(r"Unicode ([0-9.]+)\)", committed)
if not m:
    print(f"FAIL: {table} does not name its Unicode version")
    sys.exit(1)
if m.group(1) != unicodedata.unidata_version:
    print(f"skip: table is Unicode {m.group(1)}, this Python has {unicodedata.unidata_version}")
    sys.exit(77)
fresh = subprocess.run([sys.executable, os.path.join(src, "tools", "gen_unicode_tables.py")], check=True,
                       capture_output=True, text=True).stdout
if fresh != committed:
    print(f"FAIL: {table} is stale; run tools/gen_unicode_tables.py > {table}")
    sys.exit(1)
print(f"ok: unicode_tables.cpp matches the generator (Unicode {m.group(1)})")
