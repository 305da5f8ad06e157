# SPDX-License-Identifier: MIT
"""Oracle: lowbit's GGUF writer and reader against the reference Python implementation (PyPI `gguf`).

(a) gguf_roundtrip_tool writes a file with every metadata value type (nested arrays too) and several tensor
    dtypes; gguf.GGUFReader reads every key and tensor and must see exactly what the tool meant to write.
(b) gguf.GGUFWriter writes a file with the same variety; `gguf_roundtrip_tool dump` must report exactly what
    gguf.GGUFReader reports for it (and what this script put in).
Needs LOWBIT_TOOLS_DIR (set by ctest); fails, never skips, when the tool is missing.
"""
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as VT

TYPE_NAMES = {
    VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16", VT.UINT32: "u32", VT.INT32: "i32",
    VT.FLOAT32: "f32", VT.BOOL: "bool", VT.STRING: "string", VT.ARRAY: "array", VT.UINT64: "u64",
    VT.INT64: "i64", VT.FLOAT64: "f64",
}


def norm_float(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def decode_value(parts, i, vtype):
    """Rebuilds a (possibly nested) value from gguf-py's flat `parts` list, starting at parts[i].
    Returns (typed value dict, next index)."""
    vtype = VT(int(vtype))
    name = TYPE_NAMES[vtype]
    if vtype == VT.STRING:  # parts: length, bytes
        return {"type": name, "value": bytes(parts[i + 1]).decode("utf-8")}, i + 2
    if vtype == VT.ARRAY:  # parts: elem type, count, elements...
        etype = VT(int(parts[i][0]))
        count = int(parts[i + 1][0])
        i += 2
        items = []
        for _ in range(count):
            item, i = decode_value(parts, i, etype)
            items.append(item)
        return {"type": name, "elem_type": TYPE_NAMES[etype], "value": items}, i
    x = parts[i][0]
    if vtype in (VT.FLOAT32, VT.FLOAT64):
        return {"type": name, "value": norm_float(x)}, i + 1
    if vtype == VT.BOOL:
        return {"type": name, "value": bool(x)}, i + 1
    return {"type": name, "value": int(x)}, i + 1


def dump_with_gguf_py(path):
    r = gguf.GGUFReader(path)
    kvs = []
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        # field.parts: key length, key bytes, value type, value parts...
        value, end = decode_value(field.parts, 3, field.parts[2][0])
        assert end == len(field.parts), key
        kvs.append({"key": key, "value": value})
    tensors = []
    for t in r.tensors:
        data = np.asarray(t.data).tobytes()
        tensors.append({"name": t.name, "ggml_type": int(t.tensor_type), "ne": [int(x) for x in t.shape],
                        "offset": int(t.data_offset), "nbytes": int(t.n_bytes),
                        "sha256": hashlib.sha256(data).hexdigest()})
        assert len(data) == int(t.n_bytes), t.name
    return {"alignment": r.alignment, "data_offset": r.data_offset, "kvs": kvs, "tensors": tensors}


def normalize(v):
    """Tool JSON -> comparable form (floats as Python floats, f32 compared after rounding to f32)."""
    if v["type"] == "array":
        return {"type": "array", "elem_type": v["elem_type"], "value": [normalize(x) for x in v["value"]]}
    if v["type"] == "f32" and not isinstance(v["value"], str):
        return {"type": "f32", "value": float(np.float32(v["value"]))}
    return v


def compare(what, ours, ref, check_offsets):
    errors = []
    ok = {k["key"]: normalize(k["value"]) for k in ours["kvs"]}
    rk = {k["key"]: normalize(k["value"]) for k in ref["kvs"]}
    if [k["key"] for k in ours["kvs"]] != [k["key"] for k in ref["kvs"]]:
        errors.append(f"{what}: key order differs:\n  {list(ok)}\n  {list(rk)}")
    for key in rk:
        if ok.get(key) != rk[key]:
            errors.append(f"{what}: key {key}: lowbit {ok.get(key)} vs gguf-py {rk[key]}")
    if ours["alignment"] != ref["alignment"]:
        errors.append(f"{what}: alignment {ours['alignment']} vs {ref['alignment']}")
    if len(ours["tensors"]) != len(ref["tensors"]):
        errors.append(f"{what}: {len(ours['tensors'])} tensors vs {len(ref['tensors'])}")
    for a, b in zip(ours["tensors"], ref["tensors"]):
        fields = ["name", "ggml_type", "ne", "nbytes", "sha256"] + (["offset"] if check_offsets else [])
        for f in fields:
            if a[f] != b[f]:
                errors.append(f"{what}: tensor {b['name']} field {f}: lowbit {a[f]} vs gguf-py {b[f]}")
        if check_offsets and b["offset"] % ref["alignment"]:
            errors.append(f"{what}: tensor {b['name']} offset {b['offset']} not aligned")
    return errors


def tool_path():
    tools = os.environ.get("LOWBIT_TOOLS_DIR")
    if not tools:
        sys.exit("LOWBIT_TOOLS_DIR is not set (run through ctest)")
    path = os.path.join(tools, "gguf_roundtrip_tool")
    if not os.access(path, os.X_OK):
        sys.exit(f"{path} is missing: build the gguf_roundtrip_tool target")
    return path


def case_a(tool, tmp):
    path = os.path.join(tmp, "lowbit_written.gguf")
    spec = json.loads(subprocess.run([tool, "write", path], check=True, capture_output=True, text=True).stdout)
    ref = dump_with_gguf_py(path)
    errors = compare("lowbit-written file", spec, ref, check_offsets=False)
    # Layout checks only gguf-py can confirm: data section and every tensor aligned to general.alignment.
    if ref["alignment"] != 64 or ref["data_offset"] % 64:
        errors.append(f"lowbit-written file: alignment {ref['alignment']}, data offset {ref['data_offset']}")
    return errors, len(ref["kvs"]), len(ref["tensors"])


def case_b(tool, tmp):
    path = os.path.join(tmp, "gguf_py_written.gguf")
    rng = np.random.default_rng(1234)
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_uint8("py.u8", 17)
    w.add_int8("py.i8", -5)
    w.add_uint16("py.u16", 65535)
    w.add_int16("py.i16", -1234)
    w.add_uint32("py.u32", 3_000_000_000)
    w.add_int32("py.i32", -7)
    w.add_float32("py.f32", 1.0 / 3.0)
    w.add_bool("py.bool", False)
    w.add_string("py.string", "ĉu ▁ 🦙 \"quoted\"\n")
    w.add_uint64("py.u64", 2**64 - 1)
    w.add_int64("py.i64", -(2**63))
    w.add_float64("py.f64", 1e-310)
    w.add_array("py.arr_i32", [1, -2, 3])
    w.add_array("py.arr_f32", [0.25, -1.5])
    w.add_array("py.arr_str", ["x", "", "▁y"])
    w.add_array("py.arr_bool", [True, False, True])
    w.add_key_value("py.arr_u16", [1, 65535], VT.ARRAY, sub_type=VT.UINT16)
    w.add_key_value("py.arr_f64", [0.5, -2.0], VT.ARRAY, sub_type=VT.FLOAT64)
    w.add_array("py.nested", [[1, 2], [3], [4, 5, 6]])
    w.add_array("py.nested_str", [["a", "b"], ["c"]])
    w.add_tensor("t.f32", rng.standard_normal((3, 5)).astype(np.float32))
    w.add_tensor("t.f16", rng.standard_normal((2, 2, 8)).astype(np.float16))
    w.add_tensor("t.i8", rng.integers(-128, 127, size=(9,), dtype=np.int8))
    w.add_tensor("t.i32", rng.integers(-1000, 1000, size=(1, 2, 3, 4), dtype=np.int32))
    w.add_tensor("t.f64", rng.standard_normal((4,)).astype(np.float64))
    # Block types: raw bytes shaped [rows, bytes per row]; gguf-py turns that into the element shape.
    for name, qt, rows, row_bytes in [("t.q8_0", Q.Q8_0, 2, 34 * 2), ("t.q4_k", Q.Q4_K, 3, 144),
                                      ("t.q6_k", Q.Q6_K, 1, 210 * 2), ("t.bf16", Q.BF16, 2, 2 * 6)]:
        raw = rng.integers(0, 256, size=(rows, row_bytes), dtype=np.uint8)
        w.add_tensor(name, raw, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    ours = json.loads(subprocess.run([tool, "dump", path], check=True, capture_output=True, text=True).stdout)
    ref = dump_with_gguf_py(path)
    errors = compare("gguf-py-written file", ours, ref, check_offsets=True)
    if ours["data_offset"] != ref["data_offset"]:
        errors.append(f"gguf-py-written file: data offset {ours['data_offset']} vs {ref['data_offset']}")
    # Spot checks against what this script put in (independent of both readers).
    kv = {k["key"]: k["value"] for k in ours["kvs"]}
    expect = {"py.u64": 2**64 - 1, "py.i64": -(2**63), "py.u16": 65535, "py.string": "ĉu ▁ 🦙 \"quoted\"\n"}
    for key, want in expect.items():
        if kv.get(key, {}).get("value") != want:
            errors.append(f"gguf-py-written file: {key} = {kv.get(key)}, expected {want}")
    nested = [[x["value"] for x in inner["value"]] for inner in kv["py.nested"]["value"]]
    if nested != [[1, 2], [3], [4, 5, 6]]:
        errors.append(f"gguf-py-written file: py.nested = {nested}")
    shapes = {t["name"]: t["ne"] for t in ours["tensors"]}
    if shapes.get("t.q4_k") != [256, 3] or shapes.get("t.f16") != [8, 2, 2]:
        errors.append(f"gguf-py-written file: shapes {shapes}")
    return errors, len(ref["kvs"]), len(ref["tensors"])


def main():
    tool = tool_path()
    with tempfile.TemporaryDirectory() as tmp:
        errors_a, kvs_a, tensors_a = case_a(tool, tmp)
        errors_b, kvs_b, tensors_b = case_b(tool, tmp)
    for e in errors_a + errors_b:
        print("FAIL", e)
    print(f"lowbit->gguf-py: {kvs_a} keys, {tensors_a} tensors; gguf-py->lowbit: {kvs_b} keys, {tensors_b} tensors")
    return 1 if errors_a or errors_b else 0


if __name__ == "__main__":
    sys.exit(main())
