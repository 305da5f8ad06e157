# SPDX-License-Identifier: MIT
"""Oracle: lowbit's safetensors writer and reader against the PyPI `safetensors` package (the Rust crate).

1. `st_tool write` (every plain dtype, a scalar, an empty tensor, streamed and in-memory tensors, __metadata__),
   single file and sharded with a small byte limit: `safetensors.deserialize`, `safe_open(framework="numpy")`
   and `safetensors.numpy.load_file` read every file; names, dtypes, shapes, bytes and metadata must equal what
   this script computes independently from the documented byte pattern; the index's weight_map and total_size
   must match the shards.
2. Files written by the package (`save_file` for numpy dtypes, `serialize_file` for BF16, with metadata; and a
   sharded folder from make_tiny_llama.py): `st_tool dump` must report exactly the package's view.
3. Malformed files built here (truncated, huge header length, bad JSON, overlap, hole, size mismatch,
   duplicate name, invalid UTF-8, missing shard): `st_tool dump` exits 3 with a message, and the package
   rejects them too (where it checks the same rule), so the rules agree with the crate.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

try:
    import safetensors
    from safetensors import deserialize, safe_open, serialize_file
    from safetensors.numpy import load_file, save_file
except ImportError as e:  # pragma: no cover
    print("skip:", e)
    sys.exit(77)

TOOLS = os.environ.get("LOWBIT_TOOLS_DIR", "")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
ST = os.path.join(TOOLS, "st_tool")

ELEM = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
NP = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "I16": np.int16,
      "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def expected_tensors():
    """What st_tool write must produce (see its header comment)."""
    specs = [(f"t_{d}", d, [3, 5, 2]) for d in ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"]]
    specs += [("scalar", "F32", []), ("empty", "F16", [0, 4]), ("big", "F32", [64, 32])]
    out = {}
    for i, (name, dt, shape) in enumerate(specs):
        n = int(np.prod(shape, dtype=np.int64)) * ELEM[dt]
        k = np.arange(n, dtype=np.int64)
        b = (k % 2) if dt == "BOOL" else (i * 131 + k * 7 + 3) % 251
        out[name] = (dt, shape, b.astype(np.uint8).tobytes())
    return out


def norm_dtype(d):
    return {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64", "int32": "I32",
            "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}.get(d, d)


def read_with_package(paths):
    """{name: (dtype, shape, bytes)} and metadata, via deserialize + safe_open + load_file."""
    got, meta = {}, {}
    for p in paths:
        with open(p, "rb") as f:
            for name, t in deserialize(f.read()):
                got[name] = (norm_dtype(t["dtype"]), list(t["shape"]), bytes(t["data"]))
        with safe_open(p, framework="numpy") as f:
            meta.update(f.metadata() or {})
            for name in f.keys():
                if got[name][0] != "BF16":
                    a = f.get_tensor(name)
                    check(a.tobytes() == got[name][2], f"safe_open bytes of {name} in {p}")
        if all(got[n][0] != "BF16" for n in got):
            for name, a in load_file(p).items():
                check(a.tobytes() == got[name][2], f"load_file bytes of {name}")
    return got, meta


def part1(tmp):
    exp = expected_tensors()
    for shard in [0, 300]:
        out = os.path.join(tmp, f"w{shard}", "model.safetensors")
        os.makedirs(os.path.dirname(out))
        r = subprocess.run([ST, "write", out] + (["--shard-bytes", str(shard)] if shard else []),
                           capture_output=True, text=True, check=True)
        paths = r.stdout.split()
        files = [p for p in paths if p.endswith(".safetensors")]
        if shard:
            check(len(files) > 3, f"sharding with {shard} bytes produced {len(files)} files")
            idx = json.load(open(paths[-1]))
            check(paths[-1].endswith("model.safetensors.index.json"), "index name")
            check(idx["metadata"]["total_size"] == sum(len(v[2]) for v in exp.values()), "total_size")
            for i, f in enumerate(files):
                check(os.path.basename(f) == f"model-{i + 1:05d}-of-{len(files):05d}.safetensors", f"shard name {f}")
                with open(f, "rb") as fh:
                    names = [n for n, _ in deserialize(fh.read())]
                for n in names:
                    check(idx["weight_map"].get(n) == os.path.basename(f), f"weight_map of {n}")
            check(set(idx["weight_map"]) == set(exp), "weight_map covers all tensors")
        else:
            check(files == [out], f"single file: {paths}")
        for f in files:  # header padded to 8 bytes, as the crate does
            n = struct.unpack("<Q", open(f, "rb").read(8))[0]
            check(n % 8 == 0, f"{f}: header length {n} not a multiple of 8")
        got, meta = read_with_package(files)
        check(set(got) == set(exp), f"names: {sorted(set(got) ^ set(exp))}")
        for name, (dt, shape, b) in exp.items():
            if name in got:
                check(got[name] == (dt, shape, b), f"tensor {name}: {got[name][:2]} vs {(dt, shape)} or bytes differ")
        check(meta == {"format": "pt", "writer": "lowbit"}, f"metadata {meta}")
        # our reader reads our own shards back through the index too
        d = json.loads(subprocess.run([ST, "dump", os.path.dirname(out)], capture_output=True, text=True,
                                      check=True).stdout)
        check(set(d["tensors"]) == set(exp), "st_tool dump of the written folder")


def dump(path):
    r = subprocess.run([ST, "dump", path], capture_output=True, text=True)
    return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else r.stderr)


def part2(tmp):
    rng = np.random.default_rng(3)
    arrays = {"f64": rng.standard_normal((2, 3)), "f32": rng.standard_normal((4, 4)).astype(np.float32),
              "f16": rng.standard_normal((7,)).astype(np.float16), "i64": np.arange(6, dtype=np.int64).reshape(2, 3),
              "i32": np.array([-1, 2, -3], dtype=np.int32), "i16": np.array([[5, -6]], dtype=np.int16),
              "i8": np.array([-128, 127], dtype=np.int8), "u8": np.array([0, 255, 7], dtype=np.uint8),
              "b": np.array([True, False, True]), "scalar": np.array(2.5, dtype=np.float32),
              "z": np.zeros((0, 3), dtype=np.float32)}
    p = os.path.join(tmp, "py.safetensors")
    save_file(arrays, p, metadata={"a": "1", "unicode": "héllo ✓"})
    code, d = dump(p)
    check(code == 0, f"dump of package file: {d}")
    if code == 0:
        check(d["metadata"] == {"a": "1", "unicode": "héllo ✓"}, f"metadata {d['metadata']}")
        for k, a in arrays.items():
            t = d["tensors"].get(k)
            check(t is not None and t["shape"] == list(a.shape) and bytes.fromhex(t["hex"]) == a.tobytes() and
                  t["dtype"] == {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32",
                                 "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}[str(a.dtype)],
                  f"package tensor {k}: {t and (t['dtype'], t['shape'])}")
    p2 = os.path.join(tmp, "bf.safetensors")
    raw = bytes(range(24))
    serialize_file({"w": {"dtype": "bfloat16", "shape": [3, 4], "data": raw}}, p2)
    code, d = dump(p2)
    check(code == 0 and d["tensors"]["w"] == {"dtype": "BF16", "shape": [3, 4], "hex": raw.hex()}, f"bf16: {d}")
    # a sharded folder written with the package (make_tiny_llama.py uses serialize_file)
    m = os.path.join(tmp, "tiny")
    subprocess.run([sys.executable, os.path.join(SRC, "tests", "fixtures", "make_tiny_llama.py"), "--out", m,
                    "--shard-bytes", "20000", "--dtype", "bf16"], check=True)
    code, d = dump(m)
    check(code == 0, f"dump of sharded folder: {d}")
    if code == 0:
        want = {}
        for f in os.listdir(m):
            if f.endswith(".safetensors"):
                with open(os.path.join(m, f), "rb") as fh:
                    for n, t in deserialize(fh.read()):
                        want[n] = {"dtype": norm_dtype(t["dtype"]), "shape": list(t["shape"]), "hex": bytes(t["data"]).hex()}
        check(d["tensors"] == want, "sharded folder: lowbit and the package disagree")


def raw_file(header, data=b"", pad=True, hlen=None):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def part3(tmp):
    good = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}
    cases = {
        "truncated": (raw_file(good, bytes(12))[:-5], True),
        "huge_header": (raw_file(good, bytes(12), hlen=1 << 60), True),
        "header_past_end": (raw_file(good, bytes(12), hlen=4096), True),
        "bad_json": (raw_file(b'{"a": {"dtype": "F32",', bytes(12)), True),
        "overlap": (raw_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)), True),
        "hole": (raw_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                           "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, bytes(12)), True),
        "size_mismatch": (raw_file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)), True),
        "out_of_bounds": (raw_file({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8)), True),
        "duplicate": (raw_file(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                               b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', bytes(8)), False),
        "invalid_utf8": (raw_file(b'{"\xff\xfe":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', bytes(4)), True),
        "unknown_dtype": (raw_file({"a": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)), True),
        "missing_field": (raw_file({"a": {"dtype": "F32", "data_offsets": [0, 4]}}, bytes(4)), True),
    }
    for name, (blob, package_rejects) in cases.items():
        p = os.path.join(tmp, name + ".safetensors")
        open(p, "wb").write(blob)
        code, err = dump(p)
        check(code == 3 and "safetensors file" in err, f"{name}: st_tool exit {code}, stderr {err!r}")
        if package_rejects:
            try:
                with open(p, "rb") as f:
                    deserialize(f.read())
                check(False, f"{name}: the package accepted it (rules disagree)")
            except Exception:
                pass
    # missing shard named in the index
    d = os.path.join(tmp, "missing")
    os.makedirs(d)
    save_file({"x": np.zeros(2, np.float32)}, os.path.join(d, "model-00001-of-00002.safetensors"))
    json.dump({"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors",
                                              "y": "model-00002-of-00002.safetensors"}},
              open(os.path.join(d, "model.safetensors.index.json"), "w"))
    code, err = dump(d)
    check(code == 3 and "model-00002-of-00002.safetensors" in err, f"missing shard: {code} {err!r}")


def main():
    if not TOOLS or not os.path.exists(ST):
        print("st_tool missing (LOWBIT_TOOLS_DIR)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        part1(tmp)
        part2(tmp)
        part3(tmp)
    print("failures:", len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
