#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Independent check of lowbit's AWQ (GEMM) and GPTQ (v1/v2, sym/asym) exports with the Python tools' torch code.

Two steps (torch is only needed for the second; both run on CPU, the second also on CUDA):

  prepare (here, with the lowbit build):  python3 bench/oracle_awq_gptq_device.py prepare OUT_DIR [WHEELS_DIR]
      builds a tiny bf16 llama (tests/fixtures/make_tiny_llama.py), runs build/<dir>/tools/quant_export_tool
      (LOWBIT_TOOLS_DIR) for awq, gptq-v1, gptq-v2, gptq-v1-asym, gptq-v2-asym (group 32), and keeps per export
      only config.json, quant.safetensors (the packed linears) and deq.safetensors (lowbit's dequantized f32
      weights as the runtime loads them: the loader table's output). Small enough to carry to the device.
      WHEELS_DIR (optional) holds `pip download autoawq==0.2.9 --no-deps` (sdist) and `pip download
      auto-gptq==0.7.1 --no-deps --only-binary :all: --python-version 3.11 --platform manylinux2014_x86_64`
      (wheel): their pure-torch files (AutoAWQ packing_utils.py + gemm.py, AutoGPTQ qlinear_cuda_old.py) are
      extracted to OUT_DIR/vendor, so the reference code runs where the packages cannot be installed.
  check (device, torch):                   python3 bench/oracle_awq_gptq_device.py check OUT_DIR [--device cuda]
      dequantizes every packed linear with, in turn,
        AWQ:  awq.utils.packing_utils.dequantize_gemm (AutoAWQ), gptqmodel's copy of it, and a torch port of
              the same formula (unpack_awq + reverse_awq_order + (w - z) * s);
        GPTQ: gptqmodel TorchQuantLinear.dequantize_weight (v1 checkpoints converted to v2 with GPTQModel's own
              converter, or +0x11111111 per qzeros word as it does), and a torch port of AutoGPTQ's
              qlinear_cuda_old dequantization (zeros + 1 for v1);
      and compares each with lowbit's dequantization (max |diff|; scales are f16 so the expected diff is 0 or
      f16 rounding of the product when a path computes in f16). Prints one line per export and path and a
      JSON summary; exit 1 if any available path disagrees beyond 1e-3 relative.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
from oracle_util import load_arrays as read_safetensors  # noqa: E402

MODES = ["awq", "gptq-v1", "gptq-v2", "gptq-v1-asym", "gptq-v2-asym"]
GROUP = 32




def write_safetensors(path, tensors):
    names = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int32): "I32"}
    header, off, blobs = {}, 0, []
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        header[k] = {"dtype": names[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def prepare(out_dir, wheels=None):
    src_dir = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
    tool = os.path.join(os.environ.get("LOWBIT_TOOLS_DIR", ""), "quant_export_tool")
    if not os.path.exists(tool):
        sys.exit("set LOWBIT_TOOLS_DIR to the build's tools/ folder (quant_export_tool)")
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny")
        subprocess.run([sys.executable, os.path.join(src_dir, "tests/fixtures/make_tiny_llama.py"), "--out", model,
                        "--layers", "1", "--hidden", "64", "--ff", "128", "--dtype", "bf16", "--seed", "21"], check=True)
        for mode in MODES:
            exp = os.path.join(tmp, mode)
            subprocess.run([tool, mode, model, exp, exp + ".deq.safetensors", str(GROUP)], check=True)
            dst = os.path.join(out_dir, mode)
            os.makedirs(dst, exist_ok=True)
            shutil.copy(os.path.join(exp, "config.json"), dst)
            q = read_safetensors(os.path.join(exp, "model.safetensors"))
            write_safetensors(os.path.join(dst, "quant.safetensors"),
                              {k: v for k, v in q.items() if k.rsplit(".", 1)[-1] in
                               ("qweight", "qzeros", "scales", "g_idx")})
            shutil.copy(exp + ".deq.safetensors", os.path.join(dst, "deq.safetensors"))
    if wheels:
        vendor_files(wheels, os.path.join(out_dir, "vendor"))
    print("prepared", out_dir)


def vendor_files(wheels, vendor):
    import glob
    import tarfile
    import zipfile

    awq_sdist = glob.glob(os.path.join(wheels, "autoawq-0.2.9.tar.gz"))
    gptq_wheel = glob.glob(os.path.join(wheels, "auto_gptq-0.7.1-*.whl"))
    if awq_sdist:
        with tarfile.open(awq_sdist[0]) as tf:
            for rel in ("awq/utils/module.py", "awq/utils/packing_utils.py", "awq/modules/linear/gemm.py"):
                dst = os.path.join(vendor, rel)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                open(dst, "wb").write(tf.extractfile("autoawq-0.2.9/" + rel).read())
        for pkg in ("awq", "awq/utils", "awq/modules", "awq/modules/linear"):
            open(os.path.join(vendor, pkg, "__init__.py"), "w").close()
        # awq/utils/utils.py imports accelerate; gemm.py needs only get_best_device from it.
        open(os.path.join(vendor, "awq/utils/utils.py"), "w").write(
            "import torch\n\n\ndef get_best_device():\n"
            "    if torch.backends.mps.is_available():\n        return 'mps'\n"
            "    if torch.cuda.is_available():\n        return 'cuda:0'\n    return 'cpu'\n")
    if gptq_wheel:
        with zipfile.ZipFile(gptq_wheel[0]) as zf:
            os.makedirs(os.path.join(vendor, "auto_gptq"), exist_ok=True)
            open(os.path.join(vendor, "auto_gptq", "qlinear_cuda_old.py"), "wb").write(
                zf.read("auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py"))


# ---- torch paths ---------------------------------------------------------------------------------------------

AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]


def awq_port(torch, qweight, qzeros, scales, bits, group):
    """AutoAWQ awq/utils/packing_utils.py (unpack_awq, reverse_awq_order, dequantize_gemm) ported line by line."""
    shifts = torch.arange(0, 32, bits, device=qzeros.device)
    iweights = torch.bitwise_right_shift(qweight[:, :, None], shifts[None, None, :]).to(torch.int8)
    iweights = iweights.view(iweights.shape[0], -1)
    izeros = torch.bitwise_right_shift(qzeros[:, :, None], shifts[None, None, :]).to(torch.int8)
    izeros = izeros.view(izeros.shape[0], -1)
    order = torch.arange(iweights.shape[-1], dtype=torch.int32, device=izeros.device).view(-1, 32 // bits)
    order = order[:, AWQ_REVERSE_ORDER].view(-1)
    izeros = izeros[:, order]
    iweights = iweights[:, order]
    iweights = torch.bitwise_and(iweights, (2**bits) - 1)
    izeros = torch.bitwise_and(izeros, (2**bits) - 1)
    scales = scales.repeat_interleave(group, dim=0)
    izeros = izeros.repeat_interleave(group, dim=0)
    return ((iweights - izeros) * scales).t()  # [N, K]


def load_vendor(vendor):
    """AutoAWQ 0.2.9 / AutoGPTQ 0.7.1 files from their PyPI releases, carried in `vendor` (see prepare)."""
    import importlib.util
    import types

    mods = {}
    if vendor and os.path.isdir(os.path.join(vendor, "awq")):
        sys.path.insert(0, vendor)
        for name in [n for n in sys.modules if n == "awq" or n.startswith("awq.")]:
            del sys.modules[name]  # an installed (or half-imported) AutoAWQ must not shadow the vendored files
        try:
            import awq.modules.linear.gemm as gemm
            import awq.utils.packing_utils as pu

            mods["awq"] = (pu, gemm)
        except Exception as e:
            print(f"  (vendored AutoAWQ: {type(e).__name__}: {e})")
    path = os.path.join(vendor or "", "auto_gptq", "qlinear_cuda_old.py")
    if os.path.exists(path):
        try:
            try:
                import transformers.pytorch_utils  # noqa: F401  (qlinear_cuda_old checks for Conv1D)
            except Exception:
                stub = types.ModuleType("transformers")
                stub.pytorch_utils = types.SimpleNamespace(Conv1D=type("Conv1D", (), {}))
                sys.modules["transformers"] = stub
            spec = importlib.util.spec_from_file_location("qlinear_cuda_old", path)
            m = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(m)
            mods["gptq"] = m
        except Exception as e:
            print(f"  (vendored AutoGPTQ qlinear_cuda_old: {type(e).__name__}: {e})")
    return mods


def awq_library_paths(vendor_mods):
    paths = []
    if "awq" in vendor_mods:
        pu, _ = vendor_mods["awq"]
        # f32 scales: the formula is dtype-agnostic; with f16 scales the product is rounded to f16.
        paths.append(("AutoAWQ 0.2.9 dequantize_gemm (f32 scales)",
                      lambda torch, qw, qz, sc, b, g: pu.dequantize_gemm(qw, qz, sc.float(), b, g).t()))
    for mod in ("awq.utils.packing_utils", "gptqmodel.quantization.awq.utils.packing_utils"):
        if mod == "awq.utils.packing_utils" and "awq" in vendor_mods:
            continue
        try:
            m = __import__(mod, fromlist=["dequantize_gemm"])
            f = getattr(m, "dequantize_gemm")
            paths.append((mod + ".dequantize_gemm",
                          lambda torch, qw, qz, sc, b, g, f=f: f(qw, qz, sc.float(), b, g).t()))
        except Exception as e:  # not installed / moved: reported, not fatal
            print(f"  (awq path {mod}: unavailable: {type(e).__name__}: {e})")
    return paths


def awq_pack_check(torch, vendor_mods, q, ours, mods, group):
    """AutoAWQ's own packer (WQLinear_GEMM.from_linear) on lowbit's dequantized weights, scales and zeros (zeros
    unpacked by AutoAWQ's unpack_awq + reverse_awq_order) must give lowbit's qweight / qzeros word for word."""
    pu, gemm = vendor_mods["awq"]
    n_bad = 0
    for m in mods:
        qw, qz = torch.from_numpy(np.array(q[m + ".qweight"])), torch.from_numpy(np.array(q[m + ".qzeros"]))
        sc = torch.from_numpy(np.array(q[m + ".scales"]))
        _, iz = pu.unpack_awq(qw, qz, 4)
        _, iz = pu.reverse_awq_order(_, iz, 4)
        iz = torch.bitwise_and(iz, 15).to(torch.int32)
        W = torch.from_numpy(np.array(ours[m + ".weight"]))
        lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=False)
        lin.weight.data.copy_(W)
        wq = gemm.WQLinear_GEMM.from_linear(lin, 4, group, scales=sc.float(), zeros=iz)
        same = torch.equal(wq.qweight.cpu(), qw) and torch.equal(wq.qzeros.cpu(), qz)
        n_bad += not same
        if not same:
            print(f"  {m}: AutoAWQ pack differs ({(wq.qweight.cpu() != qw).sum().item()} qweight words, "
                  f"{(wq.qzeros.cpu() != qz).sum().item()} qzeros words)")
    return n_bad


def to_v1(torch, qzeros):  # GPTQModel's v2 -> v1 conversion: -1 on every packed 4-bit zero (-0x11111111 per word)
    z = (qzeros.to(torch.int64) & 0xFFFFFFFF) - 0x11111111
    z = z & 0xFFFFFFFF
    return torch.where(z >= 2**31, z - 2**32, z).to(torch.int32)


def autogptq_forward(torch, mod, qweight, qzeros, scales, group, v1):
    """AutoGPTQ 0.7.1 QuantLinear (cuda-old) torch path: forward of an identity batch gives W^T; f32 scales."""
    K, N = qweight.shape[0] * 8, qweight.shape[1]
    layer = mod.QuantLinear(4, group, K, N, False, use_cuda_fp16=False, weight_dtype=torch.float32)
    layer.autogptq_cuda_available = False
    layer = layer.to(qweight.device)
    layer.qweight = qweight
    layer.qzeros = qzeros if v1 else to_v1(torch, qzeros)
    layer.scales = scales.float()
    out = layer(torch.eye(K, dtype=torch.float32, device=qweight.device))
    return out.t()


def autogptq_pack_check(torch, mod, q, ours, mods, group, v1):
    """AutoGPTQ's own QuantLinear.pack (v1: zeros - 1) on lowbit's dequantized weights, f16 scales and zeros
    must give lowbit's qweight and qzeros (v2 exports: + 0x11111111 per word, GPTQModel's conversion)."""
    n_bad = 0
    for m in mods:
        qw, qz = torch.from_numpy(np.array(q[m + ".qweight"])), torch.from_numpy(np.array(q[m + ".qzeros"]))
        sc = torch.from_numpy(np.array(q[m + ".scales"]))
        W = torch.from_numpy(np.array(ours[m + ".weight"]))
        N, K = W.shape
        wf = torch.arange(0, 32, 4, dtype=torch.int32)
        z = torch.bitwise_and(torch.bitwise_right_shift(qz[:, :, None], wf[None, None, :]), 15).reshape(qz.shape[0], -1)
        z = (z + 1) & 15 if v1 else z  # [G, N] actual zeros
        lin = torch.nn.Linear(K, N, bias=False)
        lin.weight.data.copy_(W)
        layer = mod.QuantLinear(4, group, K, N, False, use_cuda_fp16=False, weight_dtype=torch.float32)
        layer.pack(lin, sc.float().t().contiguous(), z.t().contiguous().float(), None)
        want_z = qz if v1 else to_v1(torch, qz)
        same = torch.equal(layer.qweight, qw) and torch.equal(layer.qzeros, want_z)
        n_bad += not same
        if not same:
            print(f"  {m}: AutoGPTQ pack differs ({(layer.qweight != qw).sum().item()} qweight words, "
                  f"{(layer.qzeros != want_z).sum().item()} qzeros words)")
    return n_bad


def gptq_port(torch, qweight, qzeros, scales, g_idx, bits, v1):
    """AutoGPTQ qlinear_cuda_old dequantization (bits 2/4/8) ported: zeros (+1 for v1), W = s[g] * (w - z[g])."""
    wf = torch.tensor(list(range(0, 32, bits)), dtype=torch.int32, device=qweight.device).unsqueeze(0)
    zeros = torch.bitwise_right_shift(torch.unsqueeze(qzeros, 2).expand(-1, -1, 32 // bits), wf.unsqueeze(0))
    zeros = torch.bitwise_and(zeros.to(torch.int16), (2**bits) - 1)
    if v1:
        zeros = zeros + 1
    zeros = zeros.reshape(zeros.shape[0], -1)
    weight = torch.bitwise_right_shift(torch.unsqueeze(qweight, 1).expand(-1, 32 // bits, -1), wf.unsqueeze(-1))
    weight = torch.bitwise_and(weight.to(torch.int16), (2**bits) - 1)
    weight = weight.reshape(-1, weight.shape[2])  # [K, N]
    w = scales[g_idx.long()].float() * (weight - zeros[g_idx.long()]).float()
    return w.t()


def gptq_library_paths():
    paths = []
    try:
        import inspect

        from gptqmodel.nn_modules.qlinear.torch import TorchQuantLinear

        def run(torch, qweight, qzeros, scales, g_idx, bits, v1, group, sym):
            K, N = g_idx.shape[0], scales.shape[1]
            want = dict(bits=bits, group_size=group, sym=sym, desc_act=False, in_features=K, out_features=N,
                        bias=False, pack_dtype=torch.int32, register_buffers=True)
            params = inspect.signature(TorchQuantLinear.__init__).parameters
            layer = TorchQuantLinear(**{k: v for k, v in want.items() if k in params})
            if v1:  # GPTQModel reads v1 by converting to v2 at load: +1 on every packed zero (+0x11111111)
                z = (qzeros.to(torch.int64) & 0xFFFFFFFF) + 0x11111111
                z = z & 0xFFFFFFFF
                qzeros = torch.where(z >= 2**31, z - 2**32, z).to(torch.int32)
            layer.qweight.data.copy_(qweight)
            layer.qzeros.data.copy_(qzeros)
            layer.scales.data.copy_(scales)
            layer.g_idx.data.copy_(g_idx)
            if hasattr(layer, "post_init"):
                try:
                    layer.post_init()
                except Exception:
                    pass
            w = layer.dequantize_weight()
            return w.t() if w.shape[0] == K else w

        paths.append(("gptqmodel TorchQuantLinear.dequantize_weight", run))
    except Exception as e:
        print(f"  (gptq path gptqmodel TorchQuantLinear: unavailable: {type(e).__name__}: {e})")
    return paths


def check(out_dir, device):
    import torch

    print(f"torch {torch.__version__} on {device}")
    for pkg in ("transformers", "gptqmodel", "awq", "auto_gptq"):
        try:
            print(f"  {pkg} {__import__(pkg).__version__}")
        except Exception as e:
            print(f"  {pkg}: not importable ({type(e).__name__})")
    vendor_mods = load_vendor(os.path.join(out_dir, "vendor"))
    awq_libs, gptq_libs = awq_library_paths(vendor_mods), gptq_library_paths()
    summary, bad = {}, False
    for mode in MODES:
        d = os.path.join(out_dir, mode)
        if not os.path.isdir(d):
            continue
        qc = json.load(open(os.path.join(d, "config.json")))["quantization_config"]
        q = read_safetensors(os.path.join(d, "quant.safetensors"))
        ours = read_safetensors(os.path.join(d, "deq.safetensors"))
        bits, group = qc.get("bits", 4), qc["group_size"]
        mods = sorted(k[:-len(".qweight")] for k in q if k.endswith(".qweight"))
        t = lambda a: torch.from_numpy(np.array(a)).to(device)
        v1 = qc.get("checkpoint_format", "gptq") == "gptq"
        if mode == "awq":
            paths = [("torch port of AutoAWQ dequantize_gemm",
                      lambda qw, qz, sc, gi: awq_port(torch, qw, qz, sc.float(), bits, group))]
            paths += [(n, lambda qw, qz, sc, gi, f=f: f(torch, qw, qz, sc, bits, group)) for n, f in awq_libs]
        else:
            paths = [("torch port of AutoGPTQ qlinear_cuda_old",
                      lambda qw, qz, sc, gi: gptq_port(torch, qw, qz, sc, gi, bits, v1))]
            if "gptq" in vendor_mods:
                paths.append(("AutoGPTQ 0.7.1 QuantLinear(cuda-old) forward",
                              lambda qw, qz, sc, gi: autogptq_forward(torch, vendor_mods["gptq"], qw, qz, sc, group,
                                                                      v1)))
            paths += [(n, lambda qw, qz, sc, gi, f=f: f(torch, qw, qz, sc, gi, bits, v1, group, qc.get("sym", True)))
                      for n, f in gptq_libs]
        for name, fn in paths:
            worst = 0.0
            try:
                for m in mods:
                    gi = t(q[m + ".g_idx"]) if m + ".g_idx" in q else None
                    w = fn(t(q[m + ".qweight"]), t(q[m + ".qzeros"]), t(q[m + ".scales"]), gi)
                    ref = torch.from_numpy(np.array(ours[m + ".weight"])).to(device)
                    rel = ((w.float().to(ref.device) - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
                    worst = max(worst, rel)
                ok = worst <= 1e-3
                bad |= not ok
                print(f"{mode:13s} {name:48s} max rel diff {worst:.3e} {'OK' if ok else 'MISMATCH'}")
                summary[f"{mode} / {name}"] = worst
            except Exception as e:
                print(f"{mode:13s} {name:48s} failed: {type(e).__name__}: {e}")
                summary[f"{mode} / {name}"] = f"failed: {type(e).__name__}: {e}"
        # Packers of the reference tools (CPU): the exact words.
        try:
            if mode == "awq" and "awq" in vendor_mods:
                n = awq_pack_check(torch, vendor_mods, q, ours, mods, group)
                name = "AutoAWQ 0.2.9 WQLinear_GEMM.from_linear pack"
            elif mode != "awq" and "gptq" in vendor_mods:
                n = autogptq_pack_check(torch, vendor_mods["gptq"], q, ours, mods, group, v1)
                name = "AutoGPTQ 0.7.1 QuantLinear.pack" + ("" if v1 else " (+0x11111111 for v2)")
            else:
                continue
            bad |= n > 0
            print(f"{mode:13s} {name:48s} {len(mods) - n}/{len(mods)} linears word-identical")
            summary[f"{mode} / {name}"] = f"{len(mods) - n}/{len(mods)} identical"
        except Exception as e:
            print(f"{mode:13s} pack check failed: {type(e).__name__}: {e}")
            summary[f"{mode} / pack"] = f"failed: {type(e).__name__}: {e}"
    print(json.dumps(summary, indent=1))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    elif len(sys.argv) >= 3 and sys.argv[1] == "check":
        dev = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cpu"
        check(sys.argv[2], dev)
    else:
        sys.exit(__doc__)
