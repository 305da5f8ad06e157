// SPDX-License-Identifier: MIT
// The "hqq" row of algo_list.h: reads bits, group_size, axis, round_zero, optimize from SchemeParams.
// quantize_hqq_weights is the same row for callers that choose the device and may hand over 2-byte weights
// (`lowbit quantize --method hqq --device`, the hqq_bench tool).
#pragma once

#include "quantize/algo_list.h"
#include "quantize/hqq/hqq_cuda.h"

namespace lowbit::quantize::hqq {

Result<QuantizeOutput> quantize_hqq_algo(const QuantizeRequest& request);

// kAuto -> kCuda when the build has CUDA and a device is usable, else kCpu. kCuda when unavailable: the reason
// (kUnsupported without CUDA, kDevice without a device). kCpu stays kCpu.
Result<HqqDevice> resolve_hqq_device(HqqDevice requested);

// `w`: [n_rows, n_cols] values of `dtype` (kF32, kF16 or kBF16), host memory. kCpu widens to f32 and runs
// quantize_hqq_algo; kCuda runs the shared HqqCudaSolver (2-byte weights travel as they are) and takes the
// report's sums from the device. Both give the same records. `device` must be resolved (not kAuto).
Result<QuantizeOutput> quantize_hqq_weights(const void* w, DType dtype, int64_t n_rows, int64_t n_cols,
                                            const SchemeParams& params, HqqDevice device, ThreadPool* pool = nullptr);

} // namespace lowbit::quantize::hqq
