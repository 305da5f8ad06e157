// SPDX-License-Identifier: MIT
// Hugging Face <-> GGUF tensor names for Llama-family models, and the Q/K row permutation llama.cpp's
// converter applies (HF rotate-half RoPE -> ggml interleaved RoPE; ANCHORS.md §3.6):
//   w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols)
// with n_head = num_key_value_heads for K. The same applies to q/k biases (cols = 1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace lowbit::hf {

// "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight"; nullopt for names without a mapping.
std::optional<std::string> hf_to_gguf_name(const std::string& hf_name);
// The inverse: "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight".
std::optional<std::string> gguf_to_hf_name(const std::string& gguf_name);

// Which projection a GGUF name is: 'q' (attn_q), 'k' (attn_k) or 0. Used to decide on the permutation.
char qk_kind(const std::string& gguf_name);

// Row index mapping of the permutation: GGUF row `dst_row` comes from HF row permute_src_row(...).
// Requires n_rows % (2 * n_head) == 0.
int64_t permute_src_row(int64_t dst_row, int64_t n_rows, int64_t n_head);
// HF row `dst_row` comes from GGUF row unpermute_src_row(...) (the inverse mapping).
int64_t unpermute_src_row(int64_t dst_row, int64_t n_rows, int64_t n_head);

// Permutes whole rows of `row_bytes` bytes each: dst row r = src row permute_src_row(r) (HF -> GGUF), or the
// inverse when `inverse` (GGUF -> HF). src and dst must not overlap. Returns false when n_rows is not a
// multiple of 2 * n_head.
bool permute_qk_rows(const void* src, void* dst, int64_t n_rows, uint64_t row_bytes, int64_t n_head,
                     bool inverse = false);

} // namespace lowbit::hf
