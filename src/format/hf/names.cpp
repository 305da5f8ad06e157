// SPDX-License-Identifier: MIT
// Name table HF <-> GGUF (gguf-py constants.py, Llama tensors) and the Q/K permutation.
#include "format/hf/names.h"

#include <cstring>

namespace lowbit::hf {
namespace {

struct NamePair {
    const char* hf;   // suffix after "model.layers.N." (per-layer) or the whole name
    const char* gguf; // suffix after "blk.N." or the whole name
};

constexpr NamePair kGlobal[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

constexpr NamePair kLayer[] = {
    {"input_layernorm.weight", "attn_norm.weight"},    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},      {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"}, {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},          {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.bias", "attn_output.bias"},     {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},       {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

// Splits "<prefix><N>.<rest>" into N and rest; false if the name does not have that form.
bool split_layer(const std::string& name, const std::string& prefix, std::string& n, std::string& rest) {
    if (name.compare(0, prefix.size(), prefix) != 0) return false;
    size_t i = prefix.size();
    const size_t start = i;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
    if (i == start || i >= name.size() || name[i] != '.' || i - start > 6) return false;
    if (name[start] == '0' && i - start > 1) return false; // no leading zeros
    n = name.substr(start, i - start);
    rest = name.substr(i + 1);
    return true;
}

} // namespace

std::optional<std::string> hf_to_gguf_name(const std::string& hf_name) {
    for (const auto& p : kGlobal)
        if (hf_name == p.hf) return std::string(p.gguf);
    std::string n, rest;
    if (!split_layer(hf_name, "model.layers.", n, rest)) return std::nullopt;
    for (const auto& p : kLayer)
        if (rest == p.hf) return "blk." + n + "." + p.gguf;
    return std::nullopt;
}

std::optional<std::string> gguf_to_hf_name(const std::string& gguf_name) {
    for (const auto& p : kGlobal)
        if (gguf_name == p.gguf) return std::string(p.hf);
    std::string n, rest;
    if (!split_layer(gguf_name, "blk.", n, rest)) return std::nullopt;
    for (const auto& p : kLayer)
        if (rest == p.gguf) return "model.layers." + n + "." + p.hf;
    return std::nullopt;
}

char qk_kind(const std::string& gguf_name) {
    std::string n, rest;
    if (!split_layer(gguf_name, "blk.", n, rest)) return 0;
    if (rest == "attn_q.weight" || rest == "attn_q.bias") return 'q';
    if (rest == "attn_k.weight" || rest == "attn_k.bias") return 'k';
    return 0;
}

// View rows as [n_head, 2, half] (HF) and [n_head, half, 2] (GGUF): GGUF (h, i, j) = HF (h, j, i).
int64_t permute_src_row(int64_t dst_row, int64_t n_rows, int64_t n_head) {
    const int64_t head_rows = n_rows / n_head, half = head_rows / 2;
    const int64_t h = dst_row / head_rows, r = dst_row % head_rows;
    const int64_t i = r / 2, j = r % 2;
    return h * head_rows + j * half + i;
}

int64_t unpermute_src_row(int64_t dst_row, int64_t n_rows, int64_t n_head) {
    const int64_t head_rows = n_rows / n_head, half = head_rows / 2;
    const int64_t h = dst_row / head_rows, r = dst_row % head_rows;
    const int64_t j = r / half, i = r % half;
    return h * head_rows + i * 2 + j;
}

bool permute_qk_rows(const void* src, void* dst, int64_t n_rows, uint64_t row_bytes, int64_t n_head, bool inverse) {
    if (n_head <= 0 || n_rows % (2 * n_head) != 0) return false;
    const auto* s = static_cast<const uint8_t*>(src);
    auto* d = static_cast<uint8_t*>(dst);
    for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t from = inverse ? unpermute_src_row(r, n_rows, n_head) : permute_src_row(r, n_rows, n_head);
        std::memcpy(d + static_cast<uint64_t>(r) * row_bytes, s + static_cast<uint64_t>(from) * row_bytes, row_bytes);
    }
    return true;
}

} // namespace lowbit::hf
