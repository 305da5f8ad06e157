// SPDX-License-Identifier: MIT
// The CUDA engine's weight layouts on the device (host code; used at upload). q4_0, q8_0, q6_k and kI4Z rows are
// repacked into two planes — the quant bytes of every block (16, 32, 208 bytes: 16-byte multiples), then the f16
// scale of every block (kNF4x64 / kFP4x64: the f32 absmax, their nibbles reordered per sub-block, gpu_quant.cuh) — so
// that the device decoders (gpu_quant.cuh) read quants with 16-byte loads; every row starts 16-byte aligned (row stride
// padded). Other types keep the file's bytes (rows padded to 16 bytes too).
#pragma once

#include "core/dtype.h"

#include <cstdint>
#include <cstring>

namespace lowbit::kernel::cuda::engine {

struct RepackSpec {
    int quant_offset = 0, quant_bytes = 0; // within a file block
    int meta_offset = 0, meta_bytes = 0;
};

// True (and the split) for the types stored repacked.
inline bool repack_spec(DType t, RepackSpec& s) {
    switch (t) {
    case DType::kQ4_0:
        s = {2, 16, 0, 2};
        return true;
    case DType::kQ8_0:
        s = {2, 32, 0, 2};
        return true;
    case DType::kQ6_K:
        s = {0, 208, 208, 2};
        return true;
    case DType::kI4Z: // d f16 | z f16 | qs[16]
        s = {4, 16, 0, 4};
        return true;
    case DType::kNF4x64: // absmax f32 | qs[32]
    case DType::kFP4x64:
        s = {4, 32, 0, 4};
        return true;
    default:
        return false;
    }
}

// Device bytes of one row (16-byte multiple) for a row of file_row_bytes.
inline uint64_t device_row_bytes(uint64_t file_row_bytes) {
    return (file_row_bytes + 15) / 16 * 16;
}

// Device layouts: kLayoutFile (the split planes above) and, for kI4Z, kLayoutI4ZG128 (its value is the decoders'
// group shift, gpu_quant.cuh QI4ZG<2>): the (d, z) pair once per group of 4 blocks (128 weights) when every such group
// of every row carries one pair — the int4 g128 files of GPTQ/AWQ/HQQ/RTN, which kI4Z (per-32 pairs) repeats 4 times —
// and the row has a multiple of 16 blocks (the meta plane stays 16-byte aligned); layout 0 otherwise. n_rows rows,
// src_row_bytes apart.
inline constexpr int kLayoutFile = 0, kLayoutI4ZG128 = 2;
inline int device_layout(DType t, const uint8_t* src, uint64_t src_row_bytes, int64_t n_rows, uint64_t file_row_bytes) {
    if (t != DType::kI4Z) return kLayoutFile;
    const uint64_t nb = file_row_bytes / 20;
    if (nb % 16 != 0) return kLayoutFile;
    for (int64_t r = 0; r < n_rows; ++r) {
        const uint8_t* in = src + uint64_t(r) * src_row_bytes;
        for (uint64_t b = 0; b < nb; ++b)
            if (b % 4 != 0 && std::memcmp(in + b * 20, in + (b - b % 4) * 20, 4) != 0) return kLayoutFile;
    }
    return kLayoutI4ZG128;
}

// Device bytes of one row in `layout` (device_row_bytes for layout 0).
inline uint64_t device_row_bytes(uint64_t file_row_bytes, int layout) {
    if (layout != kLayoutI4ZG128) return device_row_bytes(file_row_bytes);
    const uint64_t nb = file_row_bytes / 20;
    return 16 * nb + 4 * (nb / 4);
}

// n_rows rows of file bytes (src_row_bytes apart) -> device layout (device_row_bytes apart) at dst.
inline void repack_rows(DType t, const uint8_t* src, uint64_t src_row_bytes, int64_t n_rows, uint64_t file_row_bytes,
                        uint8_t* dst, int layout = kLayoutFile) {
    const uint64_t dst_row = device_row_bytes(file_row_bytes, layout);
    RepackSpec s;
    const bool split = repack_spec(t, s);
    const uint64_t block = uint64_t(dtype_block_bytes(t)), nb = split ? file_row_bytes / block : 0;
    for (int64_t r = 0; r < n_rows; ++r) {
        const uint8_t* in = src + uint64_t(r) * src_row_bytes;
        uint8_t* out = dst + uint64_t(r) * dst_row;
        if (dst_row > file_row_bytes) std::memset(out + file_row_bytes, 0, dst_row - file_row_bytes);
        if (!split) {
            std::memcpy(out, in, file_row_bytes);
            continue;
        }
        uint8_t* meta = out + nb * uint64_t(s.quant_bytes);
        const bool f4 = t == DType::kNF4x64 || t == DType::kFP4x64;
        for (uint64_t b = 0; b < nb; ++b) {
            uint8_t* q = out + b * uint64_t(s.quant_bytes);
            const uint8_t* fq = in + b * block + uint64_t(s.quant_offset);
            if (f4) // file byte j: element j (low nibble), j + 32 (high) -> sub-block h, byte m: 2m | 2m + 1 << 4
                for (int h = 0; h < 2; ++h)
                    for (int m = 0; m < 16; ++m)
                        q[16 * h + m] =
                            uint8_t(((fq[2 * m] >> (4 * h)) & 0xF) | (((fq[2 * m + 1] >> (4 * h)) & 0xF) << 4));
            else
                std::memcpy(q, fq, size_t(s.quant_bytes));
            if (layout == kLayoutI4ZG128 && b % 4 != 0)
                continue; // the group's pair, once (device_layout checked they agree)
            std::memcpy(meta + (layout == kLayoutI4ZG128 ? b / 4 : b) * uint64_t(s.meta_bytes),
                        in + b * block + uint64_t(s.meta_offset), size_t(s.meta_bytes));
        }
    }
}

} // namespace lowbit::kernel::cuda::engine
