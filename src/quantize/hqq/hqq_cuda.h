// SPDX-License-Identifier: MIT
// HQQ proximal solver on a CUDA device: the algorithm of hqq_solver.h with the same numbers (f32 element math
// with no contraction, per-group sums in the CPU solver's order, round half to even, early stop on the global
// mean |W - Wr|, the zero of the last update kept), codes packed on the device in hqq's layout.
// Built from hqq_cuda.cu when LOWBIT_CUDA is on, from hqq_cuda_stub.cpp otherwise (every call: kUnsupported).
// No CUDA header is seen from here: rooms above kernel/ include this file freely.
#pragma once

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "quantize/hqq/hqq_solver.h"
#include "scheme/hqq/hqq.h"

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace lowbit::quantize::hqq {

// Where `lowbit quantize --method hqq --device` runs the solver.
enum class HqqDevice { kAuto, kCpu, kCuda };

// "auto" | "cpu" | "cuda" (kUsage otherwise, naming the value).
Result<HqqDevice> parse_hqq_device(std::string_view name);
const char* hqq_device_name(HqqDevice device);

// Whether this build has the CUDA solver.
bool hqq_cuda_compiled();
// ok when compiled in and device 0 can be used; otherwise why not: kUnsupported (built without CUDA) or
// kDevice (no device, driver failure). The message is complete enough to print as is.
Status hqq_cuda_available();
// "NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)" for the log; empty when unavailable.
std::string hqq_cuda_device_label();

// The device's reconstruction sums (the same quantities as the CPU solver's HqqSolveResult::recon).
using HqqDeviceStats = HqqReconSums;

// One device and its buffers, pinned staging and stream; buffers grow to the largest matrix seen.
// Not thread-safe: one quantize() at a time (shared_solver() serializes its callers).
class HqqCudaSolver {
  public:
    ~HqqCudaSolver();
    HqqCudaSolver(const HqqCudaSolver&) = delete;
    HqqCudaSolver& operator=(const HqqCudaSolver&) = delete;

    // Binds device `index`; kUnsupported without CUDA, kDevice when the device cannot be used.
    static Result<std::unique_ptr<HqqCudaSolver>> create(int index = 0);

    // quantize_hqq on the device. `w` holds shape.n_elems() values of `dtype` (kF32, kF16 or kBF16) in host
    // memory; 2-byte forms travel as they are and are widened on the device (exactly). `pool` (null: global)
    // copies the host data into pinned staging. `stats` (optional) receives the reconstruction sums.
    // Same errors as quantize_hqq (kUsage, kBadInput for non-finite weights) plus kDevice for CUDA failures.
    Result<HqqSolveResult> quantize(const void* w, DType dtype, const Shape& shape,
                                    const scheme::hqq::HqqParams& params, const HqqOptions& options,
                                    ThreadPool* pool = nullptr, HqqDeviceStats* stats = nullptr);

  private:
    struct Impl;
    explicit HqqCudaSolver(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// A process-wide solver on device 0, created on first use (kept until exit) and locked for the duration of
// `fn(solver)`. Errors of create() are returned (and returned again on later calls).
Status with_shared_solver(const std::function<Status(HqqCudaSolver&)>& fn);

} // namespace lowbit::quantize::hqq
