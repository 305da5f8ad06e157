// SPDX-License-Identifier: MIT
// Exact IEEE binary16 and bfloat16 <-> float32 conversion: round to nearest even, NaN and Inf kept,
// subnormals handled. Bit-exact with numpy's float16 cast and torch's bfloat16 cast.
#pragma once

#include <cstdint>
#include <cstring>

namespace lowbit {

inline uint32_t f32_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float f32_from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// Element i of a 16-bit / 32-bit array at any alignment. Tensor data is mmap'd: a safetensors header of odd length
// (a valid file) puts every tensor at an odd address, so a plain uint16_t/float load would be misaligned (UB).
inline uint16_t load_u16(const void* p, int64_t i) {
    uint16_t v;
    std::memcpy(&v, static_cast<const unsigned char*>(p) + 2 * i, 2);
    return v;
}
inline float load_f32(const void* p, int64_t i) {
    float v;
    std::memcpy(&v, static_cast<const unsigned char*>(p) + 4 * i, 4);
    return v;
}
inline void store_u16(void* p, int64_t i, uint16_t v) {
    std::memcpy(static_cast<unsigned char*>(p) + 2 * i, &v, 2);
}

// float32 -> binary16 bits, round to nearest even.
inline uint16_t f32_to_f16(float f) {
    const uint32_t x = f32_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t exp = (x >> 23) & 0xffu;
    uint32_t mant = x & 0x7fffffu;
    if (exp == 0xffu) { // Inf or NaN (keep a quiet NaN with the top mantissa bits)
        return static_cast<uint16_t>(sign | 0x7c00u | (mant ? (0x200u | (mant >> 13)) : 0u));
    }
    const int32_t e = static_cast<int32_t>(exp) - 127 + 15;
    if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u); // overflow -> Inf
    if (e <= 0) {                                                // subnormal or zero in f16
        if (e < -10) return static_cast<uint16_t>(sign);
        mant |= 0x800000u;
        const uint32_t shift = static_cast<uint32_t>(14 - e);
        uint32_t half_mant = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1u);
        const uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (half_mant & 1u))) ++half_mant;
        return static_cast<uint16_t>(sign | half_mant);
    }
    uint32_t h = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h; // carry may roll into the exponent: correct
    return static_cast<uint16_t>(h);
}

inline float f16_to_f32(uint16_t h) {
    const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        if (mant == 0) return f32_from_bits(sign);
        int e = -1; // normalize the subnormal
        do {
            ++e;
            mant <<= 1;
        } while ((mant & 0x400u) == 0);
        mant &= 0x3ffu;
        return f32_from_bits(sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant << 13));
    }
    if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));
    return f32_from_bits(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

// float32 -> bfloat16 bits, round to nearest even; NaN stays NaN (quiet).
inline uint16_t f32_to_bf16(float f) {
    const uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
    const uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>((x + rounding) >> 16);
}

inline float bf16_to_f32(uint16_t b) {
    return f32_from_bits(static_cast<uint32_t>(b) << 16);
}

} // namespace lowbit
