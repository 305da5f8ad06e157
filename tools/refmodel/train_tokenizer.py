#!/usr/bin/env python3
"""Train lowbit-ref's byte-level BPE tokenizer (Llama-3-style pre-tokenizer).

Usage: train_tokenizer.py --corpus $LOWBIT_SHARED/data/corpus --out DIR [--vocab 8192]

Deterministic for a given corpus: the sample is the first --wiki-bytes of wiki.txt and the
first --books-bytes of books.txt (whole documents only; the held-out validation slice is at
the *end* of each file, see stage_data.py, so it is never part of the sample).
The pre-tokenizer is Split(<Llama-3 regex>, isolated) + ByteLevel(use_regex=False), i.e. what
GGUF calls pre-tokenizer "llama-bpe".
"""
import argparse, json, os
import zstandard
from tokenizers import Tokenizer, Regex, models, pre_tokenizers, decoders, processors, trainers

LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"


def read_prefix(path, nbytes):
    with open(path, "rb") as f:
        r = zstandard.ZstdDecompressor().stream_reader(f)
        data = r.read(nbytes)
    text = data.decode("utf-8", errors="ignore")
    docs = text.split("\n\n")[:-1]  # drop the last (possibly cut) document
    return docs


def build(vocab):
    tok = Tokenizer(models.BPE(byte_fallback=False, ignore_merges=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PAT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(os.environ.get("LOWBIT_SHARED", "../shared"), "data/corpus"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--wiki-bytes", type=int, default=30_000_000)
    ap.add_argument("--books-bytes", type=int, default=14_000_000)
    a = ap.parse_args()
    docs = read_prefix(os.path.join(a.corpus, "wiki.txt.zst"), a.wiki_bytes)
    docs += read_prefix(os.path.join(a.corpus, "books.txt.zst"), a.books_bytes)
    print(f"training BPE on {len(docs)} docs, {sum(map(len, docs))/1e6:.1f} M chars")
    tok = build(a.vocab)
    trainer = trainers.BpeTrainer(
        vocab_size=a.vocab, min_frequency=2, show_progress=False,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(docs, trainer=trainer, length=len(docs))
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                      special_tokens=[(BOS, bos)]),
    ])
    os.makedirs(a.out, exist_ok=True)
    tok.save(os.path.join(a.out, "tokenizer.json"))
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS, "eos_token": EOS, "pad_token": EOS,
        "add_bos_token": True, "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 2048,
        "model_input_names": ["input_ids", "attention_mask"],
        "added_tokens_decoder": {
            str(bos): {"content": BOS, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True},
            str(eos): {"content": EOS, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True},
        },
    }
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    print("vocab", tok.get_vocab_size(), "bos", bos, "eos", eos)
    s = "Hello world! The 2008 Summer Olympics were held in Beijing.\nIt's 1,234 km."
    e = tok.encode(s)
    print(e.tokens)
    assert tok.decode(e.ids, skip_special_tokens=True) == s


if __name__ == "__main__":
    main()
