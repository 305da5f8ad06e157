// SPDX-License-Identifier: MIT
// GPTQ on a CUDA device: the same math as gptq.cpp (damping with auto-increase, Cholesky inverse in f64 through
// cuSOLVER, blocks of 128 columns: one kernel quantizes the block row-parallel, one cuBLAS SGEMM does the lazy update
// of the remaining columns), on device-resident W and H. Results equal the CPU gptq_quantize up to f32 summation
// order in the lazy update (a few rounding ties per million codes).
// Built from gptq_cuda.cu with CUDA, from gptq_cuda_stub.cpp without (every call answers kUnsupported).
// Seen from C++ without CUDA headers: device buffers are plain pointers the caller allocated with cudaMalloc.
#pragma once

#include "core/error.h"
#include "quantize/gptq/gptq.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace lowbit::quantize::gptq {

// Host wall time spent in the solver's phases since create() (each phase ends with a stream synchronization).
struct GptqCudaTimes {
    double prepare_s = 0;  // dead columns, permutation, damping, potrf/potri/potrf, inverse factor
    double quantize_s = 0; // group parameters, block kernels, lazy-update SGEMMs, Ŵ rebuild
    double download_s = 0; // codes/scales/zeros to the host
    int64_t n_prepare = 0, n_quantize = 0;
};

// Holds the cuBLAS / cuSOLVER handles and the device workspace (grown on demand, reused across calls).
// Works on the legacy default stream unless set_stream names another. Not thread-safe.
// Device workspace for K inputs, N outputs: 8K² (f64 Hessian work) + 4K² (f32 inverse factor) + ~8NK bytes.
class GptqCudaSolver {
  public:
    // kUnsupported without CUDA; kDevice when the handles cannot be created (no device, driver missing).
    static Result<std::unique_ptr<GptqCudaSolver>> create();
    ~GptqCudaSolver();
    GptqCudaSolver(const GptqCudaSolver&) = delete;
    GptqCudaSolver& operator=(const GptqCudaSolver&) = delete;

    // Phase 1, once per Hessian (q/k/v share one, gate/up share one): dead columns, act-order permutation (options
    // desc_act), damping with the same ×10 auto-increase and warning as the CPU, inverse Cholesky factor.
    // h_dev: [n_cols, n_cols] f64 device, symmetric (2 XᵀX / n); read only.
    Status prepare(const double* h_dev, int64_t n_cols, const GptqOptions& opt);
    // Phase 2, per weight sharing the prepared Hessian: w_dev [n_rows, n_cols] f32 device is replaced by Ŵ in the
    // original column order. With round_scales_f16, Ŵ is rebuilt as f16(scale) * (code - zero), what an HF GPTQ
    // checkpoint stores (the CPU job propagates exactly that). Result: everything but `dequant` (left empty).
    Result<GptqResult> quantize_prepared(float* w_dev, int64_t n_rows, const GptqOptions& opt,
                                         bool round_scales_f16 = false);
    // prepare + quantize_prepared.
    Result<GptqResult> quantize(float* w_dev, int64_t n_rows, int64_t n_cols, const double* h_dev,
                                const GptqOptions& opt, bool round_scales_f16 = false);

    // All device work and copies go to this cudaStream_t (as void*; null = the legacy default stream), e.g.
    // CalibLayer::stream() so the solver orders with the layer runner. Host results are complete on return.
    Status set_stream(void* stream);

    const GptqCudaTimes& times() const;
    // Bytes of device workspace held now (for memory reports).
    uint64_t workspace_bytes() const;

  private:
    GptqCudaSolver();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Host-memory convenience (tests, small layers): uploads W and H, runs the solver, downloads Ŵ into `dequant`.
Result<GptqResult> gptq_quantize_cuda(const float* w, int64_t n_rows, int64_t n_cols, const std::vector<double>& h,
                                      const GptqOptions& opt, bool round_scales_f16 = false);

// Device memory in use on the current device (total - free, cudaMemGetInfo); kUnsupported without CUDA.
Result<uint64_t> cuda_used_bytes();

} // namespace lowbit::quantize::gptq
