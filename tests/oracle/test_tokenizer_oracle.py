#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Oracle: `lowbit tokenize` on Hugging Face tokenizer.json folders must give the ids of the `tokenizers`
# package. Part 1 trains small byte-level BPEs with the Llama-3, Qwen2 and GPT-2 pre-tokenizers here
# (deterministic); part 2
# uses models/lowbit-ref-30m/tokenizer.json when that folder exists. Exit 77 (skip) when `tokenizers` is missing.
import os
import subprocess
import sys
import tempfile

try:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
except ImportError:
    print("skip: the tokenizers package is not installed")
    sys.exit(77)

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")

TEXTS = [
    "Hello world",
    " Hello world",
    "Hello World!",
    "I'M sure you'll see it's HE'S and we'VE 'd",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces and trailing spaces   ",
    "tabs\tand\t\tmore\ttabs\t",
    "line one\nline two\n\nline four\r\nwindows line\r\n",
    "\n\n\n",
    "   \n   \n",
    "non\u00a0breaking\u3000ideographic\u2003em space",
    "numbers 1 12 123 1234 12345 1234567890 3.14159 1,234,567.89 -42 +7",
    "arabic-indic \u0661\u0662\u0663\u0664 superscript x\u00b2 fractions \u00bd \u2153",
    "Deutsch: F\u00fchrer \u00c4pfel \u00fcber Stra\u00dfe",
    "Fran\u00e7ais: l'\u00e9t\u00e9 o\u00f9 na\u00efve c\u0153ur",
    "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442, \u0415\u0451!",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u03b3\u03c1\u03ac\u03bc\u03bc\u03b1\u03c4\u03b1",
    "\u4e2d\u6587\u6d4b\u8bd5\uff0c\u4f60\u597d\u4e16\u754c\u3002\u6211\u4eec\u5728\u5317\u4eac",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\u30ab\u30bf\u30ab\u30ca",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\uc785\ub2c8\ub2e4",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0646\u0635 \u0642\u0635\u064a\u0631",
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u092a\u093e\u0920",
    "combining e\u0301 a\u0300 n\u0303 and precomposed \u00e9",
    "emoji \U0001F600 \U0001F680\U0001F680 \U0001F44D\U0001F3FD family \U0001F468\u200d\U0001F469\u200d\U0001F467 flag \U0001F1E9\U0001F1EA",
    "symbols $100 + 5% = <tag> ^caret ~tilde |pipe| `tick` \u20ac \u00a9 \u2122 \u2192",
    "punctuation!!! ??? ... --- (parens) [brackets] {braces} \"quotes\" \u201ccurly\u201d",
    "def f(x):\n    return x ** 2  # comment\n\n\tif (a && b) { c++; }\n",
    "<|end_of_text|>",
    "text before<|end_of_text|>text after <|begin_of_text|> again",
    "a" * 300,
    "xyz123abc456 mixed123 ABC-def_ghi",
    "\u200b zero width \ufeff bom \u00ad soft hyphen",
    "\U00010348 gothic \U0001D400 math bold A",
]


def random_texts(seed, count, length):
    """Seeded random mixtures of scripts, digits, punctuation, contractions and whitespace runs."""
    import random
    rng = random.Random(seed)
    pools = ["abcXYZ", "0123456789", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "'s", "'LL", "'", "!?.,;:-_",
             "$+<=>^~|`", "()[]{}", "\u00e9\u00df\u00f1", "\u4e2d\u6587", "\u3042\u30a2", "\ud55c",
             "\u0627\u0644", "\u0939\u093f", "\u0301", "\u0661\u00b2\u00bd", "\U0001F600\u200d\U0001F680",
             "\u200b\u00ad", "\u20ac\u2192\u00a9"]
    out = []
    for _ in range(count):
        parts = []
        while sum(map(len, parts)) < length:
            pool = rng.choice(pools)
            parts.append(pool if len(pool) <= 2 or rng.random() < 0.3 else
                         "".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        out.append("".join(parts))
    return out


def lowbit_ids(lowbit, model_dir, text, bos):
    args = [lowbit, "tokenize", "-m", model_dir, "--ids"]
    if not bos:
        args.append("--no-bos")
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
        path = f.name
    try:
        r = subprocess.run(args + ["-f", path], capture_output=True)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        raise RuntimeError(f"lowbit tokenize failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return [int(x) for x in r.stdout.decode().split()]


def compare(lowbit, model_dir, tok, texts, label, bos=False):
    failures = 0
    for text in texts:
        want = tok.encode(text, add_special_tokens=bos).ids
        got = lowbit_ids(lowbit, model_dir, text, bos)
        if got != want:
            failures += 1
            print(f"MISMATCH [{label}] text={text[:80]!r}\n  hf:     {want[:40]}\n  lowbit: {got[:40]}")
    print(f"[{label}] {len(texts) - failures}/{len(texts)} texts match (bos={bos})")
    return failures


def corpus_texts():
    shared = os.environ.get("LOWBIT_SHARED")
    if not shared:
        return []
    path = os.path.join(shared, "data", "corpus", "calib.txt")
    if not os.path.exists(path):
        print(f"FAIL: LOWBIT_SHARED is set but {path} is missing")
        sys.exit(1)
    with open(path, encoding="utf-8") as f:
        data = f.read(60000)
    texts = [data[i:i + 20000] for i in range(0, len(data), 20000)]
    wiki = os.path.join(shared, "data", "wikitext-2-raw", "wiki.test.raw")  # 1.3 MB, ~1 s per tokenizer
    if os.path.exists(wiki):
        with open(wiki, encoding="utf-8") as f:
            texts.append(f.read())
    return texts


def train_bpe(workdir, style):
    """style: "llama3" (Split + ByteLevel, ignore_merges as Llama 3), "qwen2" (single digits) or "gpt2"
    (ByteLevel's own regex)."""
    if style == "gpt2":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        regex = LLAMA3_REGEX if style == "llama3" else LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")
        tok = Tokenizer(models.BPE(ignore_merges=style == "llama3"))
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|begin_of_text|>", "<|end_of_text|>"])
    tok.train_from_iterator(TEXTS * 3, trainer=trainer)
    tok.save(os.path.join(workdir, "tokenizer.json"))
    return tok


def main():
    lowbit = os.environ.get("LOWBIT_BIN")
    if not lowbit or not os.path.exists(lowbit):
        print("FAIL: LOWBIT_BIN is not set to the lowbit binary")
        return 1
    extra = random_texts(7, 3, 4000) + corpus_texts()
    failures = 0
    for style in ("llama3", "qwen2", "gpt2"):
        with tempfile.TemporaryDirectory() as workdir:
            tok = train_bpe(workdir, style)
            failures += compare(lowbit, workdir, tok, TEXTS + extra, f"trained {style}-style BPE")
    ref_dir = os.path.join(os.environ.get("LOWBIT_SOURCE_DIR", "."), "models", "lowbit-ref-30m")
    if os.path.exists(os.path.join(ref_dir, "tokenizer.json")):
        ref = Tokenizer.from_file(os.path.join(ref_dir, "tokenizer.json"))
        failures += compare(lowbit, ref_dir, ref, TEXTS + extra, "lowbit-ref-30m")
        failures += compare(lowbit, ref_dir, ref, TEXTS[:5], "lowbit-ref-30m", bos=True)
    else:
        print(f"note: {ref_dir} is absent; reference-model part skipped")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
