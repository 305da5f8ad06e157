// SPDX-License-Identifier: MIT
// AWQ's device-side steps (the math of awq.h on device-resident f32 row-major buffers), for the GPU job
// (pipeline/quantize/awq_gpu_job): the group pseudo-quantizer in the CPU's exact f32 arithmetic (round half to
// even, no FMA contraction: codes, scales and zeros bit-identical to pseudo_quantize), column means of |x| and of the
// group-normalized |w| with fixed-order f64 sums, the clip search as one strided-batched GEMM over the groups per
// shrink step, and the GEMM / SiLU·mul / squared-error pieces the block losses are made of.
// Goals: every grid point of the scale search and every shrink step of the clip search on the device; host traffic
// limited to the scale vectors (n_in floats), the losses (one double) and the final codes.
// Non-goals: the model walk (the job), packing (scheme/awq).
// Built from awq_cuda.cu with CUDA, from awq_cuda_stub.cpp without (create answers kUnsupported).
#pragma once

#include "core/error.h"
#include "quantize/awq/awq_options.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace lowbit::quantize::awq {

// A device weight [n_out, n_in] f32 row-major (not owned).
struct DeviceLinearRef {
    const float* w = nullptr;
    int64_t n_out = 0;
};

// Owns a cuBLAS handle and a workspace grown on demand; every call enqueues on the stream given to create() and is
// ordered with other work there. Calls returning host values synchronize that stream. Not thread-safe.
class AwqCuda {
  public:
    // stream: a cudaStream_t as void* (e.g. CalibLayer::stream()); null = a stream of its own. tf32: GEMMs on the
    // TF32 tensor cores with f32 accumulation (fast default); false = exact f32 GEMMs (tests against the CPU job).
    // kUnsupported without CUDA, kDevice when cuBLAS cannot start.
    static Result<std::unique_ptr<AwqCuda>> create(void* stream, bool tf32);
    virtual ~AwqCuda() = default;

    // Copies on the stream (host pointers may be pageable; the call waits for the copy).
    virtual Status to_device(float* dst, const float* host, int64_t n) = 0;
    virtual Status to_host(float* host, const float* src, int64_t n) = 0;
    virtual Status copy(float* dst, const float* src, int64_t n) = 0; // device to device, no wait

    // y [n, n_out] = x [n, k] · wᵀ (+ bias [n_out], may be null).
    virtual Status linear(const float* x, int64_t n, const float* w, int64_t n_out, int64_t k, const float* bias,
                          float* y) = 0;
    // out [n, ff] = silu(gu[:, :ff]) * gu[:, ff:] for gu [n, 2 ff].
    virtual Status silu_mul(const float* gu, float* out, int64_t n, int64_t ff) = 0;

    // A running Σ (a - b)² in f64 on the device, summed in a fixed order (deterministic): reset_loss(), any number
    // of add_sq_diff, then loss() (waits) returns the sum.
    virtual Status reset_loss() = 0;
    virtual Status add_sq_diff(const float* a, const float* b, int64_t n) = 0;
    virtual Result<double> loss() = 0;

    // ChannelMeanAbs of x [n_tokens, k]: mean |x| per column (f64 sums, then f32), to the host.
    virtual Result<std::vector<float>> channel_mean_abs(const float* x, int64_t n_tokens, int64_t k) = 0;
    // weight_mean (awq.h) of `n_linears` device linears sharing n_in columns, to the host.
    virtual Result<std::vector<float>> weight_mean(const DeviceLinearRef* linears, int64_t n_linears, int64_t n_in,
                                                   int64_t group_size) = 0;

    // out = Q(w · s) / s per group (s: device [n_in]; null = no scaling), pseudo_quantize's arithmetic without f16
    // scales: what search_best_scale evaluates for one grid point. out may equal w.
    virtual Status scaled_pseudo_quantize(const float* w, int64_t n_out, int64_t n_in, const float* s, float* out,
                                          const AwqOptions& o) = 0;
    // Column j of w [n_rows, n_cols] times s[j] (or divided by it); row i times / divided by s[i].
    virtual Status scale_columns(float* w, int64_t n_rows, int64_t n_cols, const float* s, bool divide) = 0;
    virtual Status scale_rows(float* w, int64_t n_rows, int64_t n_cols, const float* s, bool divide) = 0;

    // search_best_clip + apply_clip on device w [n_out, n_in] (already scaled) with inputs x [n_tokens, n_in]:
    // the same token sampling, shrink grid and strict-minimum choice; the error of a shrink step is
    // mean_t (x_g · (q - w)_g)² (the CPU forms x·q - x·w: equal up to f32 rounding). max_val (optional) receives
    // [n_out, n_groups] to the host.
    virtual Status clip(float* w, int64_t n_out, int64_t n_in, const float* x, int64_t n_tokens, const AwqOptions& o,
                        std::vector<float>* max_val = nullptr) = 0;

    // pseudo_quantize(w, f16_scales = true, out) on the device: w becomes s (q - z); codes, scales and zeros come
    // back to the host, bit-identical to the CPU's.
    virtual Status quantize(float* w, int64_t n_out, int64_t n_in, const AwqOptions& o, GroupQuant& out) = 0;

    // Device workspace bytes held now.
    virtual uint64_t workspace_bytes() const = 0;
};

} // namespace lowbit::quantize::awq
