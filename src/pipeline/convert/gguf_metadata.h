// SPDX-License-Identifier: MIT
// GGUF metadata for converted models: general.* and <arch>.* hyper-parameters from a ModelConfig, and
// tokenizer.ggml.* from a VocabData — the keys and value types llama.cpp's convert_hf_to_gguf.py writes.
#pragma once

#include "core/error.h"
#include "format/gguf/gguf_writer.h"
#include "format/hf/config.h"
#include "format/vocab.h"

#include <string>

namespace lowbit::pipeline {

// general.architecture/name/file_type/quantization_version and <arch>.context_length, embedding_length,
// block_count, feed_forward_length, attention.head_count(_kv), attention.key_length/value_length,
// rope.freq_base, attention.layer_norm_rms_epsilon, rope.dimension_count, vocab_size (+ rope.scaling.* for
// linear scaling; Llama-3 scaling is the rope_freqs.weight tensor instead). `source_dir` gives general.name.
Status set_model_metadata(gguf::Writer& w, const format::ModelConfig& c, const std::string& source_dir, int file_type);

// tokenizer.ggml.{model, pre, tokens, token_type, scores (llama only), merges (gpt2 only), bos/eos/unknown/
// padding_token_id, add_bos_token, add_eos_token, add_space_prefix (llama only)} and tokenizer.chat_template.
Status set_tokenizer_metadata(gguf::Writer& w, const format::VocabData& v);

} // namespace lowbit::pipeline
