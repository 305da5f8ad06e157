#!/usr/bin/env python3
"""Load a committed HF model directory with transformers, generate, and measure wikitext-2 test
perplexity with llama.cpp's protocol (ctx 512, BOS at each chunk start, second half scored).

    python3 tools/refmodel/verify.py models/lowbit-ref-30m --wikitext wiki.test.raw[.xz] [--out eval.json]
"""
import argparse, json, lzma, os, sys, time
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import llamacpp_ppl  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--wikitext", required=True)
    ap.add_argument("--out", default="")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtypes", default="fp32,bf16")
    a = ap.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    import transformers
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(a.model)
    op = lzma.open if a.wikitext.endswith(".xz") else open
    with op(a.wikitext, "rt", encoding="utf-8") as f:
        text = f.read()
    bos = tok.bos_token_id
    ids = [bos] + tok(text, add_special_tokens=False).input_ids
    R = {"model": a.model, "transformers": transformers.__version__, "torch": torch.__version__,
         "device": torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu",
         "bos_token_id": bos, "eos_token_id": tok.eos_token_id, "tokens": len(ids)}
    for name in a.dtypes.split(","):
        dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[name]
        m = AutoModelForCausalLM.from_pretrained(a.model, dtype=dt).to(a.device).eval()
        R["params"] = sum(p.numel() for p in m.parameters())
        p, nch, cnt = llamacpp_ppl(lambda x: m(x).logits, ids, bos, device=a.device, batch=16 if a.device == "cpu" else 64)
        R[f"wikitext2_test_ppl_ctx512_{name}"] = p
        R["chunks"], R["scored_tokens"] = nch, cnt
        print(name, p, nch, cnt, flush=True)
    torch.manual_seed(0)
    R["samples"] = []
    for pr in ["The history of the city", "She looked at him and said"]:
        enc = tok(pr, return_tensors="pt").to(a.device)
        g = m.generate(**enc, max_new_tokens=40, do_sample=False, repetition_penalty=1.1)
        R["samples"].append(tok.decode(g[0], skip_special_tokens=True))
        print(R["samples"][-1], flush=True)
    R["wall_s"] = time.time() - t0
    js = json.dumps(R, indent=1)
    print(js)
    if a.out:
        open(a.out, "w").write(js)


if __name__ == "__main__":
    main()
