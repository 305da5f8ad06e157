// SPDX-License-Identifier: MIT
// AVX2 dots of the k-quants (Q2_K … Q6_K) with BlockQ8K activations, 1..kMaxX activation rows per pass.
// Every type is decoded per super-block into one common form, then one loop does the integer math:
//   q[c]:   32 unsigned levels of chunk c (weights 32c .. 32c+31), c = 0..7;
//   scv[c]: that chunk's scales as 16 int16 (low 8 lanes: weights 32c..+15, high 8: 32c+16..+31);
//   off16:  per group of 16, the scale that multiplies a level offset (Q3_K: 4, Q6_K: 32) — since levels are
//           stored unsigned, Σ sc (q - off) x = Σ sc q x - off Σ sc bsum, with bsum from the activation block;
//   min16:  per group of 16, the min (Q2_K, Q4_K, Q5_K): the block adds -dmin * Σ min * bsum.
// Per block and activation row: sumi = Σ_c madd(maddubs(q[c], x_c), scv[c]) - (off16 · bsum) << shift, exact
// in int32; then acc += d * d_x * sumi. Q2_K/Q3_K/Q5_K decode a block once for all the rows of a call (batched
// decode); Q4_K/Q6_K from 2 rows on run register tiles that decode each chunk on the fly, once per 4 rows (tile()).
// Compiled with -mavx2 -mfma -mf16c; dot_kquant_vnni.cpp compiles this file again with -mavxvnni as well, where
// the tiles' madd + add is one vpdpwssd (the same exact int32 sums, so the same bits).
#if defined(__AVX2__) // x86-64 builds only (kernel/CMakeLists.txt adds the flags there)
#include "kernel/cpu/qdot/avx2/avx2_util.h"
#include "kernel/cpu/qdot/qdot.h"
#include "scheme/q2_k/q2_k.h"
#include "scheme/q3_k/q3_k.h"
#include "scheme/q4_k/q4_k.h"
#include "scheme/q5_k/q5_k.h"
#include "scheme/q6_k/q6_k.h"

namespace lowbit::kernel::cpu::qdot {
namespace {

// The dots prefetch the weights this many bytes ahead of the block they decode (rows are contiguous: past the end
// of a row, into the next ones). Synthetic 1B Q4_K_M tg, 2-core EPYC: 1152 (one row) 23-25 tok/s, 2304 26-29,
// 4608 26-28, 9216 25-26.
constexpr int kPrefetchBytes = 4096;

using namespace avx2;

// sum += madd(a, b): one instruction with AVX-VNNI (dot_kquant_vnni.cpp), exact int32 either way.
static inline __m256i madd_add(__m256i sum, __m256i a, __m256i b) {
#if defined(LOWBIT_QDOT_KQUANT_VNNI)
    return _mm256_dpwssd_avx_epi32(sum, a, b);
#else
    return _mm256_add_epi32(sum, _mm256_madd_epi16(a, b));
#endif
}

struct Q4_KChunks; // register-tile decoders (below)
struct Q6_KChunks;

struct Decoded {
    __m256i q[8];
    __m256i scv[8];
    __m256i off16; // scales for the offset correction (kOffsetShift >= 0)
    __m256i min16; // mins per group of 16 (kMin)
    float d, dmin;
};

// Two group scales (groups of 16) as one chunk's scale vector.
static inline __m256i pair_scales(int16_t lo, int16_t hi) {
    return _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo));
}

// Q2_K/Q3_K low 2 bits: per 128 weights 32 bytes; chunk c of the half sits at shift 2c.
static inline void two_bit_chunks(const uint8_t* qs, __m256i* q) {
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int half = 0; half < 2; ++half) {
        __m256i bits = load256(qs + 32 * half);
        for (int c = 0; c < 4; ++c, bits = _mm256_srli_epi16(bits, 2)) q[4 * half + c] = _mm256_and_si256(bits, m3);
    }
}

// Q4_K/Q5_K common part: the 8 6-bit scales and mins (ggml's get_scale_min_k4, rearranged in 32-bit words as in
// ggml's AVX2 dot) widened to int16; each chunk's scale broadcast by a byte shuffle, each min duplicated over its
// two groups of 16. No scalar stores feed vector loads (store-forwarding stalls were 10 % of the decode).
static inline void k4_scales_mins(const uint8_t* scales, __m256i* sc, __m256i* min16) {
    constexpr uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    uint32_t u[4];
    std::memcpy(u, scales, 12);
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4); // mins 4..7
    const uint32_t mins_lo = u[1] & k1;                    // mins 0..3
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);        // scales 4..7
    u[2] = mins_lo;
    u[0] &= k1; // scales 0..3
    const __m256i sm = _mm256_cvtepu8_epi16(_mm_set_epi32(int(u[3]), int(u[2]), int(u[1]), int(u[0])));
    const __m128i mn = _mm256_extracti128_si256(sm, 1);
    *min16 = _mm256_set_m128i(_mm_unpackhi_epi16(mn, mn), _mm_unpacklo_epi16(mn, mn));
    *sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm)); // scales 0..7 as int16 in both 128-bit lanes
}

// Chunk c's scale vector from k4_scales_mins' broadcast scales.
static inline __m256i k4_chunk_scale(__m256i sc, int c) {
    return _mm256_shuffle_epi8(sc, _mm256_set1_epi16(short(0x0100 + 0x0202 * c)));
}

static inline void decode_k4_scales(const uint8_t* scales, Decoded& o) {
    __m256i sc;
    k4_scales_mins(scales, &sc, &o.min16);
    for (int c = 0; c < 8; ++c) o.scv[c] = k4_chunk_scale(sc, c);
}

static inline __m256i nibbles(const uint8_t* qs, int c) {
    const __m256i bits = load256(qs + 32 * (c / 2));
    return _mm256_and_si256(c % 2 ? _mm256_srli_epi16(bits, 4) : bits, _mm256_set1_epi8(0x0F));
}

struct Q2_K {
    using Block = scheme::q2_k::Block;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMin = true;
    static void decode(const Block& b, Decoded& o) {
        o.d = f16(b.d), o.dmin = f16(b.dmin);
        const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
        const __m128i m4 = _mm_set1_epi8(0x0F);
        alignas(32) int16_t sc[16];
        _mm256_store_si256(reinterpret_cast<__m256i*>(sc), _mm256_cvtepu8_epi16(_mm_and_si128(s, m4)));
        o.min16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), m4));
        for (int c = 0; c < 8; ++c) o.scv[c] = pair_scales(sc[2 * c], sc[2 * c + 1]);
        two_bit_chunks(b.qs, o.q);
    }
};

struct Q3_K {
    using Block = scheme::q3_k::Block;
    static constexpr int kOffsetShift = 2; // levels q - 4
    static constexpr bool kMin = false;
    static void decode(const Block& b, Decoded& o) {
        o.d = f16(b.d), o.dmin = 0.0f;
        alignas(32) int16_t sc[16];
        for (int g = 0; g < 16; ++g) {
            const int low = g < 8 ? b.scales[g] & 0xF : b.scales[g - 8] >> 4;
            sc[g] = int16_t((low | (((b.scales[8 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32);
        }
        o.off16 = load256(sc);
        for (int c = 0; c < 8; ++c) o.scv[c] = pair_scales(sc[2 * c], sc[2 * c + 1]);
        two_bit_chunks(b.qs, o.q);
        // hmask bit c of byte l is the high bit (+4) of weight 32c + l.
        __m256i h = load256(b.hmask);
        for (int c = 0; c < 8; ++c, h = _mm256_srli_epi16(h, 1))
            o.q[c] = _mm256_or_si256(o.q[c], _mm256_and_si256(_mm256_slli_epi16(h, 2), _mm256_set1_epi8(4)));
    }
};

struct Q4_K {
    using Block = scheme::q4_k::Block;
    using Tiles = Q4_KChunks;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMin = true;
    static void decode(const Block& b, Decoded& o) {
        o.d = f16(b.d), o.dmin = f16(b.dmin);
        decode_k4_scales(b.scales, o);
        for (int c = 0; c < 8; ++c) o.q[c] = nibbles(b.qs, c);
    }
};

struct Q5_K {
    using Block = scheme::q5_k::Block;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMin = true;
    static void decode(const Block& b, Decoded& o) {
        o.d = f16(b.d), o.dmin = f16(b.dmin);
        decode_k4_scales(b.scales, o);
        // qh bit c of byte l is the 5th bit (+16) of weight 32c + l.
        __m256i h = load256(b.qh);
        for (int c = 0; c < 8; ++c, h = _mm256_srli_epi16(h, 1))
            o.q[c] = _mm256_or_si256(nibbles(b.qs, c), _mm256_and_si256(_mm256_slli_epi16(h, 4), _mm256_set1_epi8(16)));
    }
};

struct Q6_K {
    using Block = scheme::q6_k::Block;
    using Tiles = Q6_KChunks;
    static constexpr int kOffsetShift = 5; // levels q - 32
    static constexpr bool kMin = false;
    static void decode(const Block& b, Decoded& o) {
        o.d = f16(b.d), o.dmin = 0.0f;
        const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
        o.off16 = _mm256_cvtepi8_epi16(s8);
        // chunk c: groups 2c (low 128-bit lane) and 2c + 1 (high lane), picked from int16 lanes by a byte shuffle.
        const __m256i s_lo = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(o.off16));      // groups 0..7
        const __m256i s_hi = _mm256_broadcastsi128_si256(_mm256_extracti128_si256(o.off16, 1)); // groups 8..15
        for (int c = 0; c < 8; ++c) {
            const int g = 2 * (c % 4); // group 2c within its half of the 16 groups
            const __m256i pick = _mm256_set_m128i(_mm_set1_epi16(short(0x0100 + 0x0202 * (g + 1))),
                                                  _mm_set1_epi16(short(0x0100 + 0x0202 * g)));
            o.scv[c] = _mm256_shuffle_epi8(c < 4 ? s_lo : s_hi, pick);
        }
        const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
        for (int half = 0; half < 2; ++half) {
            // chunk c: low nibble of ql[l + 32 (c % 2)] (c < 2) or its high nibble, qh[l] bits 2c..2c+1 on top.
            const __m256i l0 = load256(b.ql + 64 * half), l1 = load256(b.ql + 64 * half + 32);
            const __m256i h = load256(b.qh + 32 * half);
            __m256i* q = o.q + 4 * half;
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
        }
    }
};

// NX (1..4) activation rows against decoded block i, chunk-outer: q[c] and scv[c] are read once for all NX rows
// while their NX integer sums stay in registers. acc[j] gets d * d_x * sumi (then the min term) exactly as with
// any other NX, so a row's result does not depend on how many rows share the pass.
template <class T, int NX>
static inline void block_rows(const Decoded& dec, const uint8_t* act, int64_t act_stride, int64_t i, __m256* acc) {
    const BlockQ8K* x[NX];
    __m256i sumi[NX];
    for (int j = 0; j < NX; ++j) {
        x[j] = reinterpret_cast<const BlockQ8K*>(act + j * act_stride) + i;
        sumi[j] = _mm256_setzero_si256();
    }
    for (int c = 0; c < 8; ++c) {
        const __m256i q = dec.q[c], sc = dec.scv[c];
        for (int j = 0; j < NX; ++j) {
            const __m256i p = _mm256_maddubs_epi16(q, load256(x[j]->qs + 32 * c));
            sumi[j] = _mm256_add_epi32(sumi[j], _mm256_madd_epi16(p, sc));
        }
    }
    for (int j = 0; j < NX; ++j) {
        const __m256i bsums = load256(x[j]->bsums);
        if constexpr (T::kOffsetShift >= 0)
            sumi[j] =
                _mm256_sub_epi32(sumi[j], _mm256_slli_epi32(_mm256_madd_epi16(dec.off16, bsums), T::kOffsetShift));
        acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dec.d * x[j]->d), _mm256_cvtepi32_ps(sumi[j]), acc[j]);
        if constexpr (T::kMin) {
            const __m256 m = _mm256_cvtepi32_ps(_mm256_madd_epi16(dec.min16, bsums));
            acc[j] = _mm256_fnmadd_ps(_mm256_set1_ps(dec.dmin * x[j]->d), m, acc[j]);
        }
    }
}

// 1..4 rows: accumulators in registers.
template <class T, int NX>
void dot_n(int64_t k, const typename T::Block* w, const uint8_t* act, int64_t act_stride, float* out,
           int64_t out_stride) {
    __m256 acc[NX];
    for (int j = 0; j < NX; ++j) acc[j] = _mm256_setzero_ps();
    Decoded dec;
    for (int64_t i = 0; i < k / 256; ++i) {
        prefetch_span(reinterpret_cast<const uint8_t*>(w + i) + kPrefetchBytes, int(sizeof(typename T::Block)));
        T::decode(w[i], dec);
        block_rows<T, NX>(dec, act, act_stride, i, acc);
    }
    for (int j = 0; j < NX; ++j) out[j * out_stride] = hsum(acc[j]);
}

// Register tiles for the batched decode of the types with an on-the-fly chunk decoder (Q4_K, Q6_K): one weight
// row against NX (1..4) activation rows with the NX float accumulators and the NX integer sums in registers for the
// whole row; each chunk is decoded straight from the weight block into one register (q and its scale vector) and
// used by the NX rows (no Decoded round trip through the stack, no accumulator loads and stores per block). The
// row is decoded once per 4 activation rows, which costs less than dot_wide's spills (kernel_bench, 1 thread, 2-core
// EPYC, shared, m = 16: Q4_K / Q6_K 1.3-1.35x faster than dot_wide at 2048x2048, 8192x512, 1024x512). Every
// (weight row, activation row) gets exactly dot_n's operations: the same integer lanes (exact), then the same fma /
// fnmadd per block and the same hsum, so the bits do not depend on n_x.
struct Q4_KChunks {
    using Block = scheme::q4_k::Block;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMin = true;
    struct Prep {
        __m256i sc; // scales 0..7 as int16, in both 128-bit lanes
        __m256i min16;
        float d, dmin;
    };
    static inline void prep(const Block& b, Prep& p) {
        p.d = f16(b.d), p.dmin = f16(b.dmin);
        k4_scales_mins(b.scales, &p.sc, &p.min16);
    }
    static inline void chunk(const Block& b, const Prep& p, int c, __m256i& q, __m256i& sc) {
        q = nibbles(b.qs, c);
        sc = k4_chunk_scale(p.sc, c);
    }
};

struct Q6_KChunks {
    using Block = scheme::q6_k::Block;
    static constexpr int kOffsetShift = 5;
    static constexpr bool kMin = false;
    struct Prep {
        __m256i s_lo, s_hi; // groups 0..7 / 8..15 as int16, broadcast to both 128-bit lanes
        __m256i off16;
        float d;
    };
    static inline void prep(const Block& b, Prep& p) {
        p.d = f16(b.d);
        p.off16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
        p.s_lo = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(p.off16));
        p.s_hi = _mm256_broadcastsi128_si256(_mm256_extracti128_si256(p.off16, 1));
    }
    static inline void chunk(const Block& b, const Prep& p, int c, __m256i& q, __m256i& sc) {
        const int half = c / 4, cc = c % 4, g = 2 * cc;
        const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
        const __m256i l = load256(b.ql + 64 * half + 32 * (cc % 2));
        const __m256i h = load256(b.qh + 32 * half);
        const __m256i lo = cc < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
        __m256i hi;
        switch (cc) {
        case 0:
            hi = _mm256_slli_epi16(h, 4);
            break;
        case 1:
            hi = _mm256_slli_epi16(h, 2);
            break;
        case 2:
            hi = h;
            break;
        default:
            hi = _mm256_srli_epi16(h, 2);
            break;
        }
        q = _mm256_or_si256(lo, _mm256_and_si256(hi, m30));
        const __m256i pick = _mm256_set_m128i(_mm_set1_epi16(short(0x0100 + 0x0202 * (g + 1))),
                                              _mm_set1_epi16(short(0x0100 + 0x0202 * g)));
        sc = _mm256_shuffle_epi8(c < 4 ? p.s_lo : p.s_hi, pick);
    }
};

template <class T, int NX>
static inline void tile(int64_t k, const typename T::Block* w, const uint8_t* act, int64_t act_stride, float* out,
                        int64_t out_stride) {
    __m256 acc[NX];
    for (int j = 0; j < NX; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < k / 256; ++i) {
        const typename T::Block& b = w[i];
        typename T::Prep p;
        T::prep(b, p);
        const BlockQ8K* x[NX];
        __m256i sumi[NX];
        for (int j = 0; j < NX; ++j) {
            x[j] = reinterpret_cast<const BlockQ8K*>(act + j * act_stride) + i;
            sumi[j] = _mm256_setzero_si256();
        }
#pragma GCC unroll 8 // constant c: the chunk decoders' branches and shift counts fold away
        for (int c = 0; c < 8; ++c) {
            __m256i q, sc;
            T::chunk(b, p, c, q, sc);
            for (int j = 0; j < NX; ++j) {
                const __m256i pr = _mm256_maddubs_epi16(q, load256(x[j]->qs + 32 * c));
                sumi[j] = madd_add(sumi[j], pr, sc);
                // Keeps the running sum in one register: without it GCC reassociates the (exact) integer adds into
                // a tree over all 8 chunks and spills the 4 x 8 products to the stack.
                __asm__("" : "+x"(sumi[j]));
            }
        }
        const __m256 dv = _mm256_set1_ps(p.d);
        [[maybe_unused]] __m256 dminv;
        if constexpr (T::kMin) dminv = _mm256_set1_ps(p.dmin);
        for (int j = 0; j < NX; ++j) {
            const __m256i bsums = load256(x[j]->bsums);
            if constexpr (T::kOffsetShift >= 0)
                sumi[j] =
                    _mm256_sub_epi32(sumi[j], _mm256_slli_epi32(_mm256_madd_epi16(p.off16, bsums), T::kOffsetShift));
            // d * d_x as a vector product (a load-broadcast, no scalar multiply and register broadcast): the same
            // f32 product as dot_n's scalar one.
            const __m256 dx = _mm256_broadcast_ss(&x[j]->d);
            acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(dv, dx), _mm256_cvtepi32_ps(sumi[j]), acc[j]);
            if constexpr (T::kMin) {
                const __m256 m = _mm256_cvtepi32_ps(_mm256_madd_epi16(p.min16, bsums));
                acc[j] = _mm256_fnmadd_ps(_mm256_mul_ps(dminv, dx), m, acc[j]);
            }
        }
    }
    for (int j = 0; j < NX; ++j) out[j * out_stride] = hsum(acc[j]);
}

// 2..kMaxX rows through the register tiles, 4 activation rows at a time. Not inlined into dot(): its stack frame
// would make every single-row call (decode of one sequence) save and restore six registers.
template <class T>
__attribute__((noinline)) void dot_tiles(int64_t k, const typename T::Block* w, const uint8_t* act, int64_t act_stride,
                                         int n_x, float* out, int64_t out_stride) {
    int j = 0;
    for (; j + 4 <= n_x; j += 4) tile<T, 4>(k, w, act + j * act_stride, act_stride, out + j * out_stride, out_stride);
    const uint8_t* rest = act + j * act_stride;
    float* o = out + j * out_stride;
    switch (n_x - j) {
    case 3:
        return tile<T, 3>(k, w, rest, act_stride, o, out_stride);
    case 2:
        return tile<T, 2>(k, w, rest, act_stride, o, out_stride);
    case 1:
        return tile<T, 1>(k, w, rest, act_stride, o, out_stride);
    default:
        return;
    }
}

// 5..kMaxX rows: each block decoded once, then passed to the rows 4 at a time (accumulators on the stack).
template <class T>
void dot_wide(int64_t k, const typename T::Block* w, const uint8_t* act, int64_t act_stride, int n_x, float* out,
              int64_t out_stride) {
    __m256 acc[kMaxX];
    for (int j = 0; j < kMaxX; ++j) acc[j] = _mm256_setzero_ps(); // all kMaxX: unrolled stores, not a memset call
    Decoded dec;
    for (int64_t i = 0; i < k / 256; ++i) {
        prefetch_span(reinterpret_cast<const uint8_t*>(w + i) + kPrefetchBytes, int(sizeof(typename T::Block)));
        T::decode(w[i], dec);
        int j = 0;
        for (; j + 4 <= n_x; j += 4) block_rows<T, 4>(dec, act + j * act_stride, act_stride, i, acc + j);
        const uint8_t* rest = act + j * act_stride;
        switch (n_x - j) {
        case 3:
            block_rows<T, 3>(dec, rest, act_stride, i, acc + j);
            break;
        case 2:
            block_rows<T, 2>(dec, rest, act_stride, i, acc + j);
            break;
        case 1:
            block_rows<T, 1>(dec, rest, act_stride, i, acc + j);
            break;
        default:
            break;
        }
    }
    for (int j = 0; j < n_x; ++j) out[j * out_stride] = hsum(acc[j]);
}

template <class T>
void dot(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out, int64_t out_stride) {
    const auto* w = static_cast<const typename T::Block*>(w_row);
    const auto* a = static_cast<const uint8_t*>(act);
    // Q4_K/Q6_K: the register tiles from 2 rows on (kernel_bench, 1 thread, m = 2..4: 1.07-1.3x less time than
    // dot_n). One row stays on dot_n (tile<T, 1> was 1.2-1.35x faster for Q6_K but up to 8 % slower for Q4_K at
    // K = 512; single-sequence decode is left as it was).
    if constexpr (requires { typename T::Tiles; })
        if (n_x >= 2) return dot_tiles<typename T::Tiles>(k, w, a, act_stride, n_x, out, out_stride);
    switch (n_x) {
    case 1:
        return dot_n<T, 1>(k, w, a, act_stride, out, out_stride);
    case 2:
        return dot_n<T, 2>(k, w, a, act_stride, out, out_stride);
    case 3:
        return dot_n<T, 3>(k, w, a, act_stride, out, out_stride);
    case 4:
        return dot_n<T, 4>(k, w, a, act_stride, out, out_stride);
    default:
        if constexpr (requires { typename T::Tiles; })
            return dot_tiles<typename T::Tiles>(k, w, a, act_stride, n_x, out, out_stride);
        else
            return dot_wide<T>(k, w, a, act_stride, n_x, out, out_stride);
    }
}

} // namespace

#if defined(LOWBIT_QDOT_KQUANT_VNNI)
DotFn find_dot_kquant_avxvnni(DType dtype) {
#else
DotFn find_dot_kquant_avx2(DType dtype) {
#endif
    switch (dtype) {
    case DType::kQ2_K:
        return dot<Q2_K>;
    case DType::kQ3_K:
        return dot<Q3_K>;
    case DType::kQ4_K:
        return dot<Q4_K>;
    case DType::kQ5_K:
        return dot<Q5_K>;
    case DType::kQ6_K:
        return dot<Q6_K>;
    default:
        return nullptr;
    }
}

} // namespace lowbit::kernel::cpu::qdot

#endif // __AVX2__
