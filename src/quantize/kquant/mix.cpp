// SPDX-License-Identifier: MIT
// Port of llama.cpp's per-tensor type choice (src/llama-quant.cpp), restricted to the file types in mix.h.
// Branch order follows llama_tensor_get_type_impl so a diff against upstream stays readable.
#include "quantize/kquant/mix.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <fmt/format.h>
#include <numeric>

namespace lowbit::quantize::kquant {
namespace {

using FT = FileType;

struct FileTypeRow {
    FileType ft;
    std::string_view name;
    DType dtype;
};

constexpr FileTypeRow kFileTypes[] = {
    {FT::kAllF32, "F32", DType::kF32},     {FT::kF16, "F16", DType::kF16},        {FT::kBF16, "BF16", DType::kBF16},
    {FT::kQ4_0, "Q4_0", DType::kQ4_0},     {FT::kQ4_1, "Q4_1", DType::kQ4_1},     {FT::kQ5_0, "Q5_0", DType::kQ5_0},
    {FT::kQ5_1, "Q5_1", DType::kQ5_1},     {FT::kQ8_0, "Q8_0", DType::kQ8_0},     {FT::kQ2_K, "Q2_K", DType::kQ2_K},
    {FT::kQ2_K_S, "Q2_K_S", DType::kQ2_K}, {FT::kQ3_K_S, "Q3_K_S", DType::kQ3_K}, {FT::kQ3_K_M, "Q3_K_M", DType::kQ3_K},
    {FT::kQ3_K_L, "Q3_K_L", DType::kQ3_K}, {FT::kQ4_K_S, "Q4_K_S", DType::kQ4_K}, {FT::kQ4_K_M, "Q4_K_M", DType::kQ4_K},
    {FT::kQ5_K_S, "Q5_K_S", DType::kQ5_K}, {FT::kQ5_K_M, "Q5_K_M", DType::kQ5_K}, {FT::kQ6_K, "Q6_K", DType::kQ6_K},
};

const FileTypeRow& row_of(FileType ft) {
    for (const auto& r : kFileTypes)
        if (r.ft == ft) return r;
    return kFileTypes[0]; // unreachable: every enumerator has a row
}

// llama.cpp's tensor_category.
enum class Category {
    kTokenEmbd,
    kAttnQ,
    kAttnV,
    kAttnK,
    kAttnQkv,
    kAttnKvB,
    kAttnOutput,
    kFfnUp,
    kFfnGate,
    kFfnDown,
    kOutput,
    kOther
};

bool contains(std::string_view s, std::string_view sub) {
    return s.find(sub) != std::string_view::npos;
}

Category category_of(std::string_view name) {
    if (name == "output.weight") return Category::kOutput;
    if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Category::kTokenEmbd;
    if (contains(name, "attn_qkv.weight")) return Category::kAttnQkv;
    if (contains(name, "attn_kv_b.weight")) return Category::kAttnKvB;
    if (contains(name, "attn_v.weight")) return Category::kAttnV;
    if (contains(name, "attn_k.weight")) return Category::kAttnK;
    if (contains(name, "attn_q.weight")) return Category::kAttnQ;
    if (contains(name, "attn_output.weight")) return Category::kAttnOutput;
    if (contains(name, "ffn_up")) return Category::kFfnUp;
    if (contains(name, "ffn_gate")) return Category::kFfnGate;
    if (contains(name, "ffn_down")) return Category::kFfnDown;
    return Category::kOther;
}

bool is_attn_v_like(Category c) {
    return c == Category::kAttnV || c == Category::kAttnQkv || c == Category::kAttnKvB;
}

// Layer index of "blk.N...." or -1 (sscanf "blk.%d." as llama.cpp's weight_name_comparer does).
int layer_of(const std::string& name) {
    int layer = -1;
    if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
    return layer;
}

// Substrings that keep a tensor unquantized (tensor_allows_quantization).
constexpr std::string_view kNeverQuantized[] = {
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "a.rvq.codebook",
    "mm.a.code_embd",
};

int n_dims(const std::vector<int64_t>& ne) { // ggml_n_dims: index of the last dim > 1, plus one (>= 1)
    int n = 1;
    for (size_t i = 1; i < ne.size(); ++i)
        if (ne[i] > 1) n = static_cast<int>(i) + 1;
    return n;
}

bool use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

// quantize_state_impl: counters advanced in tensor order.
struct State {
    const MixHparams& hp;
    const MixOptions& opts;
    bool is_70b = false;
    bool is_falcon = false;
    bool has_tied_embeddings = true;
    int n_attention_wv = 0, i_attention_wv = 0;
    int n_ffn_down = 0, i_ffn_down = 0;
    int n_ffn_gate = 0, i_ffn_gate = 0;
    int n_ffn_up = 0, i_ffn_up = 0;
    int n_fallback = 0;

    int n_gqa() const { return hp.n_head_kv > 0 ? hp.n_head / hp.n_head_kv : 0; }
};

// layer_info: with experts the layer comes from the name, else from the running counter.
Result<int> layer_index(const State& st, int counter, const std::string& name) {
    if (std::max(1, st.hp.n_expert) <= 1) return counter;
    const int layer = layer_of(name);
    if (layer < 0) return make_error(ErrorCode::kBadInput, fmt::format("cannot find the layer of tensor '{}'", name));
    if (layer >= st.hp.n_layer) {
        return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}' is in layer {}, but the model has {} layers",
                                                            name, layer, st.hp.n_layer));
    }
    return layer;
}

DType attn_v_type(State& st, FileType ft, DType t) {
    const int gqa = st.n_gqa();
    if (ft == FT::kQ2_K) {
        t = gqa >= 4 ? DType::kQ4_K : DType::kQ3_K;
    } else if (ft == FT::kQ2_K_S && gqa >= 4) {
        t = DType::kQ4_K;
    } else if (ft == FT::kQ3_K_M) {
        t = st.i_attention_wv < 2 ? DType::kQ5_K : DType::kQ4_K;
    } else if (ft == FT::kQ3_K_L) {
        t = DType::kQ5_K;
    } else if ((ft == FT::kQ4_K_M || ft == FT::kQ5_K_M) && use_more_bits(st.i_attention_wv, st.n_attention_wv)) {
        t = DType::kQ6_K;
    } else if (ft == FT::kQ4_K_S && st.i_attention_wv < 4) {
        t = DType::kQ5_K;
    }
    // 70B: 8 heads share attn_v, so it is 8x smaller than attn_q; more bits are nearly free.
    if (st.is_70b && (t == DType::kQ3_K || t == DType::kQ4_K)) t = DType::kQ5_K;
    if (st.hp.n_expert == 8) t = DType::kQ8_0;
    ++st.i_attention_wv;
    return t;
}

Result<DType> ffn_down_type(State& st, FileType ft, DType t, const std::string& name) {
    LOWBIT_ASSIGN_OR_RETURN(const int i_layer, layer_index(st, st.i_ffn_down, name));
    const int n_layer = st.n_ffn_down;
    if (ft == FT::kQ2_K) {
        t = DType::kQ3_K;
    } else if (ft == FT::kQ2_K_S) {
        if (i_layer < n_layer / 8) t = DType::kQ4_K;
    } else if (ft == FT::kQ3_K_M) {
        t = i_layer < n_layer / 16                             ? DType::kQ5_K
            : !st.is_falcon || use_more_bits(i_layer, n_layer) ? DType::kQ4_K
                                                               : DType::kQ3_K;
    } else if (ft == FT::kQ3_K_L) {
        t = st.is_falcon ? DType::kQ4_K : DType::kQ5_K;
    } else if (ft == FT::kQ4_K_M) {
        if (st.is_falcon) {
            t = i_layer < n_layer / 16 ? DType::kQ6_K : use_more_bits(i_layer, n_layer) ? DType::kQ5_K : DType::kQ4_K;
        } else if (use_more_bits(i_layer, n_layer)) {
            t = DType::kQ6_K;
        }
    } else if (ft == FT::kQ5_K_M && use_more_bits(i_layer, n_layer)) {
        t = DType::kQ6_K;
    } else if (ft == FT::kQ4_K_S && !st.is_falcon && i_layer < n_layer / 8) {
        t = DType::kQ5_K;
    } else if ((ft == FT::kQ4_0 || ft == FT::kQ5_0) && st.opts.has_imatrix && i_layer < n_layer / 8) {
        // llama.cpp guards the first ffn_down layers of Q4_0/Q5_0, but only with an imatrix (reproducibility).
        t = ft == FT::kQ4_0 ? DType::kQ4_1 : DType::kQ5_1;
    }
    ++st.i_ffn_down;
    return t;
}

DType attn_output_type(const State& st, FileType ft, DType t) {
    if (st.is_falcon) return ft == FT::kQ3_K_L ? DType::kQ4_K : t;
    if (st.hp.n_expert == 8) {
        if (ft == FT::kQ2_K || ft == FT::kQ3_K_S || ft == FT::kQ3_K_M || ft == FT::kQ4_K_S || ft == FT::kQ4_K_M) {
            t = DType::kQ5_K;
        }
        return t;
    }
    if (ft == FT::kQ2_K) return DType::kQ3_K;
    if (ft == FT::kQ3_K_M) return DType::kQ4_K;
    if (ft == FT::kQ3_K_L) return DType::kQ5_K;
    return t;
}

// llama_tensor_get_type_impl.
Result<DType> mixed_type(State& st, const MixTensor& t, Category cat, FileType ft, DType new_type) {
    if (cat == Category::kOutput || (st.has_tied_embeddings && cat == Category::kTokenEmbd)) {
        if (st.opts.output_type) return *st.opts.output_type;
        const int64_t nx = t.ne.empty() ? 0 : t.ne[0];
        if (st.is_falcon || nx % dtype_block_elems(new_type) != 0) return DType::kQ8_0;
        return new_type != DType::kQ8_0 ? DType::kQ6_K : new_type;
    }
    switch (cat) {
    case Category::kTokenEmbd:
        return st.opts.token_embd_type ? *st.opts.token_embd_type : new_type;
    case Category::kAttnV:
    case Category::kAttnQkv:
    case Category::kAttnKvB:
        return attn_v_type(st, ft, new_type);
    case Category::kAttnK:
        return st.hp.n_expert == 8 ? DType::kQ8_0 : new_type;
    case Category::kFfnDown:
        return ffn_down_type(st, ft, new_type, t.name);
    case Category::kAttnOutput:
        return attn_output_type(st, ft, new_type);
    case Category::kFfnGate: {
        LOWBIT_TRY(layer_index(st, st.i_ffn_gate, t.name)); // validates the name like llama.cpp
        ++st.i_ffn_gate;
        return new_type;
    }
    case Category::kFfnUp: {
        LOWBIT_TRY(layer_index(st, st.i_ffn_up, t.name));
        ++st.i_ffn_up;
        return new_type;
    }
    default:
        return new_type;
    }
}

// tensor_type_fallback: row lengths that do not fit the block size.
Result<DType> fallback_type(State& st, const MixTensor& t, DType target) {
    const int64_t ncols = t.ne.empty() ? 0 : t.ne[0];
    if (ncols % dtype_block_elems(target) == 0) return target;
    ++st.n_fallback;
    DType ret;
    switch (target) {
    case DType::kQ2_K:
    case DType::kQ3_K:
        ret = DType::kQ4_0;
        break;
    case DType::kQ4_K:
        ret = DType::kQ5_0;
        break;
    case DType::kQ5_K:
        ret = DType::kQ5_1;
        break;
    case DType::kQ6_K:
        ret = DType::kQ8_0;
        break;
    default:
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("tensor '{}' has rows of {} values, not a multiple of {}'s block of {}, and "
                                      "llama.cpp defines no fallback type for {}",
                                      t.name, ncols, dtype_name(target), dtype_block_elems(target),
                                      dtype_name(target)));
    }
    if (ncols % dtype_block_elems(ret) != 0) ret = DType::kF16; // llama.cpp: "must use F16 due to unusual shape"
    return ret;
}

} // namespace

std::vector<size_t> llama_tensor_order(std::span<const MixTensor> tensors) {
    std::vector<size_t> order(tensors.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::vector<int> layers(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) layers[i] = layer_of(tensors[i].name);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (layers[a] != layers[b]) return layers[a] < layers[b];
        return tensors[a].name < tensors[b].name;
    });
    return order;
}

std::optional<FileType> file_type_from_name(std::string_view name) {
    std::string up(name);
    for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (up == "Q3_K") return FT::kQ3_K_M; // llama-quantize aliases
    if (up == "Q4_K") return FT::kQ4_K_M;
    if (up == "Q5_K") return FT::kQ5_K_M;
    for (const auto& r : kFileTypes)
        if (r.name == up) return r.ft;
    return std::nullopt;
}

std::optional<FileType> file_type_from_id(int id) {
    for (const auto& r : kFileTypes)
        if (static_cast<int>(r.ft) == id) return r.ft;
    return std::nullopt;
}

std::string_view file_type_name(FileType ft) {
    return row_of(ft).name;
}
DType default_dtype(FileType ft) {
    return row_of(ft).dtype;
}

bool allows_quantization(const MixTensor& t, const MixOptions& opts) {
    if (n_dims(t.ne) < 2) return false;
    const std::string_view name = t.name;
    if (name.size() < 6 || name.substr(name.size() - 6) != "weight") return false;
    if (!opts.quantize_output && name == "output.weight") return false;
    for (const auto sub : kNeverQuantized)
        if (contains(name, sub)) return false;
    // BERT's positional embeddings and token types.
    return name != "position_embd.weight" && name != "token_types.weight";
}

Result<MixPlan> plan_mix(std::span<const MixTensor> tensors, const MixHparams& hparams, FileType ft,
                         const MixOptions& opts) {
    if (hparams.n_layer <= 0) {
        return make_error(ErrorCode::kUsage,
                          fmt::format("k-quant mix needs the model's layer count, got {}", hparams.n_layer));
    }
    State st{hparams, opts};
    st.is_falcon = hparams.arch == "falcon";
    st.is_70b = hparams.arch == "llama" && hparams.n_layer == 80 && hparams.n_head != hparams.n_head_kv;
    for (const auto& t : tensors) { // init_quantize_state_counters: over all tensors
        const Category c = category_of(t.name);
        if (is_attn_v_like(c)) ++st.n_attention_wv;
        if (c == Category::kOutput) st.has_tied_embeddings = false;
    }
    st.n_ffn_down = st.n_ffn_gate = st.n_ffn_up = hparams.n_layer;

    const DType default_type = default_dtype(ft);
    MixPlan plan;
    plan.types.resize(tensors.size());
    for (const size_t i : llama_tensor_order(tensors)) {
        const MixTensor& t = tensors[i];
        const Category cat = category_of(t.name);
        DType type = t.dtype;
        if (!allows_quantization(t, opts)) {
            plan.types[i] = type;
            continue;
        }
        if (opts.token_embd_type && cat == Category::kTokenEmbd) {
            type = *opts.token_embd_type;
        } else if (opts.output_type && cat == Category::kOutput) {
            type = *opts.output_type;
        } else {
            type = default_type;
            if (dtype_is_quantized(default_type)) {
                if (!opts.pure) {
                    LOWBIT_ASSIGN_OR_RETURN(type, mixed_type(st, t, cat, ft, type));
                }
                LOWBIT_ASSIGN_OR_RETURN(type, fallback_type(st, t, type));
            }
        }
        // tensor_requires_imatrix: only Q2_K tensors of a Q2_K_S file (IQ types are not produced here).
        if (type == DType::kQ2_K && ft == FT::kQ2_K_S && cat != Category::kTokenEmbd && cat != Category::kOutput) {
            plan.requires_imatrix = true;
        }
        plan.types[i] = type;
    }
    plan.n_fallback = st.n_fallback;
    return plan;
}

} // namespace lowbit::quantize::kquant
