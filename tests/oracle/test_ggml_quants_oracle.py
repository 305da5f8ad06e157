# SPDX-License-Identifier: MIT
"""Oracle: lowbit's GGUF block types against gguf-py (llama.cpp's Python package, gguf.quants), both directions.

For Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K on Gaussian rows with outliers and all-zero blocks
(tool tests/tools/ggml_quant_tool.cpp drives the scheme table):
  - gguf.quants.dequantize of lowbit's blocks == lowbit's dequantize (bit for bit);
  - where gguf-py can quantize (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): its bytes == lowbit's bytes, and lowbit's
    dequantize of gguf-py's blocks == gguf-py's dequantize;
  - k-quants, which gguf-py cannot produce: lowbit's dequantize of random valid blocks (bytes drawn at random,
    f16 scales finite) == gguf-py's dequantize.
"""
import os
import subprocess
import sys
import atexit
import shutil
import tempfile

import numpy as np

try:
    from gguf import GGMLQuantizationType as T
    from gguf import quants
except ImportError as e:  # pragma: no cover
    print("skip:", e)
    sys.exit(77)

TOOLS = os.environ.get("LOWBIT_TOOLS_DIR", "")
TOOL = os.path.join(TOOLS, "ggml_quant_tool")
if not TOOLS or not os.path.exists(TOOL):
    print("skip: ggml_quant_tool not built (LOWBIT_TOOLS_DIR=%r)" % TOOLS)
    sys.exit(77)

TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
GGUFPY_QUANTIZES = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"}
# Byte offsets of the f16 scale fields inside each block (patched to finite values in random blocks).
F16_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
              "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}

failures = []
tmp = tempfile.mkdtemp(prefix="lowbit_ggml_oracle_")
atexit.register(shutil.rmtree, tmp, ignore_errors=True)


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def run_tool(mode, qtype, n_per_row, data):
    src = os.path.join(tmp, "in.bin")
    dst = os.path.join(tmp, "out.bin")
    data.tofile(src)
    subprocess.run([TOOL, mode, qtype, str(n_per_row), src, dst], check=True)
    return np.fromfile(dst, dtype=np.uint8 if mode == "quantize" else np.float32)


def test_rows(n_per_row, seed):
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((6, n_per_row)).astype(np.float32)
    rows[1] *= 1e-3
    rows[2, ::37] *= 40.0          # outliers
    rows[3, : n_per_row // 2] = 0   # zero blocks
    rows[4] = 0
    rows[5] = np.abs(rows[5])       # one-signed rows (min = 0 paths)
    return rows


def same_f32(a, b):
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


for name in TYPES:
    qt = T[name]
    block, type_size = quants.GGML_QUANT_SIZES[qt]
    n_per_row = 512
    x = test_rows(n_per_row, 7)
    ours = run_tool("quantize", name, n_per_row, x).reshape(x.shape[0], -1)
    check(ours.shape[1] == n_per_row // block * type_size, f"{name}: row bytes {ours.shape[1]}")
    our_deq = run_tool("dequantize", name, n_per_row, ours).reshape(x.shape)
    their_deq = quants.dequantize(ours, qt).astype(np.float32)
    check(same_f32(our_deq, their_deq),
          f"{name}: gguf-py decodes lowbit's blocks differently (max diff {np.max(np.abs(our_deq - their_deq))})")
    if name in GGUFPY_QUANTIZES:
        theirs = quants.quantize(x, qt)
        n_diff = int(np.count_nonzero(np.any(theirs.reshape(-1, type_size) != ours.reshape(-1, type_size), axis=1)))
        check(n_diff == 0, f"{name}: {n_diff} blocks differ from gguf-py's quantize")
        deq_theirs = run_tool("dequantize", name, n_per_row, theirs).reshape(x.shape)
        check(same_f32(deq_theirs, quants.dequantize(theirs, qt).astype(np.float32)),
              f"{name}: lowbit decodes gguf-py's blocks differently")
    # Random valid blocks: every bit pattern of the quant/scale bytes, finite f16 scales.
    rng = np.random.default_rng(99)
    n_blocks = 64
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in F16_FIELDS[name]:
        scales = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        raw[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    our_rand = run_tool("dequantize", name, block, raw.reshape(-1)).reshape(n_blocks, block)
    their_rand = quants.dequantize(raw, qt).astype(np.float32).reshape(n_blocks, block)
    check(same_f32(our_rand, their_rand),
          f"{name}: random blocks decode differently (max diff {np.max(np.abs(our_rand - their_rand))})")
    print(f"{name}: checked")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("all GGUF block types agree with gguf-py")
