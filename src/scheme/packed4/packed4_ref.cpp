// SPDX-License-Identifier: MIT
// packed4 reference: repack, dequantize and a plain quantizer per layout (see packed4.h).
#include "core/half.h"
#include "scheme/nf4/nf4.h"
#include "scheme/packed4/packed4.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lowbit::scheme::packed4 {
namespace {

void set_nibbles(const uint8_t* codes, int half, uint8_t* qs) {
    for (int j = 0; j < half; ++j) qs[j] = uint8_t((codes[j] & 0xF) | ((codes[j + half] & 0xF) << 4));
}

void dequantize_f4(const std::array<float, 16>& code, const void* src, float* dst, int64_t n_elems) {
    const auto* b = static_cast<const BlockF4x64*>(src);
    for (int64_t i = 0; i < n_elems / 64; ++i, dst += 64)
        for (int j = 0; j < 32; ++j) {
            dst[j] = code[b[i].qs[j] & 0xF] * b[i].absmax;
            dst[j + 32] = code[b[i].qs[j] >> 4] * b[i].absmax;
        }
}

// Nearest code of x / absmax (ties to the lower index), per 64.
void quantize_f4(const std::array<float, 16>& code, const float* src, void* dst, int64_t n_elems) {
    auto* b = static_cast<BlockF4x64*>(dst);
    for (int64_t i = 0; i < n_elems / 64; ++i, src += 64) {
        float amax = 0.0f;
        for (int j = 0; j < 64; ++j) amax = std::max(amax, std::fabs(src[j]));
        const float inv = amax > 0.0f ? 1.0f / amax : 0.0f;
        uint8_t q[64];
        for (int j = 0; j < 64; ++j) {
            const float v = src[j] * inv;
            int best = 0;
            float best_dist = std::fabs(code[0] - v);
            for (int c = 1; c < 16; ++c) {
                const float dist = std::fabs(code[c] - v);
                if (dist < best_dist) best_dist = dist, best = c;
            }
            q[j] = uint8_t(best);
        }
        b[i].absmax = amax;
        set_nibbles(q, 32, b[i].qs);
    }
}

} // namespace

bool f16_exact(float v) {
    return std::isfinite(v) && f16_to_f32(f32_to_f16(v)) == v;
}

namespace {

// The affine int-group blocks (kI4Z: nibbles, kI8Z: bytes) share everything but where a block's 32 codes live.
struct I4ZCodes {
    using Block = BlockI4Z;
    static constexpr float kMaxQ = 15.0f;
    static void store(const uint8_t* q, Block& b) { set_nibbles(q, 16, b.qs); }
    static uint8_t code(const Block& b, int j) { return j < 16 ? b.qs[j] & 0xF : b.qs[j - 16] >> 4; }
};
struct I8ZCodes {
    using Block = BlockI8Z;
    static constexpr float kMaxQ = 255.0f;
    static void store(const uint8_t* q, Block& b) { std::memcpy(b.qs, q, 32); }
    static uint8_t code(const Block& b, int j) { return b.qs[j]; }
};

template <class C>
bool pack_row_affine(const uint8_t* codes, const float* scales, const float* zeros, int64_t group_elems, int64_t n_cols,
                     void* dst) {
    auto* b = static_cast<typename C::Block*>(dst);
    for (int64_t i = 0; i < n_cols / 32; ++i) {
        const int64_t g = i * 32 / group_elems;
        if (!f16_exact(scales[g]) || !f16_exact(zeros[g])) return false;
        b[i].d = f32_to_f16(scales[g]);
        b[i].z = f32_to_f16(zeros[g]);
        C::store(codes + i * 32, b[i]);
    }
    return true;
}

template <class C> void dequantize_row_affine(const void* src, float* dst, int64_t n_elems) {
    const auto* b = static_cast<const typename C::Block*>(src);
    for (int64_t i = 0; i < n_elems / 32; ++i, dst += 32) {
        const float d = f16_to_f32(b[i].d), z = f16_to_f32(b[i].z);
        for (int j = 0; j < 32; ++j) dst[j] = (float(C::code(b[i], j)) - z) * d;
    }
}

// Asymmetric min/max over the block (0 included, as GPTQ's find_params): d = (hi - lo) / kMaxQ rounded to f16,
// z = round(-lo / d) in [0, kMaxQ], q = clamp(round(x / d) + z).
template <class C> void quantize_row_affine(const float* src, void* dst, int64_t n_elems) {
    auto* b = static_cast<typename C::Block*>(dst);
    for (int64_t i = 0; i < n_elems / 32; ++i, src += 32) {
        float lo = 0.0f, hi = 0.0f;
        for (int j = 0; j < 32; ++j) lo = std::min(lo, src[j]), hi = std::max(hi, src[j]);
        const float d = f16_to_f32(f32_to_f16((hi - lo) / C::kMaxQ));
        const float z = d > 0.0f ? std::clamp(std::nearbyint(-lo / d), 0.0f, C::kMaxQ) : 0.0f;
        uint8_t q[32];
        for (int j = 0; j < 32; ++j)
            q[j] = d > 0.0f ? uint8_t(std::clamp(std::nearbyint(src[j] / d) + z, 0.0f, C::kMaxQ)) : 0;
        b[i].d = f32_to_f16(d);
        b[i].z = f32_to_f16(z);
        C::store(q, b[i]);
    }
}

} // namespace

bool pack_row_i4z(const uint8_t* codes, const float* scales, const float* zeros, int64_t group_elems, int64_t n_cols,
                  void* dst) {
    return pack_row_affine<I4ZCodes>(codes, scales, zeros, group_elems, n_cols, dst);
}
bool pack_row_i8z(const uint8_t* codes, const float* scales, const float* zeros, int64_t group_elems, int64_t n_cols,
                  void* dst) {
    return pack_row_affine<I8ZCodes>(codes, scales, zeros, group_elems, n_cols, dst);
}

void pack_row_f4x64(const uint8_t* codes, const float* absmax, int64_t n_cols, void* dst) {
    auto* b = static_cast<BlockF4x64*>(dst);
    for (int64_t i = 0; i < n_cols / 64; ++i) {
        b[i].absmax = absmax[i];
        set_nibbles(codes + i * 64, 32, b[i].qs);
    }
}

void dequantize_row_i4z(const void* src, float* dst, int64_t n_elems) {
    dequantize_row_affine<I4ZCodes>(src, dst, n_elems);
}
void quantize_row_i4z(const float* src, void* dst, int64_t n_elems, const float*) {
    quantize_row_affine<I4ZCodes>(src, dst, n_elems);
}
void dequantize_row_i8z(const void* src, float* dst, int64_t n_elems) {
    dequantize_row_affine<I8ZCodes>(src, dst, n_elems);
}
void quantize_row_i8z(const float* src, void* dst, int64_t n_elems, const float*) {
    quantize_row_affine<I8ZCodes>(src, dst, n_elems);
}

void dequantize_row_nf4x64(const void* src, float* dst, int64_t n_elems) {
    dequantize_f4(nf4::code_table(nf4::QuantType::kNf4), src, dst, n_elems);
}
void quantize_row_nf4x64(const float* src, void* dst, int64_t n_elems, const float*) {
    quantize_f4(nf4::code_table(nf4::QuantType::kNf4), src, dst, n_elems);
}
void dequantize_row_fp4x64(const void* src, float* dst, int64_t n_elems) {
    dequantize_f4(nf4::code_table(nf4::QuantType::kFp4), src, dst, n_elems);
}
void quantize_row_fp4x64(const float* src, void* dst, int64_t n_elems, const float*) {
    quantize_f4(nf4::code_table(nf4::QuantType::kFp4), src, dst, n_elems);
}

} // namespace lowbit::scheme::packed4
