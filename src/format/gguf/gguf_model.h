// SPDX-License-Identifier: MIT
// GGUF metadata -> lowbit's format-neutral structs: the tokenizer vocabulary (tokenizer.ggml.*) and the model
// hyper-parameters (<arch>.*). Errors: kBadInput naming the key (missing required key, wrong type, length
// mismatch, id out of range), kUnsupported naming an architecture or feature lowbit does not run.
#pragma once

#include "core/error.h"
#include "format/gguf/gguf_file.h"
#include "format/hf/config.h"
#include "format/vocab.h"

namespace lowbit::gguf {

// Fills VocabData from tokenizer.ggml.{model,pre,tokens,scores,token_type,merges,bos_token_id,eos_token_id,
// unknown_token_id,padding_token_id,eot_token_id,add_bos_token,add_eos_token,add_space_prefix} and
// tokenizer.chat_template. tokens is required (non-empty); scores/token_type, when present, must have one entry
// per token; special ids must be < n_tokens. Defaults for absent keys follow llama.cpp's loader: for model
// "llama" (SentencePiece) add_bos = true and add_space_prefix = true; for every other model both are false.
// Absent ids stay -1.
Result<format::VocabData> vocab_from_gguf(const File& file);

// Architectures config_from_gguf accepts ("llama", "qwen2").
bool is_supported_arch(std::string_view arch);

// Reads general.architecture and <arch>.{context_length, embedding_length, block_count, feed_forward_length,
// attention.head_count, attention.head_count_kv, attention.key_length, rope.dimension_count, rope.freq_base,
// attention.layer_norm_rms_epsilon, vocab_size, rope.scaling.{type,factor,original_context_length}}.
// Required: embedding_length, block_count, feed_forward_length, attention.head_count. vocab_size falls back to
// the number of tokenizer.ggml.tokens, then to the rows of token_embd.weight. tie_word_embeddings is true when
// there is no output.weight tensor; attention_bias when blk.0.attn_q.bias exists. bos/eos ids come from the
// tokenizer keys. Llama-3 rope scaling is stored by llama.cpp as the tensor rope_freqs.weight, not as keys: the
// caller must apply that tensor when present (rope_scaling.type stays "").
Result<format::ModelConfig> config_from_gguf(const File& file);

} // namespace lowbit::gguf
