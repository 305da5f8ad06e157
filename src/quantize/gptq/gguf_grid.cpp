// SPDX-License-Identifier: MIT
// GGUF grids for GPTQ (see gguf_grid.h). Parameter choice replicates ggml's quantizers expression by expression
// (legacy types: quantize_row_*_ref; k-quants: the scheme's own weighted block quantizer is run and its
// parameters read back), so with no error feedback the bytes equal the block quantizer's.
#include "quantize/gptq/gguf_grid.h"

#include "core/check.h"
#include "core/thread_pool.h"
#include "scheme/ggml_common/ggml_common.h"
#include "scheme/q2_k/q2_k.h"
#include "scheme/q3_k/q3_k.h"
#include "scheme/q4_0/q4_0.h"
#include "scheme/q4_1/q4_1.h"
#include "scheme/q4_k/q4_k.h"
#include "scheme/q5_0/q5_0.h"
#include "scheme/q5_1/q5_1.h"
#include "scheme/q5_k/q5_k.h"
#include "scheme/q6_k/q6_k.h"
#include "scheme/q8_0/q8_0.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>

namespace lowbit::quantize::gptq {

namespace ggml = scheme::ggml;

struct GgufGrid::Shared {
    DType type = DType::kF32;
    int64_t n_rows = 0, n_cols = 0;
    int64_t block_elems = 0, block_bytes = 0, n_blocks = 0; // n_blocks per row
    std::vector<uint8_t> blocks;                            // [n_rows, n_blocks] templates (parameters set)
    std::vector<uint8_t> visited;                           // [n_blocks]
    std::vector<float> importance;                          // [n_cols]
    uint8_t* block(int64_t row, int64_t b) {
        return blocks.data() + static_cast<size_t>((row * n_blocks + b) * block_bytes);
    }
};

namespace {

constexpr int kParams = 32; // floats of rounding parameters per row (Q2_K: 16 sub-block scales + 16 mins)

// Level of a ggml "(int8_t)(v)" cast, min(max) - for in-range v the truncation equals ggml's; out-of-range v
// (GPTQ-updated weights beyond the block's range) clamp instead of wrapping.
inline int trunc_level(float v, int max_level) {
    if (!(v >= 1.0f)) return 0; // also NaN
    if (v >= static_cast<float>(max_level)) return max_level;
    return static_cast<int>(v);
}

// ggml's nearest_int clamped to [lo, hi] (guards nearest_int's range for far out-of-grid values).
inline int nearest_level(float f, int lo, int hi) {
    if (!(f > static_cast<float>(lo))) return lo;
    if (f >= static_cast<float>(hi)) return hi;
    return ggml::nearest_int(f);
}

// Signed max (the value with the largest magnitude, first one wins) as ggml's Q4_0/Q5_0 ref.
float signed_max(const float* x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; ++j)
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    return max;
}

void set_nibbles_32(const int32_t* L, uint8_t* qs) { // Q4_0/Q4_1: byte j = weight j | weight j+16 << 4
    for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((L[j] & 0xF) | ((L[j + 16] & 0xF) << 4));
}

void set_q5_32(const int32_t* L, uint8_t* qh_out, uint8_t* qs) { // Q5_0/Q5_1 (ggml's pack)
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
        qh |= ((static_cast<uint32_t>(L[j]) & 0x10u) >> 4) << j;
        qh |= ((static_cast<uint32_t>(L[j + 16]) & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(qh_out, &qh, sizeof(qh));
}

// K-quant code layouts (inverse pairs): levels L[256] <-> qs / qh.
void set_q4_k(const int32_t* L, scheme::q4_k::Block& y) {
    uint8_t* q = y.qs;
    for (int j = 0; j < 256; j += 64, q += 32)
        for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
}
void get_q4_k(const scheme::q4_k::Block& y, uint8_t* L) {
    const uint8_t* q = y.qs;
    for (int j = 0; j < 256; j += 64, q += 32)
        for (int l = 0; l < 32; ++l) {
            L[j + l] = q[l] & 0xF;
            L[j + l + 32] = q[l] >> 4;
        }
}
void set_q5_k(const int32_t* L, scheme::q5_k::Block& y) {
    std::memset(y.qh, 0, sizeof(y.qh));
    uint8_t* ql = y.qs;
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < 256; n += 64, ql += 32) {
        for (int j = 0; j < 32; ++j) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) l1 -= 16, y.qh[j] |= m1;
            if (l2 > 15) l2 -= 16, y.qh[j] |= m2;
            ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
        }
        m1 = static_cast<uint8_t>(m1 << 2);
        m2 = static_cast<uint8_t>(m2 << 2);
    }
}
void get_q5_k(const scheme::q5_k::Block& y, uint8_t* L) {
    const uint8_t* ql = y.qs;
    for (int n = 0, s = 0; n < 256; n += 64, ql += 32, s += 2)
        for (int j = 0; j < 32; ++j) {
            L[n + j] = static_cast<uint8_t>((ql[j] & 0xF) | (((y.qh[j] >> s) & 1) << 4));
            L[n + j + 32] = static_cast<uint8_t>((ql[j] >> 4) | (((y.qh[j] >> (s + 1)) & 1) << 4));
        }
}
void set_q6_k(const int32_t* L, scheme::q6_k::Block& y) {
    uint8_t* ql = y.ql;
    uint8_t* qh = y.qh;
    for (int j = 0; j < 256; j += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; ++l) {
            ql[l + 0] = static_cast<uint8_t>((L[j + l] & 0xF) | ((L[j + l + 64] & 0xF) << 4));
            ql[l + 32] = static_cast<uint8_t>((L[j + l + 32] & 0xF) | ((L[j + l + 96] & 0xF) << 4));
            qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                         ((L[j + l + 96] >> 4) << 6));
        }
}
void get_q6_k(const scheme::q6_k::Block& y, uint8_t* L) {
    const uint8_t* ql = y.ql;
    const uint8_t* qh = y.qh;
    for (int j = 0; j < 256; j += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; ++l) {
            L[j + l] = static_cast<uint8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
            L[j + l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
            L[j + l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
            L[j + l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
        }
}

// Q2_K/Q3_K: 2-bit codes of element e at byte (e/128)*32 + e%32, bits 2*((e%128)/32); Q3_K's third bit in
// hmask[e%32], bit e/32 (ggml's packing).
void set_q2_k(const int32_t* L, scheme::q2_k::Block& y) {
    std::memset(y.qs, 0, sizeof(y.qs));
    for (int e = 0; e < 256; ++e)
        y.qs[(e / 128) * 32 + e % 32] |= static_cast<uint8_t>((L[e] & 3) << (2 * ((e % 128) / 32)));
}
void get_q2_k(const scheme::q2_k::Block& y, uint8_t* L) {
    for (int e = 0; e < 256; ++e) L[e] = (y.qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}
void set_q3_k(const int32_t* L, scheme::q3_k::Block& y) {
    std::memset(y.qs, 0, sizeof(y.qs));
    std::memset(y.hmask, 0, sizeof(y.hmask));
    for (int e = 0; e < 256; ++e) {
        y.qs[(e / 128) * 32 + e % 32] |= static_cast<uint8_t>((L[e] & 3) << (2 * ((e % 128) / 32)));
        if (L[e] > 3) y.hmask[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
    }
}
void get_q3_k(const scheme::q3_k::Block& y, uint8_t* L) {
    for (int e = 0; e < 256; ++e)
        L[e] = static_cast<uint8_t>(((y.qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3) |
                                    (((y.hmask[e % 32] >> (e / 32)) & 1) << 2));
}

// Q4_K/Q5_K sub-block steps as finish_block / dequantize_row compute them: p[j] = d*sc, p[8+j] = dmin*m.
template <typename Block> void kq_params_4_5(const Block& y, float* p) {
    const float d_all = ggml::fp32(y.d), m_all = ggml::fp32(y.dmin);
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        ggml::get_scale_min_k4(j, y.scales, &sc, &m);
        p[j] = d_all * static_cast<float>(sc);
        p[8 + j] = m_all * static_cast<float>(m);
    }
}

// Parameters of one row's block `x` [block_elems]: writes the template (scales; codes zero or the block
// quantizer's) and the rounding parameters p [kParams]; k-quants also their own codes `keep` [256].
void choose_block(DType type, const float* x, const float* imp, uint8_t* tmpl, float* p, uint8_t* keep) {
    switch (type) {
    case DType::kQ8_0: {
        auto& y = *reinterpret_cast<scheme::q8_0::Block*>(tmpl);
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / ((1 << 7) - 1);
        y.d = ggml::fp16(d);
        p[0] = d != 0.0f ? 1.0f / d : 0.0f;
        p[1] = ggml::fp32(y.d);
        return;
    }
    case DType::kQ4_0:
    case DType::kQ5_0: {
        const float d = signed_max(x, 32) / (type == DType::kQ4_0 ? -8 : -16);
        const uint16_t dh = ggml::fp16(d);
        std::memcpy(tmpl, &dh, sizeof(dh)); // both blocks start with d
        p[0] = d != 0.0f ? 1.0f / d : 0.0f;
        p[1] = ggml::fp32(dh);
        return;
    }
    case DType::kQ4_1:
    case DType::kQ5_1: {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; ++j) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / (type == DType::kQ4_1 ? ((1 << 4) - 1) : ((1 << 5) - 1));
        const uint16_t dm[2] = {ggml::fp16(d), ggml::fp16(min)};
        std::memcpy(tmpl, dm, sizeof(dm)); // both blocks start with d, m
        p[0] = min;
        p[1] = d != 0.0f ? 1.0f / d : 0.0f;
        p[2] = ggml::fp32(dm[0]);
        p[3] = ggml::fp32(dm[1]);
        return;
    }
    case DType::kQ4_K: {
        auto& y = *reinterpret_cast<scheme::q4_k::Block*>(tmpl);
        scheme::q4_k::quantize_row(x, &y, 256, imp);
        kq_params_4_5(y, p);
        get_q4_k(y, keep);
        return;
    }
    case DType::kQ5_K: {
        auto& y = *reinterpret_cast<scheme::q5_k::Block*>(tmpl);
        scheme::q5_k::quantize_row(x, &y, 256, imp);
        kq_params_4_5(y, p);
        get_q5_k(y, keep);
        return;
    }
    case DType::kQ2_K: { // p[j] = d*sc, p[16+j] = dmin*m as dequantize_row computes them
        auto& y = *reinterpret_cast<scheme::q2_k::Block*>(tmpl);
        scheme::q2_k::quantize_row(x, &y, 256, imp);
        const float d = ggml::fp32(y.d), dmin = ggml::fp32(y.dmin);
        for (int j = 0; j < 16; ++j) {
            p[j] = d * static_cast<float>(y.scales[j] & 0xF);
            p[16 + j] = dmin * static_cast<float>(y.scales[j] >> 4);
        }
        get_q2_k(y, keep);
        return;
    }
    case DType::kQ3_K: { // p[j] = d*(sc-32): the scheme's own decoding of level 1 (code 5) in every sub-block
        auto& y = *reinterpret_cast<scheme::q3_k::Block*>(tmpl);
        scheme::q3_k::quantize_row(x, &y, 256, imp);
        get_q3_k(y, keep);
        scheme::q3_k::Block one = y;
        std::memset(one.qs, 0x55, sizeof(one.qs));
        std::memset(one.hmask, 0xFF, sizeof(one.hmask));
        float deq[256];
        scheme::q3_k::dequantize_row(&one, deq, 256);
        for (int j = 0; j < 16; ++j) p[j] = deq[16 * j];
        return;
    }
    case DType::kQ6_K: {
        auto& y = *reinterpret_cast<scheme::q6_k::Block*>(tmpl);
        scheme::q6_k::quantize_row(x, &y, 256, imp);
        const float d_all = ggml::fp32(y.d);
        for (int j = 0; j < 16; ++j) p[j] = d_all * static_cast<float>(y.scales[j]);
        get_q6_k(y, keep);
        return;
    }
    default:
        return;
    }
}

} // namespace

bool has_gguf_grid(DType type) {
    switch (type) {
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
        return true;
    default:
        return false;
    }
}

GgufGrid::GgufGrid(std::shared_ptr<Shared> shared, int64_t n_rows)
    : shared_(std::move(shared)), p_(static_cast<size_t>(n_rows * kParams), 0.0f) {}

Result<std::unique_ptr<GgufGrid>> GgufGrid::create(DType type, int64_t n_rows, int64_t n_cols) {
    if (!has_gguf_grid(type))
        return make_error(ErrorCode::kUnsupported,
                          "GPTQ has no grid for GGUF type " + std::string(dtype_name(type)) +
                              " (grids: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
    auto s = std::make_shared<Shared>();
    s->type = type;
    s->n_rows = n_rows;
    s->n_cols = n_cols;
    s->block_elems = dtype_block_elems(type);
    s->block_bytes = dtype_block_bytes(type);
    if (n_rows < 1 || n_cols < 1 || n_cols % s->block_elems != 0)
        return make_error(ErrorCode::kUsage, "GPTQ onto " + std::string(dtype_name(type)) +
                                                 " needs rows of a multiple of " + std::to_string(s->block_elems) +
                                                 " weights, got " + std::to_string(n_cols));
    s->n_blocks = n_cols / s->block_elems;
    s->blocks.assign(static_cast<size_t>(n_rows * s->n_blocks * s->block_bytes), 0);
    s->visited.assign(static_cast<size_t>(s->n_blocks), 0);
    s->importance.assign(static_cast<size_t>(n_cols), 1.0f);
    return std::make_unique<GgufGrid>(std::move(s), n_rows);
}

DType GgufGrid::type() const {
    return shared_->type;
}
const std::vector<float>& GgufGrid::importance() const {
    return shared_->importance;
}
int64_t GgufGrid::required_group_size() const {
    return shared_->block_elems;
}

void GgufGrid::set_hessian_diag(const std::vector<double>& diag) {
    auto& imp = shared_->importance;
    for (size_t c = 0; c < imp.size() && c < diag.size(); ++c) imp[c] = static_cast<float>(diag[c] / 2.0);
}

void GgufGrid::find_params(const float* w, int64_t ld, int64_t n_rows, int64_t col_begin, int64_t n_cols) {
    Shared& s = *shared_;
    LOWBIT_CHECK(n_cols == s.block_elems && col_begin % s.block_elems == 0 && n_rows == s.n_rows);
    block_ = col_begin / s.block_elems;
    s.visited[static_cast<size_t>(block_)] = 1;
    const bool kq = s.block_elems == 256;
    if (kq) keep_.assign(static_cast<size_t>(n_rows * 256), 0);
    const float* imp = s.importance.data() + col_begin;
    ThreadPool::global().parallel_for(
        n_rows,
        [&](int64_t r0, int64_t r1, int) {
            for (int64_t r = r0; r < r1; ++r)
                choose_block(s.type, w + r * ld + col_begin, imp, s.block(r, block_),
                             &p_[static_cast<size_t>(r * kParams)],
                             kq ? &keep_[static_cast<size_t>(r * 256)] : nullptr);
        },
        kq ? 4 : 64);
}

float GgufGrid::quantize(int64_t row, int64_t col, float x, int32_t& code) const {
    const float* p = &p_[static_cast<size_t>(row * kParams)];
    const int i = static_cast<int>(col % shared_->block_elems);
    switch (shared_->type) {
    case DType::kQ8_0: {
        const int l = static_cast<int>(std::clamp(std::round(x * p[0]), -127.0f, 127.0f)); // NaN-free W assumed
        code = l;
        return static_cast<float>(l) * p[1];
    }
    case DType::kQ4_0:
        code = trunc_level(x * p[0] + 8.5f, 15);
        return static_cast<float>(code - 8) * p[1];
    case DType::kQ5_0:
        code = trunc_level(x * p[0] + 16.5f, 31);
        return static_cast<float>(code - 16) * p[1];
    case DType::kQ4_1:
        code = trunc_level((x - p[0]) * p[1] + 0.5f, 15);
        return static_cast<float>(code) * p[2] + p[3];
    case DType::kQ5_1:
        code = trunc_level((x - p[0]) * p[1] + 0.5f, 31);
        return static_cast<float>(code) * p[2] + p[3];
    case DType::kQ4_K:
    case DType::kQ5_K: {
        const int j = i / 32;
        const float d = p[j], dm = p[8 + j];
        // A zero sub-block scale keeps the block quantizer's codes (they all decode to -dm).
        code = d == 0.0f ? keep_[static_cast<size_t>(row * 256 + i)]
                         : nearest_level((x + dm) / d, 0, shared_->type == DType::kQ4_K ? 15 : 31);
        return d * static_cast<float>(code) - dm;
    }
    case DType::kQ2_K: {
        const float d = p[i / 16], dm = p[16 + i / 16];
        code = d == 0.0f ? keep_[static_cast<size_t>(row * 256 + i)] : nearest_level((x + dm) / d, 0, 3);
        return d * static_cast<float>(code) - dm;
    }
    case DType::kQ3_K: {
        const float d = p[i / 16]; // may be negative (6-bit scale - 32)
        code = d == 0.0f ? keep_[static_cast<size_t>(row * 256 + i)] : nearest_level(x / d, -4, 3) + 4;
        return d * static_cast<float>(code - 4);
    }
    case DType::kQ6_K: {
        const float d = p[i / 16];
        code = d == 0.0f ? keep_[static_cast<size_t>(row * 256 + i)] : nearest_level(x / d, -32, 31) + 32;
        return d * static_cast<float>(code - 32);
    }
    default:
        code = 0;
        return 0.0f;
    }
}

void GgufGrid::params(std::vector<float>& scale, std::vector<int32_t>& zero) const {
    // The int-grid view GptqResult records: the first step of each row (informational only for GGUF grids).
    const int64_t n = static_cast<int64_t>(p_.size()) / kParams;
    const bool affine = shared_->type == DType::kQ4_1 || shared_->type == DType::kQ5_1;
    scale.resize(static_cast<size_t>(n));
    zero.assign(static_cast<size_t>(n), 0);
    for (int64_t r = 0; r < n; ++r)
        scale[static_cast<size_t>(r)] = p_[static_cast<size_t>(r * kParams + (affine ? 2 : 0))];
}

Result<std::vector<uint8_t>> GgufGrid::pack(const GptqResult& r) const {
    const Shared& s = *shared_;
    if (r.n_rows != s.n_rows || r.n_cols != s.n_cols || r.codes.size() != static_cast<size_t>(s.n_rows * s.n_cols))
        return make_error(ErrorCode::kInternal, "GGUF grid: GPTQ result shape differs from the grid's");
    for (int64_t b = 0; b < s.n_blocks; ++b)
        if (!s.visited[static_cast<size_t>(b)])
            return make_error(ErrorCode::kInternal, "GGUF grid: block " + std::to_string(b) + " has no parameters");
    std::vector<uint8_t> out = s.blocks;
    const int64_t be = s.block_elems;
    for (int64_t row = 0; row < s.n_rows; ++row)
        for (int64_t b = 0; b < s.n_blocks; ++b) {
            uint8_t* blk = out.data() + static_cast<size_t>((row * s.n_blocks + b) * s.block_bytes);
            const int32_t* L = r.codes.data() + row * s.n_cols + b * be;
            switch (s.type) {
            case DType::kQ8_0: {
                auto& y = *reinterpret_cast<scheme::q8_0::Block*>(blk);
                for (int j = 0; j < 32; ++j) y.qs[j] = static_cast<int8_t>(L[j]);
                break;
            }
            case DType::kQ4_0:
                set_nibbles_32(L, reinterpret_cast<scheme::q4_0::Block*>(blk)->qs);
                break;
            case DType::kQ4_1:
                set_nibbles_32(L, reinterpret_cast<scheme::q4_1::Block*>(blk)->qs);
                break;
            case DType::kQ5_0: {
                auto& y = *reinterpret_cast<scheme::q5_0::Block*>(blk);
                set_q5_32(L, y.qh, y.qs);
                break;
            }
            case DType::kQ5_1: {
                auto& y = *reinterpret_cast<scheme::q5_1::Block*>(blk);
                set_q5_32(L, y.qh, y.qs);
                break;
            }
            case DType::kQ2_K:
                set_q2_k(L, *reinterpret_cast<scheme::q2_k::Block*>(blk));
                break;
            case DType::kQ3_K:
                set_q3_k(L, *reinterpret_cast<scheme::q3_k::Block*>(blk));
                break;
            case DType::kQ4_K:
                set_q4_k(L, *reinterpret_cast<scheme::q4_k::Block*>(blk));
                break;
            case DType::kQ5_K:
                set_q5_k(L, *reinterpret_cast<scheme::q5_k::Block*>(blk));
                break;
            case DType::kQ6_K:
                set_q6_k(L, *reinterpret_cast<scheme::q6_k::Block*>(blk));
                break;
            default:
                break;
            }
        }
    return out;
}

} // namespace lowbit::quantize::gptq
