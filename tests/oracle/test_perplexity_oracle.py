# SPDX-License-Identifier: MIT
"""Oracle: `lowbit perplexity` (llama.cpp chunks, HF stride) and `--kl-divergence` against float64 numpy.

Two seeded synthetic models from tests/fixtures/make_tiny_llama.py (with their byte-level BPE tokenizer). The text
is tokenized here with the `tokenizers` package (tokenizer.json, BOS from its post-processor), the logits come from
reference_llama.py (independent float64 forward pass), and the protocols are transcribed from their sources:
  - llama.cpp tools/perplexity/perplexity.cpp: chunks of n_ctx tokens, first token := BOS, NLL of the tokens at
    positions n_ctx/2+1 .. n_ctx-1, PPL = exp(mean), +/- PPL * sqrt((E[nll^2] - E[nll]^2) / (n - 1));
  - transformers docs "Perplexity of fixed-length models": windows of max_length every `stride` tokens, labels
    before the last trg_len set to -100, PPL = exp(sum NLL / number of scored labels);
  - the KL-divergence base file is parsed here from its documented layout (pipeline/perplexity/logprob_file.h),
    its rows checked against the reference log-softmax, and the KLD / top-1 / delta-p statistics of the second
    model recomputed exactly (float64, no quantization).
Tolerances cover lowbit's float32 forward pass (1e-4 relative on logits) and the uint16 rows (16/65535/2 nats).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_llama  # noqa: E402

try:
    from tokenizers import Tokenizer
except ImportError:
    print("tokenizers is not installed")
    sys.exit(77)

SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("LOWBIT_BIN", "")
CTX = 32
FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def lowbit(*args):
    r = subprocess.run([BIN, *args, "-t", "2"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"lowbit {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r.stdout


def log_softmax(logits):
    m = logits.max(axis=-1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))


def ppl_stats(nll):
    nll = np.asarray(nll)
    ppl = math_exp(nll.mean())
    var = (nll ** 2).mean() - nll.mean() ** 2
    return ppl, ppl * np.sqrt(var / (len(nll) - 1))


def math_exp(x):
    return float(np.exp(x))


def chunked_nll(model, tokens, bos, n_chunks):
    out, rows = [], []
    for c in range(n_chunks):
        w = list(tokens[c * CTX:(c + 1) * CTX])
        w[0] = bos
        lp = log_softmax(reference_llama.forward(model, w))
        for j in range(CTX // 2, CTX - 1):
            out.append(-lp[j, w[j + 1]])
            rows.append(lp[j])
    return out, rows


def hf_strided_nll(model, ids, max_length, stride):
    nll, prev_end = [], 0
    for begin in range(0, len(ids), stride):
        end = min(begin + max_length, len(ids))
        trg_len = end - prev_end
        inp = ids[begin:end]
        labels = list(inp)
        labels[:len(labels) - trg_len] = [-100] * (len(labels) - trg_len)
        lp = log_softmax(reference_llama.forward(model, inp))
        for k in range(1, len(labels)):
            if labels[k] != -100:
                nll.append(-lp[k - 1, labels[k]])
        prev_end = end
        if end == len(ids):
            break
    return nll


def read_base(path):
    data = open(path, "rb").read()
    assert data[:8] == b"LBLOGPRB", "magic"
    version, n_ctx, n_vocab, n_chunk, first, bos = struct.unpack("<5Ii", data[8:32])
    toks = np.frombuffer(data, dtype="<i4", count=n_ctx * n_chunk, offset=32)
    slots = 4 + 2 * ((n_vocab + 1) // 2)
    n_rows = n_chunk * (n_ctx - 1 - first)
    off = 32 + 4 * n_ctx * n_chunk
    assert len(data) == off + n_rows * slots * 2, "size"
    rows = np.frombuffer(data, dtype="<u2", offset=off).reshape(n_rows, slots)
    head = rows[:, :4].copy().view("<f4")  # [n_rows, 2]: scale, min_log_prob
    lp = head[:, :1].astype(np.float64) * rows[:, 4:4 + n_vocab] + head[:, 1:2].astype(np.float64)
    return dict(version=version, n_ctx=n_ctx, n_vocab=n_vocab, n_chunk=n_chunk, first=first, bos=bos,
                tokens=toks, log_probs=lp, scale=head[:, 0].astype(np.float64))


def main():
    if not BIN or not os.path.exists(BIN):
        print("LOWBIT_BIN not set or missing")
        return 1
    with tempfile.TemporaryDirectory(prefix="lowbit_ppl_oracle_") as tmp:
        return run_checks(tmp)


def run_checks(tmp):
    dirs = []
    for seed in (0, 1):
        d = os.path.join(tmp, f"m{seed}")
        subprocess.run([sys.executable, os.path.join(SRC, "tests", "fixtures", "make_tiny_llama.py"), "--out", d,
                        "--tokenizer", "--seed", str(seed)], check=True, capture_output=True)
        dirs.append(d)
    dirs.append(os.path.join(tmp, "m0_noisy"))
    perturbed_copy(dirs[0], dirs[2], 0.05)
    text = "".join(f"The quick brown fox jumps over the lazy dog {i}. Hello world! The scale of each block keeps "
                   f"the error small; numbers like {i * 37} appear.\n" for i in range(30))
    text_path = os.path.join(tmp, "text.txt")
    open(text_path, "w").write(text)

    tok = Tokenizer.from_file(os.path.join(dirs[0], "tokenizer.json"))
    ids = tok.encode(text).ids
    bos = tok.token_to_id("<|begin_of_text|>")
    check(ids[0] == bos, "HF tokenization starts with BOS")
    m0 = reference_llama.load(dirs[0])

    # llama.cpp protocol.
    n_chunks = 4
    got = json.loads(lowbit("perplexity", "-m", dirs[0], "-f", text_path, "-c", str(CTX), "--chunks",
                            str(n_chunks), "--json"))
    check(got["n_text_tokens"] == len(ids), f"token count {got['n_text_tokens']} == HF {len(ids)}")
    nll0, rows0 = chunked_nll(m0, ids, bos, n_chunks)
    ppl, err = ppl_stats(nll0)
    check(got["n_tokens"] == len(nll0), f"scored {got['n_tokens']} == {len(nll0)}")
    check(abs(got["ppl"] / ppl - 1) < 1e-4, f"chunked PPL {got['ppl']:.6f} vs numpy {ppl:.6f}")
    check(abs(got["stderr"] / err - 1) < 1e-3, f"chunked stderr {got['stderr']:.6f} vs numpy {err:.6f}")

    # Hugging Face strided protocol.
    for stride in (8, CTX):
        got = json.loads(lowbit("perplexity", "-m", dirs[0], "-f", text_path, "-c", str(CTX), "--stride",
                                str(stride), "--json"))
        nll = hf_strided_nll(m0, ids, CTX, stride)
        ref = float(np.exp(np.mean(nll)))
        check(got["n_tokens"] == len(nll), f"stride {stride}: scored {got['n_tokens']} == {len(nll)}")
        check(abs(got["ppl"] / ref - 1) < 1e-4, f"stride {stride}: PPL {got['ppl']:.6f} vs numpy {ref:.6f}")

    # KL divergence: base file of m0, then m1 against it.
    base = os.path.join(tmp, "base.bin")
    lowbit("perplexity", "-m", dirs[0], "-f", text_path, "-c", str(CTX), "--chunks", str(n_chunks),
           "--kl-divergence-base", base)
    b = read_base(base)
    check((b["version"], b["n_ctx"], b["n_chunk"], b["first"], b["bos"]) == (1, CTX, n_chunks, CTX // 2, bos),
          "base header")
    check(b["n_vocab"] == m0[1]["model.embed_tokens.weight"].shape[0], "base n_vocab")
    check(list(b["tokens"]) == ids[:CTX * n_chunks], "base tokens are the text's tokens")
    ref_lp = np.stack(rows0)
    above = ref_lp > ref_lp.max(axis=1, keepdims=True) - 15.9
    dev = np.abs(b["log_probs"] - ref_lp)[above].max()
    check(dev < 16 / 65535 / 2 + 1e-3, f"stored log-probs within quantization + f32 of numpy (max dev {dev:.2e})")

    for d in dirs[1:]:
        compare_kld(d, text_path, base, ids, bos, n_chunks, nll0, ref_lp)

    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


def perturbed_copy(src, dst, rel):
    """dst = src with every tensor times (1 + rel * N(0,1)): a stand-in for a quantized model (high top-1)."""
    import shutil
    from safetensors.numpy import load_file, save_file
    shutil.copytree(src, dst)
    rng = np.random.default_rng(5)
    path = os.path.join(dst, "model.safetensors")
    t = load_file(path)
    save_file({k: (v * (1 + rel * rng.standard_normal(v.shape))).astype(v.dtype) for k, v in t.items()}, path)


def compare_kld(model_dir, text_path, base, ids, bos, n_chunks, nll0, ref_lp):
    name = os.path.basename(model_dir)
    got = json.loads(lowbit("perplexity", "-m", model_dir, "-f", text_path, "--kl-divergence",
                            "--kl-divergence-base", base, "--json"))
    m1 = reference_llama.load(model_dir)
    nll1, rows1 = chunked_nll(m1, ids, bos, n_chunks)
    lp1 = np.stack(rows1)
    p0 = np.exp(ref_lp)
    kld = (p0 * (ref_lp - lp1)).sum(axis=1)
    same = np.mean(ref_lp.argmax(axis=1) == lp1.argmax(axis=1))
    tgt = np.array([ids[c * CTX + j + 1] for c in range(n_chunks) for j in range(CTX // 2, CTX - 1)])
    dp = np.exp(lp1[np.arange(len(tgt)), tgt]) - np.exp(ref_lp[np.arange(len(tgt)), tgt])
    n = len(kld)
    print(f"-- {name}: KLD {kld.mean():.5f}, top-1 {100 * same:.2f}%")
    check(got["n_tokens"] == n, f"KLD tokens {got['n_tokens']} == {n}")
    check(abs(got["kld"]["value"] - kld.mean()) < 1e-4 + 1e-3 * kld.mean(),
          f"mean KLD {got['kld']['value']:.6f} vs numpy {kld.mean():.6f}")
    kerr = np.sqrt(((kld ** 2).mean() - kld.mean() ** 2) / (n - 1))
    check(abs(got["kld"]["error"] - kerr) < 1e-4 + 1e-3 * kerr,
          f"KLD uncertainty {got['kld']['error']:.6f} vs {kerr:.6f}")
    s = np.sort(kld)
    pos = 0.99 * (n - 1)
    p99 = s[int(pos)] + (pos - int(pos)) * (s[min(int(pos) + 1, n - 1)] - s[int(pos)])
    check(abs(got["kld_quantiles"]["p99"] - p99) < 2e-3, f"99% KLD {got['kld_quantiles']['p99']:.6f} vs {p99:.6f}")
    check(abs(got["same_top_p_pct"]["value"] / 100 - same) <= 1.0 / n + 1e-12,
          f"same top p {got['same_top_p_pct']['value']:.3f}% vs numpy {100 * same:.3f}%")
    check(abs(got["delta_p_pct"]["value"] / 100 - dp.mean()) < 1e-4, "mean delta p")
    check(abs(got["rms_delta_p_pct"]["value"] / 100 - np.sqrt((dp ** 2).mean())) < 1e-4, "RMS delta p")
    ratio = float(np.exp(np.mean(nll1) - np.mean(nll0)))
    check(abs(got["ppl_ratio"]["value"] / ratio - 1) < 1e-3,
          f"PPL ratio {got['ppl_ratio']['value']:.6f} vs {ratio:.6f}")
    check(abs(got["ppl"]["value"] / float(np.exp(np.mean(nll1))) - 1) < 1e-4, "PPL(Q)")


if __name__ == "__main__":
    sys.exit(main())
