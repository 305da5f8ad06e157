// SPDX-License-Identifier: MIT
// packed4: lowbit's in-memory block layouts for 4-bit Hugging Face checkpoints, so the CPU engine multiplies by
// the packed weights instead of a dense f32 copy (model/quantized repacks each Linear at load; never in a file).
//   kI4Z (20 bytes / 32 weights, 5.0 bpw): d f16 | z f16 | qs[16]; byte j: low nibble = weight j, high = j + 16.
//        w = d * (q - z). The affine int4 groups of GPTQ, AWQ, lowbit RTN (integer z) and HQQ (float z) with any
//        group size that is a multiple of 32: every block repeats its group's (d, z). d and z are the file's f16
//        values, and dequantize_row computes (float(q) - z) * d, the same f32 expression as those layouts'
//        reference dequantizations, so the repack is bit-exact (pack_row_i4z refuses values f16 cannot hold).
//   kI8Z (36 bytes / 32 weights, 9.0 bpw): d f16 | z f16 | qs[32], one byte per weight; w = d * (q - z) as kI4Z,
//        for the 8-bit groups of GPTQ, HQQ and lowbit RTN (the same bit-exact expression and f16 checks).
//   kNF4x64 / kFP4x64 (36 bytes / 64 weights, 4.5 bpw): absmax f32 | qs[32]; byte j: low nibble = weight j,
//        high = weight j + 32. w = code[q] * absmax with bitsandbytes' 16-entry NF4 / FP4 table
//        (scheme/nf4/nf4.h); bit-exact with nf4::dequantize (same product) for block sizes that are multiples
//        of 64 (a block's absmax repeated per 64).
#pragma once

#include <cstdint>

namespace lowbit::scheme::packed4 {

struct BlockI4Z {
    uint16_t d;     // f16 scale
    uint16_t z;     // f16 zero point (integer for GPTQ/AWQ/RTN, any f16 value for HQQ)
    uint8_t qs[16]; // nibbles
};
static_assert(sizeof(BlockI4Z) == 20, "kI4Z block is 20 bytes");

struct BlockI8Z {
    uint16_t d;     // f16 scale
    uint16_t z;     // f16 zero point
    uint8_t qs[32]; // codes
};
static_assert(sizeof(BlockI8Z) == 36, "kI8Z block is 36 bytes");

struct BlockF4x64 {
    float absmax;   // the bitsandbytes block's absmax (double quant already undone)
    uint8_t qs[32]; // nibbles (code indices)
};
static_assert(sizeof(BlockF4x64) == 36, "kNF4x64 / kFP4x64 block is 36 bytes");

// True when v is exactly an f16 value (finite), i.e. a kI4Z block can hold it without rounding.
bool f16_exact(float v);

// One row of n_cols codes (each < 16) into n_cols / 32 kI4Z blocks at dst. Groups of group_elems consecutive
// columns (a multiple of 32 dividing n_cols) share scales[g] and zeros[g]. Returns false, dst undefined, when a
// scale or zero is not an f16 value (the caller keeps the dense path).
bool pack_row_i4z(const uint8_t* codes, const float* scales, const float* zeros, int64_t group_elems, int64_t n_cols,
                  void* dst);
// The same for 8-bit codes into kI8Z blocks.
bool pack_row_i8z(const uint8_t* codes, const float* scales, const float* zeros, int64_t group_elems, int64_t n_cols,
                  void* dst);
// One row of n_cols codes (each < 16, n_cols % 64 == 0) with absmax[n_cols / 64] into kNF4x64/kFP4x64 blocks.
void pack_row_f4x64(const uint8_t* codes, const float* absmax, int64_t n_cols, void* dst);

// Scheme-table rows. quantize_row is a plain round-to-nearest (min/max scale, integer zero; absmax + nearest
// code) so the registry tests and the kernel parity test cover the layouts; real weights come from the repack.
void dequantize_row_i4z(const void* src, float* dst, int64_t n_elems);
void quantize_row_i4z(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row_i8z(const void* src, float* dst, int64_t n_elems);
void quantize_row_i8z(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row_nf4x64(const void* src, float* dst, int64_t n_elems);
void quantize_row_nf4x64(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row_fp4x64(const void* src, float* dst, int64_t n_elems);
void quantize_row_fp4x64(const float* src, void* dst, int64_t n_elems, const float* importance);

} // namespace lowbit::scheme::packed4
