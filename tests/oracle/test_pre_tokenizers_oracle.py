#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Oracle: every BPE pre-tokenizer lowbit knows (llama.cpp's tokenizer.ggml.pre names, src/format/pre_tokenizers.cpp)
# against Hugging Face `tokenizers`. Per row: a small BPE is trained here with that row's Split regexes (the
# tokenizer.json spellings: (?i:...) contractions, Unicode letter cases, possessive quantifiers, \p{Han} and class
# intersection as written), then the same tricky texts are tokenized by `tokenizers` and by `lowbit tokenize` on
#   - a GGUF carrying tokenizer.ggml.pre = <name>, for every name of the row (so each name must pick this row), and
#   - the tokenizer.json folder itself (byte-level rows), where lowbit must recognise the Split sequence.
# Rows without byte-level encoding (gemma4, sarvam-moe, whitespace) are checked on the GGUF path: Gemma 4 style as a
# BPE with byte fallback on text whose spaces a normalizer turned into U+2581.
# Exit 77 (skip) when `tokenizers` or `gguf` is missing.
import json
import os
import subprocess
import sys
import tempfile

try:
    import gguf
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_tokenizer_oracle import TEXTS, random_texts  # noqa: E402

# tokenizer.json spellings of the shared patterns (lowbit spells Llama 3's and Qwen2's contractions out, as
# llama.cpp does, and GPT-2's without the trailing |\s+ of the ByteLevel regex; the splits are the same).
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
          r"|\s+(?!\S)|\s+")
QWEN2 = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")
GPT4O = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


class Row:
    def __init__(self, names, regexes, ignore_merges, byte_encode, escape_whitespace):
        self.names, self.regexes = names, regexes
        self.ignore_merges, self.byte_encode, self.escape_whitespace = ignore_merges, byte_encode, escape_whitespace


ROWS = [
    Row(['default', ''],
        ['[\\p{P}\\$\\+<=>\\^~\\|]+',
         "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
         '\\p{N}+',
         '[0-9][0-9][0-9]'],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['llama-bpe', 'llama3', 'llama-v3', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2', 'jina-v5-nano'],
        [LLAMA3],
        ignore_merges=True, byte_encode=True, escape_whitespace=False),
    Row(['glm4', 'glm5'],
        [LLAMA3],
        ignore_merges=True, byte_encode=True, escape_whitespace=False),
    Row(['dbrx', 'smaug-bpe', 'chatglm-bpe'],
        [LLAMA3],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['minicpm5'],
        ['\\p{N}{1,3}',
         "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
        ignore_merges=True, byte_encode=True, escape_whitespace=False),
    Row(['jais-2'],
        ["(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}"],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['laguna'],
        ['[^\\n]+|[\\n]+',
         QWEN2],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['deepseek-llm'],
        ['[\\r\\n]',
         '\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+',
         '\\s?[!-/:-~！-／：-～‘-‟\u3000-。]+',
         '\\s+$',
         '[一-龥ࠀ-一가-\ud7ff]+',
         '\\p{N}+'],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['deepseek-coder'],
        ['[\\r\\n]',
         '\\s?\\p{L}+',
         '\\s?\\p{P}+',
         '[一-龥ࠀ-一가-\ud7ff]+',
         '\\p{N}'],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['deepseek-v3', 'hunyuan-dense', 'joyai-llm', 'hy_v4'],
        ['\\p{N}{1,3}',
         '[一-龥\u3040-ゟ゠-ヿ]+',
         '[!"#$%&\'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+'],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['spark2_5'],
        ['\\p{N}{1,3}',
         '[一-龥\u3040-ゟ゠-ヿ]+',
         '[!"#$%&\'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\\r\\n]|\\s+(?!\\S)|\\s+',
         '\\p{N}'],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['afmoe'],
        ['\\p{N}{1,3}(?=(?:\\p{N}{3})*(?!\\p{N}))',
         '[一-鿿㐀-䶿豈-\ufaff\u3040-ゟ゠-ヿ･-ﾟ⼀-\u2fdfเ-\u0e7f\u0e80-\u0effក-\u17ffက-႟ꩠ-ꩿꧠ-\ua9ff가-\ud7afᄀ-ᇿ]+',
         '[!"#$%&\'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+'],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['youtu'],
        ['[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥\u3040-ゟ゠-ヿ]+',
         "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
        ignore_merges=True, byte_encode=True, escape_whitespace=False),
    Row(['falcon'],
        ['[\\p{P}\\$\\+<=>\\^~\\|`]+',
         "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
         '[0-9][0-9][0-9]'],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['starcoder', 'refact', 'command-r', 'smollm', 'codeshell', 'exaone', 'minerva-7b', 'mellum2'],
        ['\\p{N}',
         GPT2],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0', 'mellum', 'modern-bert', 'jina-v1-en', 'jina-v2-code', 'roberta-bpe', 'exaone4', 'mpt', 'olmo', 'jais', 'trillion', 'granite-docling'],
        [GPT2],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['qwen2', 'deepseek-r1-qwen', 'kormo', 'f2llmv2', 'megrez', 'stablelm2', 'hunyuan', 'solar-open', 'grok-2'],
        [QWEN2],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['qwen35'],
        ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['ufakzeka'],
        ['[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+'],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['seed-coder'],
        ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['bailingmoe', 'bailingmoe2', 'llada-moe'],
        ["'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['exaone-moe'],
        ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['poro-chat', 'bloom', 'gpt3-finnish'],
        [' ?[^(\\s|.,!?…。，、।۔،)]+'],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['viking'],
        [' ?[^(\\s|.,!?…。，、।۔،)]+',
         '\\p{N}'],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['tekken'],
        ['[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+'],
        ignore_merges=True, byte_encode=True, escape_whitespace=False),
    Row(['chameleon'],
        ['<sentinel:[0-9]+>',
         '(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z',
         '([\\t\\n]|    |  )',
         '\\p{N}',
         '[\\p{P}!-/:-@\\[-`{-~]',
         "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['gpt-4o', 'llama4', 'kanana2', 'talkie', 'minimax-m2'],
        [GPT4O],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['granite-embed-multi-97m'],
        [GPT4O],
        ignore_merges=True, byte_encode=True, escape_whitespace=False),
    Row(['tiny_aya', 'cohere2moe'],
        ['\\d{1,3}(?=(?:\\d{3})*\\b)',
         GPT4O],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['kimi-k2'],
        ["[\\p{Han}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['superbpe'],
        ['\\p{N}+',
         '(?=(\\d{3})+(?!\\d))'],
        ignore_merges=False, byte_encode=True, escape_whitespace=False),
    Row(['gemma4', 'granite-embed-multi-311m'],
        ['[^\\n]+|[\\n]+'],
        ignore_merges=False, byte_encode=False, escape_whitespace=True),
    Row(['sarvam-moe'],
        ['[^\\n]+|[\\n]+'],
        ignore_merges=False, byte_encode=False, escape_whitespace=True),
    Row(['whitespace'],
        ['\\S+'],
        ignore_merges=False, byte_encode=False, escape_whitespace=False),
]

# Texts aimed at the differences between the patterns.
EXTRA = [
    "HelloWorld camelCaseWords XMLHttpRequest \u00e9\u00c9 \u00c9cole \u01c5ungla \u00dcBER\u00fcber",
    "digits 1 12 123 1234 12345 123456 1234567 12345678901 1234abc abc1234 12,345,678.90 \u0661\u0662\u0663\u0664 x\u00b2\u00b3\u2074",
    "\u4e2d\u6587\u304b\u306a\u30ab\u30ca\u6f22\u5b57\u3072\u3089\u304c\u306a\u3005 \u3131\u3134 \ud55c\uad6d\uc5b4 \u3105\u3106 \u0e44\u0e17\u0e22 \u1780\u17d2\u1798\u17c2\u179a",
    "<sentinel:12>IMGIMGABZ IMGIMGABCDEFGZ\t\ttab\n    four  two",
    "Ankara'da I'M it'S we'Ll 'd 'RE x'y",
    " " * 600 + "x" + " " * 37 + "y\n \n  \n",
    "a/b/c\n//comment\r\n\r\n!!\n?? \u2026\u3002\uff0c\u3001\u0964\u06d4\u060c (x|y)",
    "Bonjour  le monde e\u0301 a\u0300 n\u0303\u0303 \u0915\u093f\u0924\u093e\u092c",
    "emoji \U0001F600\U0001F600 \U0001F44D\U0001F3FD\u200d \u2603 snowman",
]
SEP = "<|sep|>"


def byte_tokens():
    return ["<0x%02X>" % b for b in range(256)]


def train(workdir, row):
    steps = [pre_tokenizers.Split(Regex(r), behavior="isolated", invert=False) for r in row.regexes]
    corpus = TEXTS * 3 + EXTRA * 3
    if row.byte_encode:
        tok = Tokenizer(models.BPE(ignore_merges=row.ignore_merges))
        tok.pre_tokenizer = pre_tokenizers.Sequence(steps + [pre_tokenizers.ByteLevel(add_prefix_space=False,
                                                                                       use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tok = Tokenizer(models.BPE(ignore_merges=row.ignore_merges, byte_fallback=True))
        if row.escape_whitespace:
            tok.normalizer = normalizers.Replace(" ", "\u2581")
        tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
        alphabet = []
        corpus = TEXTS * 3 + EXTRA[:-1] * 3  # the last text's snowman is left to the byte fallback
    trainer = trainers.BpeTrainer(vocab_size=900, min_frequency=1, show_progress=False, initial_alphabet=alphabet,
                                  special_tokens=[SEP])
    tok.train_from_iterator(corpus, trainer=trainer)
    path = os.path.join(workdir, "tokenizer.json")
    tok.save(path)
    if not row.byte_encode:  # byte fallback tokens <0x00>..<0xFF> at the end of the vocabulary
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        vocab = data["model"]["vocab"]
        for t in byte_tokens():
            vocab.setdefault(t, len(vocab))
        # GGUF writes a merge as "left right": a piece with a raw space (whitespace words of the "whitespace"
        # row) cannot be written unambiguously, in llama.cpp either; such merges are dropped on both sides.
        data["model"]["merges"] = [m for m in data["model"]["merges"]
                                   if " " not in (m if isinstance(m, list) else m.split(" ", 1))[0]
                                   and " " not in (m if isinstance(m, list) else m.split(" ", 1))[-1]]
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        tok = Tokenizer.from_file(path)
    return tok, path


def write_gguf(path, tokenizer_json, pre, model):
    with open(tokenizer_json, encoding="utf-8") as f:
        data = json.load(f)
    vocab = data["model"]["vocab"]
    specials = {a["content"]: a["id"] for a in data.get("added_tokens", [])}
    tokens = [None] * (max(list(vocab.values()) + list(specials.values())) + 1)
    types = [1] * len(tokens)
    for text, i in vocab.items():
        tokens[i] = text
        if text.startswith("<0x") and len(text) == 6 and model != "gpt2":
            types[i] = 6
    for text, i in specials.items():
        tokens[i], types[i] = text, 3
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_tokenizer_model(model)
    if pre is not None:
        w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_add_bos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def lowbit_ids(lowbit, model, text):
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
        path = f.name
    try:
        r = subprocess.run([lowbit, "tokenize", "-m", model, "--ids", "--no-bos", "-f", path], capture_output=True)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        return f"exit {r.returncode}: {r.stderr.decode(errors='replace').strip()}"
    return [int(x) for x in r.stdout.decode().split()]


def check(lowbit, model, tok, texts, label):
    """All texts in one call, joined by a special token (both sides split there first); on a mismatch, each
    text alone to name the failing ones."""
    joined = SEP.join(texts)
    want = tok.encode(joined, add_special_tokens=False).ids
    got = lowbit_ids(lowbit, model, joined)
    if got == want:
        return 0
    if isinstance(got, str):
        print(f"FAIL [{label}] lowbit {got}")
        return 1
    shown = 0
    for text in texts:
        w, g = tok.encode(text, add_special_tokens=False).ids, lowbit_ids(lowbit, model, text)
        if w != g and shown < 3:
            shown += 1
            print(f"MISMATCH [{label}] text={text[:60]!r}\n  hf:     {w[:30]}\n  lowbit: {g[:30] if isinstance(g, list) else g}")
    print(f"FAIL [{label}]")
    return 1


def main():
    lowbit = os.environ.get("LOWBIT_BIN")
    if not lowbit or not os.path.exists(lowbit):
        print("FAIL: LOWBIT_BIN is not set to the lowbit binary")
        return 1
    texts = TEXTS + EXTRA + random_texts(11, 4, 1500)
    failures = 0
    with tempfile.TemporaryDirectory() as workdir:
        for n, row in enumerate(ROWS):
            rowdir = os.path.join(workdir, str(n))
            os.mkdir(rowdir)
            tok, tj = train(rowdir, row)
            label = row.names[0] or "default"
            row_failures = 0
            if not row.byte_encode and not any(t.startswith("<0x") for t in tok.encode(SEP.join(texts)).tokens):
                print(f"FAIL [{label}] no text reaches the byte fallback")
                row_failures += 1
            if row.byte_encode:
                row_failures += check(lowbit, rowdir, tok, texts, f"{label} tokenizer.json")
            for name in row.names:
                model = "gpt2"
                if name == "gemma4":
                    model = "gemma4"  # llama.cpp's Gemma 4 model name; the pre name is then implied
                gguf_path = os.path.join(rowdir, f"vocab-{len(name)}-{abs(hash(name))}.gguf")
                write_gguf(gguf_path, tj, None if name == "" else name, model)
                row_failures += check(lowbit, gguf_path, tok, texts, f"{label} gguf pre={name!r} model={model}")
            print(f"[{label}] {'ok' if not row_failures else 'FAILED'} ({len(row.names)} names)")
            failures += row_failures
    # A name no row has is refused (exit 4) with a message naming it.
    with tempfile.TemporaryDirectory() as workdir:
        tok, tj = train(workdir, ROWS[0])
        gguf_path = os.path.join(workdir, "unknown.gguf")
        write_gguf(gguf_path, tj, "no-such-pre", "gpt2")
        r = subprocess.run([lowbit, "tokenize", "-m", gguf_path, "--ids", "-p", "x"], capture_output=True)
        if r.returncode != 4 or b"no-such-pre" not in r.stderr:
            print(f"FAIL: unknown pre-tokenizer: exit {r.returncode}, {r.stderr!r}")
            failures += 1
    print(f"{len(ROWS)} pre-tokenizer rows, {sum(len(r.names) for r in ROWS)} names: "
          f"{'all match' if not failures else str(failures) + ' failures'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
