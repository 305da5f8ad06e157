#!/usr/bin/env python3
"""Train lowbit's reference Llama (lowbit-ref-30m) in one time-budgeted run, then export and
evaluate it.

Run from the repo root on the device (see tools/refmodel/README.md):
    python3 tools/refmodel/train.py --data .carry/data --tok .carry/tok --out $OUT --deadline 560

Steps (all seeded):
  1. read wiki.txt.xz + books.txt.xz, hold out the last documents of each file (validation),
     tokenize everything with the BPE from train_tokenizer.py (stream = <bos> doc <eos> ...);
  2. train a LlamaForCausalLM-compatible model (written here in plain PyTorch, parameter names
     are Hugging Face's) with torch.compile + bf16 autocast + fused AdamW.  The number of steps
     is fixed after a short throughput probe so that training ends inside --deadline; pass
     --steps N to reproduce a run exactly (the run logs N);
  3. write bf16 HF sharded safetensors (shards <= --shard-bytes), config.json,
     generation_config.json, tokenizer files;
  4. reload the written directory with transformers, check its logits against the trained
     model, generate samples, and compute wikitext-2 test and held-out perplexity with
     llama.cpp's protocol (ctx 512: whole text tokenized with BOS, chunks of 512 with the first
     token set to BOS, score the second half of each chunk).
Everything measured goes to $OUT/train_log.json (one file: loss curve, eval, samples).
"""
import argparse, json, lzma, math, os, sys, time

T_START = time.time()

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def now():
    return time.time() - T_START


def log(*a):
    print(f"[{now():7.1f}s]", *a, flush=True)


# --------------------------------------------------------------------------------------- data
def read_docs(path):
    """Documents of an .xz text file.  A truncated .xz (a prefix of the compressed stream, as
    stage_data.sh leaves when it is given a time limit) is accepted: its last, possibly cut
    document is dropped."""
    with open(path, "rb") as f:
        raw = f.read()
    d = lzma.LZMADecompressor()
    data = d.decompress(raw)
    text = data.decode("utf-8", errors="ignore")
    docs = [x for x in text.split("\n\n") if x.strip()]
    if not d.eof:
        docs = docs[:-1]
        log(f"{os.path.basename(path)}: truncated stream, kept {len(docs)} whole documents")
    return docs


def split_holdout(docs, nchars):
    """Last documents of the file (>= nchars in all) are the validation slice."""
    acc, k = 0, len(docs)
    while k > 0 and acc < nchars:
        k -= 1
        acc += len(docs[k])
    return docs[:k], docs[k:]


def pieces_of(doc, maxlen=16384):
    """Cut a document at line ends into pieces <= maxlen chars.  With the Llama-3 split regex
    a newline never joins the following word, so tokenizing the pieces separately gives the
    same ids as tokenizing the whole document."""
    lines = doc.split("\n")
    out, cur, n = [], [], 0
    for i, ln in enumerate(lines):
        s = ln + ("\n" if i + 1 < len(lines) else "")
        if cur and n + len(s) > maxlen:
            out.append("".join(cur)); cur, n = [], 0
        cur.append(s); n += len(s)
    if cur:
        out.append("".join(cur))
    return out


def tokenize_docs(tok, docs, bos, eos):
    pieces, owner = [], []
    for di, d in enumerate(docs):
        for p in pieces_of(d):
            pieces.append(p); owner.append(di)
    encs = tok.encode_batch(pieces, add_special_tokens=False)
    lens = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
    ndoc = len(docs)
    total = int(lens.sum()) + 2 * ndoc
    out = np.empty(total, dtype=np.int32)
    pos, prev = 0, -1
    for e, o in zip(encs, owner):
        if o != prev:
            if prev >= 0:
                out[pos] = eos; pos += 1
            out[pos] = bos; pos += 1
            prev = o
        ids = e.ids
        out[pos:pos + len(ids)] = ids
        pos += len(ids)
    out[pos] = eos; pos += 1
    assert pos == total
    return out


# -------------------------------------------------------------------------------------- model
class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.nh, self.nkv, self.hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        d = c["hidden_size"]
        self.q_proj = nn.Linear(d, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, d, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = (q * cos + rotate_half(q) * sin).to(v.dtype)
        k = (k * cos + rotate_half(k) * sin).to(v.dtype)
        rep = self.nh // self.nkv  # HF repeat_kv: query head h uses kv head h // rep
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.nh * self.hd))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = MLP(c)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class Llama(nn.Module):
    """Parameter names == transformers' LlamaForCausalLM (model.*, lm_head.weight)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Body(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        hd = c["head_dim"]
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
        self.register_buffer("inv_freq", inv, persistent=False)

    def init_weights(self, std=0.02):
        L = self.c["num_hidden_layers"]
        for n, p in self.named_parameters():
            if p.ndim == 1:
                nn.init.ones_(p)
            elif n.endswith("o_proj.weight") or n.endswith("down_proj.weight"):
                nn.init.normal_(p, 0.0, std / math.sqrt(2 * L))
            else:
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx):
        T = idx.shape[1]
        pos = torch.arange(T, device=idx.device, dtype=torch.float32)
        fr = torch.outer(pos, self.inv_freq)
        emb = torch.cat((fr, fr), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        x = self.model.embed_tokens(idx)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.model.norm(x))


def loss_fn(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.reshape(-1))


# ---------------------------------------------------------------------------------- export
def hf_config(c, bos, eos):
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": c["vocab_size"],
        "hidden_size": c["hidden_size"],
        "intermediate_size": c["intermediate_size"],
        "num_hidden_layers": c["num_hidden_layers"],
        "num_attention_heads": c["num_attention_heads"],
        "num_key_value_heads": c["num_key_value_heads"],
        "head_dim": c["head_dim"],
        "hidden_act": "silu",
        "max_position_embeddings": c["max_position_embeddings"],
        "rms_norm_eps": c["rms_norm_eps"],
        "rope_theta": c["rope_theta"],
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "use_cache": True,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": "bfloat16",
    }


def save_sharded(sd, outdir, shard_bytes):
    from safetensors.torch import save_file
    names = list(sd.keys())
    shards, cur, cur_b = [], [], 0
    for n in names:
        b = sd[n].numel() * sd[n].element_size()
        if cur and cur_b + b > shard_bytes:
            shards.append(cur); cur, cur_b = [], 0
        cur.append(n); cur_b += b
    shards.append(cur)
    N = len(shards)
    wm, total = {}, 0
    for i, grp in enumerate(shards):
        fn = f"model-{i + 1:05d}-of-{N:05d}.safetensors"
        save_file({n: sd[n].contiguous() for n in grp}, os.path.join(outdir, fn), metadata={"format": "pt"})
        for n in grp:
            wm[n] = fn
            total += sd[n].numel() * sd[n].element_size()
    with open(os.path.join(outdir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)
        f.write("\n")
    return N, total


# ------------------------------------------------------------------------------------ eval
@torch.no_grad()
def llamacpp_ppl(logits_fn, ids, bos, n_ctx=512, batch=64, device="cuda", max_chunks=None):
    """llama.cpp perplexity: ids already start with BOS; chunk k = ids[k*n_ctx:(k+1)*n_ctx] with
    its first token replaced by BOS; score positions n_ctx/2 .. n_ctx-2 (predicting the next
    token), i.e. n_ctx/2 - 1 tokens per chunk."""
    n_chunk = len(ids) // n_ctx
    if max_chunks:
        n_chunk = min(n_chunk, max_chunks)
    arr = torch.tensor(np.asarray(ids[: n_chunk * n_ctx], dtype=np.int64)).view(n_chunk, n_ctx)
    first = n_ctx // 2
    nll, cnt = 0.0, 0
    for s in range(0, n_chunk, batch):
        x = arr[s:s + batch].clone().to(device)
        tgt = x[:, first + 1:].clone()
        x[:, 0] = bos
        lg = logits_fn(x)[:, first:n_ctx - 1].float()
        lp = torch.log_softmax(lg, dim=-1).gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
        nll -= lp.double().sum().item()
        cnt += tgt.numel()
    return math.exp(nll / cnt), n_chunk, cnt


# ------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=".carry/data")
    ap.add_argument("--tok", default=".carry/tok")
    ap.add_argument("--out", required=True)
    ap.add_argument("--deadline", type=float, default=560, help="seconds after start when everything must be done")
    ap.add_argument("--post-reserve", type=float, default=75, help="seconds kept for export + eval")
    ap.add_argument("--steps", type=int, default=0, help="fix the number of steps (0: from the throughput probe)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--layers", type=int, default=9)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--inter", type=int, default=1024)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.02)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--decay-frac", type=float, default=0.3, help="WSD: linear decay over the last fraction of steps")
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--eval-every", type=int, default=150)
    ap.add_argument("--holdout-wiki", type=int, default=2_000_000)
    ap.add_argument("--holdout-books", type=int, default=1_000_000)
    ap.add_argument("--shard-bytes", type=int, default=15 * 1024 * 1024)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--max-docs", type=int, default=0, help="smoke tests only")
    ap.add_argument("--model-name", default="lowbit-ref-30m")
    ap.add_argument("--model-dir", default="", help="where the HF directory is written (default: OUT/model-name)")
    a = ap.parse_args()
    dev = a.device
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    R = {"args": vars(a), "device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu",
         "torch": torch.__version__, "curve": [], "val_curve": []}
    outdir = a.model_dir or os.path.join(a.out, a.model_name)
    os.makedirs(outdir, exist_ok=True)

    def dump():
        with open(os.path.join(a.out, "train_log.json"), "w") as f:
            json.dump(R, f, indent=1)

    # ---- data
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(a.tok, "tokenizer.json"))
    bos, eos = tok.token_to_id("<|begin_of_text|>"), tok.token_to_id("<|end_of_text|>")
    V = tok.get_vocab_size()
    wiki = read_docs(os.path.join(a.data, "wiki.txt.xz"))
    books = read_docs(os.path.join(a.data, "books.txt.xz"))
    if a.max_docs:
        wiki, books = wiki[: a.max_docs], books[: max(2, a.max_docs // 50)]
    wtr, wva = split_holdout(wiki, a.holdout_wiki)
    btr, bva = split_holdout(books, a.holdout_books)
    R["data"] = {"wiki_docs": len(wiki), "books_docs": len(books),
                 "wiki_holdout_docs": len(wva), "books_holdout_docs": len(bva),
                 "wiki_holdout_chars": sum(map(len, wva)), "books_holdout_chars": sum(map(len, bva)),
                 "train_chars": sum(map(len, wtr)) + sum(map(len, btr))}
    log("docs", R["data"])
    train_docs = wtr + btr
    t0 = now()
    train_ids = tokenize_docs(tok, train_docs, bos, eos)
    val_ids = tokenize_docs(tok, wva + bva, bos, eos)
    R["data"].update(train_tokens=int(len(train_ids)), val_tokens=int(len(val_ids)),
                     chars_per_token=R["data"]["train_chars"] / len(train_ids), tokenize_s=now() - t0)
    log("tokens", len(train_ids), "val", len(val_ids), f"({now() - t0:.1f}s)")
    heldout_text = "\n\n".join(wva + bva)
    del wiki, books, train_docs

    # ---- model
    c = dict(vocab_size=V, hidden_size=a.hidden, intermediate_size=a.inter, num_hidden_layers=a.layers,
             num_attention_heads=a.heads, num_key_value_heads=a.heads // 2, head_dim=a.hidden // a.heads,
             rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=a.seq)
    model = Llama(c)
    model.init_weights()
    model.to(dev)
    nparam = sum(p.numel() for p in model.parameters())
    R["params"] = nparam
    R["config"] = c
    log(f"params {nparam:,}")
    decay = [p for p in model.parameters() if p.ndim >= 2]
    nodecay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=(dev == "cuda"))
    step_fn = loss_fn if a.no_compile else torch.compile(loss_fn)

    data = torch.from_numpy(train_ids.astype(np.int64)).to(dev)
    vdata = torch.from_numpy(val_ids.astype(np.int64)).to(dev)
    S = a.seq
    nseq = (len(train_ids) - 1) // S
    vseq = (len(val_ids) - 1) // S
    ar = torch.arange(S + 1, device=dev)
    g = torch.Generator(device="cpu").manual_seed(a.seed)
    perm, pp, epoch = torch.randperm(nseq, generator=g), 0, 0

    def next_batch():
        nonlocal perm, pp, epoch
        if pp + a.batch > nseq:
            perm, pp, epoch = torch.randperm(nseq, generator=g), 0, epoch + 1
        idx = perm[pp:pp + a.batch].to(dev) * S
        pp += a.batch
        xy = data[idx[:, None] + ar]
        return xy[:, :-1], xy[:, 1:]

    @torch.no_grad()
    def val_loss(max_seq=None):
        model.eval()
        n = vseq if max_seq is None else min(vseq, max_seq)
        tot, cnt = 0.0, 0
        for s in range(0, n, a.batch):
            e = min(n, s + a.batch)
            idx = torch.arange(s, e, device=dev) * S
            xy = vdata[idx[:, None] + ar]
            with torch.autocast(dev, dtype=torch.bfloat16):
                l = loss_fn(model, xy[:, :-1], xy[:, 1:])
            tot += l.item() * (e - s); cnt += e - s
        model.train()
        return tot / cnt

    total_steps = a.steps if a.steps else 10 ** 9
    probe = (20, 60)

    def lr_at(s):
        if s < a.warmup:
            return a.lr * (s + 1) / a.warmup
        d0 = int(total_steps * (1 - a.decay_frac))
        if s < d0:
            return a.lr
        f = (s - d0) / max(1, total_steps - d0)
        return a.lr * (1 - f * (1 - a.min_lr_frac))

    train_end = a.deadline - a.post_reserve
    log(f"training until t={train_end:.0f}s")
    step, tokens, tprobe = 0, 0, None
    t_train0 = now()
    R["curve"] = []
    while step < total_steps:
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step)
        x, y = next_batch()
        try:
            with torch.autocast(dev, dtype=torch.bfloat16):
                loss = step_fn(model, x, y)
        except Exception as ex:  # never lose the device run to a compiler problem
            if step_fn is loss_fn:
                raise
            log(f"torch.compile failed ({type(ex).__name__}: {str(ex)[:300]}); falling back to eager")
            R["compile_failed"] = str(ex)[:1000]
            step_fn = loss_fn
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev, dtype=torch.bfloat16):
                loss = step_fn(model, x, y)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens += x.numel()
        if step == 1:
            log(f"first step (compile) done, loss {loss.item():.3f}")
        if not a.steps and step == probe[0]:
            if dev == "cuda":
                torch.cuda.synchronize()
            tprobe = now()
        if not a.steps and step == probe[1]:
            if dev == "cuda":
                torch.cuda.synchronize()
            sps = (probe[1] - probe[0]) / (now() - tprobe)
            total_steps = probe[1] + int((train_end - now()) * sps * 0.96)
            R["probe_steps_per_s"] = sps
            R["total_steps"] = total_steps
            log(f"probe: {sps:.2f} steps/s = {sps * a.batch * S:,.0f} tok/s -> total_steps {total_steps}")
        if step % 25 == 0 or step == total_steps:
            li = loss.item()
            R["curve"].append([step, round(li, 4), round(lr_at(step - 1), 6), round(gn.item(), 3), round(now(), 1)])
            if step % 100 == 0:
                log(f"step {step}/{total_steps} loss {li:.4f} lr {lr_at(step - 1):.2e} gn {gn.item():.2f} ep {epoch}")
        if step % a.eval_every == 0 or step == total_steps:
            vl = val_loss(max_seq=128)
            R["val_curve"].append([step, round(vl, 4), round(now(), 1)])
            log(f"step {step} val {vl:.4f}")
            dump()
        if now() > train_end + 20:  # safety net if the probe was optimistic
            log("time is up, stopping early"); R["stopped_early"] = True
            break
    if dev == "cuda":
        torch.cuda.synchronize()
    t_train = now() - t_train0
    R["train"] = {"steps": step, "tokens": tokens, "epochs": tokens / len(train_ids), "time_s": t_train,
                  "tokens_per_s_incl_compile_and_evals": tokens / t_train,
                  "final_train_loss_avg_last_100": float(np.mean([r[1] for r in R["curve"][-4:]]))}
    vl = val_loss()
    R["train"]["final_val_loss_full"] = vl
    log(f"trained {step} steps, {tokens:,} tokens in {t_train:.0f}s; full val loss {vl:.4f}")
    dump()

    # ---- export
    sd = {k: v.detach().to(torch.bfloat16).cpu() for k, v in model.state_dict().items()}
    nsh, total = save_sharded(sd, outdir, a.shard_bytes)
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(hf_config(c, bos, eos), f, indent=2); f.write("\n")
    with open(os.path.join(outdir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": bos, "eos_token_id": eos, "do_sample": True, "temperature": 0.8,
                   "top_p": 0.95}, f, indent=2); f.write("\n")
    import shutil
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(a.tok, fn), os.path.join(outdir, fn))
    R["export"] = {"shards": nsh, "total_bytes": total,
                   "files": {fn: os.path.getsize(os.path.join(outdir, fn)) for fn in sorted(os.listdir(outdir))}}
    log("exported", R["export"])
    dump()

    # ---- verify with transformers + eval
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    R["transformers"] = transformers.__version__
    hft = AutoTokenizer.from_pretrained(outdir)
    hfm = AutoModelForCausalLM.from_pretrained(outdir, dtype=torch.float32).to(dev).eval()
    E = {}
    probe_ids = torch.from_numpy(val_ids[:256].astype(np.int64))[None].to(dev)
    model_bf = Llama(c).to(dev)
    model_bf.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    model_bf.eval()
    with torch.no_grad():
        l_hf = hfm(probe_ids).logits.float()
        l_me = model_bf(probe_ids).float()
    E["hf_vs_trainer_max_abs_logit_diff_fp32"] = (l_hf - l_me).abs().max().item()
    E["hf_tokenizer_adds_bos"] = hft("Hello").input_ids[0] == bos
    wt = lzma.open(os.path.join(a.data, "wiki.test.raw.xz"), "rt", encoding="utf-8").read()
    wt_ids = [bos] + hft(wt, add_special_tokens=False).input_ids
    ho_ids = [bos] + hft(heldout_text, add_special_tokens=False).input_ids
    E["wikitext2_test_tokens"] = len(wt_ids)
    E["heldout_tokens"] = len(ho_ids)

    def f32(x):
        return hfm(x).logits

    hfb = AutoModelForCausalLM.from_pretrained(outdir, dtype=torch.bfloat16).to(dev).eval()

    def b16(x):
        return hfb(x).logits

    for name, fn in (("fp32", f32), ("bf16", b16)):
        p, nch, cnt = llamacpp_ppl(fn, wt_ids, bos, device=dev)
        E[f"wikitext2_test_ppl_ctx512_{name}"] = p
        E["wikitext2_chunks"], E["wikitext2_scored_tokens"] = nch, cnt
        p, nch, cnt = llamacpp_ppl(fn, ho_ids, bos, device=dev)
        E[f"heldout_ppl_ctx512_{name}"] = p
        E["heldout_chunks"], E["heldout_scored_tokens"] = nch, cnt
        log(name, {k: v for k, v in E.items() if k.endswith(name)})
    R["eval"] = E
    dump()
    prompts = ["The history of the city", "In 1905, the", "She looked at him and said", "The river",
               "The first film", "It was a dark and stormy night", "The company was founded", "He was born in"]
    samples = []
    torch.manual_seed(a.seed)
    for pr in prompts:
        enc = hft(pr, return_tensors="pt").to(dev)
        with torch.no_grad():
            gg = hfm.generate(**enc, max_new_tokens=60, do_sample=False, repetition_penalty=1.1)
            gs = hfm.generate(**enc, max_new_tokens=60, do_sample=True, temperature=0.8, top_p=0.95)
        samples.append({"prompt": pr,
                        "greedy_rep1.1": hft.decode(gg[0], skip_special_tokens=True),
                        "sample_t0.8_p0.95": hft.decode(gs[0], skip_special_tokens=True)})
    R["samples"] = samples
    for s in samples:
        log(json.dumps(s))
    R["total_wall_s"] = now()
    dump()
    log("done")


if __name__ == "__main__":
    main()
