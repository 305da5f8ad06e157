// SPDX-License-Identifier: MIT
// KvCache (see kv_cache.h): sizing with checked arithmetic, slot operations, row conversion on store.
#include "model/kv_cache.h"

#include "core/checked.h"
#include "core/half.h"
#include "kernel/kernel.h"
#include "scheme/scheme_list.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fmt/format.h>
#include <new>
#include <unistd.h>

namespace lowbit::model {
namespace {

double gib(uint64_t bytes) {
    return double(bytes) / double(uint64_t(1) << 30);
}

} // namespace

Result<KvCache> KvCache::create(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, const KvCacheOptions& o) {
    if (o.n_ctx < 1) return make_error(ErrorCode::kUsage, fmt::format("context size {} must be at least 1", o.n_ctx));
    if (o.n_seq < 1)
        return make_error(ErrorCode::kUsage, fmt::format("number of sequences {} must be at least 1", o.n_seq));
    if (!kernel::can_cache(o.type))
        return make_error(ErrorCode::kUsage,
                          fmt::format("KV cache type {} is not supported (f32, f16, q8_0)", dtype_name(o.type)));
    if (n_layers < 0 || n_kv_heads < 1 || head_dim < 1)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("KV cache of {} layers x {} kv heads x {} dims", n_layers, n_kv_heads, head_dim));
    if (o.type == DType::kQ8_0 && head_dim % dtype_block_elems(DType::kQ8_0) != 0)
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("--cache-type q8_0 needs head_dim a multiple of 32, the model has {}", head_dim));
    KvCache c;
    c.n_ctx_ = o.n_ctx, c.n_seq_ = o.n_seq, c.n_layers_ = n_layers, c.type_ = o.type;
    c.kv_dim_ = n_kv_heads * head_dim;
    const auto row = dtype_row_bytes(o.type, uint64_t(c.kv_dim_));
    const auto layer = row ? checked_product({*row, uint64_t(o.n_seq), uint64_t(o.n_ctx)}) : std::nullopt;
    const auto total = layer ? checked_product({*layer, uint64_t(n_layers), 2}) : std::nullopt;
    const uint64_t limit = o.max_bytes ? o.max_bytes : physical_memory_bytes();
    const std::string what = fmt::format("{} layers x {} sequences x {} positions x {} values of {}, keys and values",
                                         n_layers, o.n_seq, o.n_ctx, c.kv_dim_, dtype_name(o.type));
    if (!total) return make_error(ErrorCode::kOutOfMemory, fmt::format("the KV cache size overflows ({})", what));
    if (o.host_rows && *total > limit)
        return make_error(ErrorCode::kOutOfMemory,
                          fmt::format("the KV cache needs {:.2f} GiB ({}), more than the {:.2f} GiB {}; lower "
                                      "-c/--ctx-size or the number of sequences, or use --cache-type q8_0",
                                      gib(*total), what, gib(limit), o.max_bytes ? "allowed" : "of physical memory"));
    c.row_bytes_ = *row, c.layer_bytes_ = *layer;
    const size_t half = size_t(*total / 2);
    if (half > 0 && o.host_rows) {
        c.k_.reset(new (std::nothrow) uint8_t[half]);
        c.v_.reset(new (std::nothrow) uint8_t[half]);
        if (!c.k_ || !c.v_)
            return make_error(ErrorCode::kOutOfMemory,
                              fmt::format("cannot allocate the KV cache: it needs {:.2f} GiB ({})", gib(*total), what));
    }
    c.seq_len_.assign(size_t(o.n_seq), 0);
    return c;
}

void KvCache::clear_all() {
    std::fill(seq_len_.begin(), seq_len_.end(), 0);
}

void KvCache::truncate(int64_t s, int64_t n) {
    seq_len_[size_t(s)] = std::clamp<int64_t>(n, 0, seq_len_[size_t(s)]);
}

Status KvCache::copy_prefix(int64_t src, int64_t dst, int64_t n) {
    if (src < 0 || src >= n_seq_ || dst < 0 || dst >= n_seq_)
        return make_error(ErrorCode::kUsage,
                          fmt::format("copy_prefix: slots {} -> {} outside [0, {})", src, dst, n_seq_));
    if (n < 0 || n > seq_len(src))
        return make_error(ErrorCode::kUsage,
                          fmt::format("copy_prefix: {} positions asked, slot {} holds {}", n, src, seq_len(src)));
    if (src != dst && n > 0 && k_)
        for (int64_t l = 0; l < n_layers_; ++l) {
            std::memcpy(k_row(l, dst, 0), k_row(l, src, 0), size_t(n) * row_bytes_);
            std::memcpy(v_row(l, dst, 0), v_row(l, src, 0), size_t(n) * row_bytes_);
        }
    seq_len_[size_t(dst)] = n;
    return ok_status();
}

void KvCache::store(int64_t layer, int64_t s, int64_t pos, const float* k, const float* v, int64_t n) {
    uint8_t* kd = k_row(layer, s, pos);
    uint8_t* vd = v_row(layer, s, pos);
    const size_t n_vals = size_t(n * kv_dim_);
    if (type_ == DType::kF32) {
        std::memcpy(kd, k, n_vals * sizeof(float));
        std::memcpy(vd, v, n_vals * sizeof(float));
        return;
    }
    if (type_ == DType::kF16) {
        auto* kh = reinterpret_cast<uint16_t*>(kd);
        auto* vh = reinterpret_cast<uint16_t*>(vd);
        for (size_t i = 0; i < n_vals; ++i) kh[i] = f32_to_f16(k[i]), vh[i] = f32_to_f16(v[i]);
        return;
    }
    const auto* sch = scheme::find_scheme(type_);
    for (int64_t r = 0; r < n; ++r) {
        sch->quantize_row(k + r * kv_dim_, kd + uint64_t(r) * row_bytes_, kv_dim_, nullptr);
        sch->quantize_row(v + r * kv_dim_, vd + uint64_t(r) * row_bytes_, kv_dim_, nullptr);
    }
}

Result<DType> parse_cache_type(const std::string& name) {
    std::string n(name);
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
    if (n == "f32") return DType::kF32;
    if (n == "f16") return DType::kF16;
    if (n == "q8_0") return DType::kQ8_0;
    return make_error(ErrorCode::kUsage, fmt::format("--cache-type '{}' is not one of f32, f16, q8_0", name));
}

} // namespace lowbit::model
