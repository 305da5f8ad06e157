// SPDX-License-Identifier: MIT
// CalibLayer: one Llama-family decoder layer on the GPU holding the hidden states of every calibration sample,
// for GPTQ/AWQ calibration passes (observe each linear's input, then run the samples through the layer).
// DeviceHessian: H = 2/n · Σ x xᵀ accumulated on the device. C++ view only (no CUDA headers): calib_layer.cu
// implements it when LOWBIT_CUDA is on, calib_layer_stub.cpp answers kUnsupported otherwise.
#pragma once

#include "core/error.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace lowbit::kernel::cuda {

// Shapes of one decoder layer (Hugging Face orientation: RoPE "rotate half" on unpermuted q/k weights).
struct LayerDims {
    int64_t hidden = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, ff = 0;
    float rms_eps = 1e-5f;
    std::vector<float> rope_inv_freq; // [head_dim / 2], from model::compute_inv_freq (host)
};

// The seven linears of a layer. Input groups: {kQ, kK, kV} see normed h, {kO} the attention output,
// {kGate, kUp} normed h2, {kDown} silu(gate) * up.
enum class Slot { kQ, kK, kV, kO, kGate, kUp, kDown };
const char* slot_name(Slot s);    // "q_proj", ..., "down_proj"
Slot first_slot_of_group(Slot s); // kQ for kQ/kK/kV, kGate for kGate/kUp, else s
inline constexpr int kNumSlots = 7;

// `n` floats of device memory (cudaMalloc), freed when the last shared_ptr goes (tests, drivers).
Result<std::shared_ptr<float>> device_floats(int64_t n);
// Synchronous copies between host and device memory (observers, tests and drivers that hold device pointers).
Status copy_device_to_host(void* host, const void* device, uint64_t bytes);
Status copy_host_to_device(void* device, const void* host, uint64_t bytes);

// GEMM math mode of the layer's linears and attention. kTF32 (10-bit mantissa inputs, f32 accumulation) is the
// fast default; kF32 is exact f32 (tests, references). Hessians are always exact (see DeviceHessian).
enum class Precision { kF32, kTF32 };

class CalibLayer {
  public:
    // Allocates weights [out, in] f32 for all seven linears, the hidden states [n_samples * seqlen, hidden] f32 and
    // scratch for one chunk of samples (chunk size picked so attention scores [chunk, n_heads, seqlen, seqlen] f32
    // stay under ~1 GiB; see set_chunk_samples). Errors: kUsage for inconsistent dims (n_heads % n_kv_heads,
    // odd head_dim, rope_inv_freq size), kDevice / kOutOfMemory from CUDA (message names the buffer and bytes).
    static Result<std::unique_ptr<CalibLayer>> create(const LayerDims& dims, int64_t n_samples, int64_t seqlen,
                                                      Precision precision = Precision::kTF32);
    virtual ~CalibLayer() = default;

    // Host weights in nn.Linear orientation [out, in] row-major f32; bias [out] or null (no bias, e.g. Llama;
    // Qwen2 has q/k/v bias). Synchronous copy.
    virtual Status set_linear(Slot slot, const float* w, const float* bias) = 0;
    virtual Status set_norms(const float* attn_norm, const float* ffn_norm) = 0; // [hidden] each
    // Device [out, in] row-major f32 of `slot` (the GPU GPTQ solver updates it in place). Writes from other streams
    // must be complete before the next forward() (synchronize, or work on stream()).
    virtual float* device_weight(Slot slot) = 0;

    // Hidden states of all samples: [n_samples * seqlen, hidden] f32, sample s at rows [s*seqlen, (s+1)*seqlen).
    // set_hidden: n_rows must equal n_samples * seqlen (kUsage otherwise).
    virtual Status set_hidden(const float* host, int64_t n_rows) = 0;
    virtual Status get_hidden(float* host) const = 0;
    virtual float* device_hidden() = 0;

    // Observer of linear inputs: called once per input group per chunk of samples with a DEVICE pointer
    // x [n_tokens, k] f32 (n_tokens = chunk samples * seqlen), valid only during the call. Runs on stream() with
    // everything before it already enqueued on stream() (work the observer enqueues on stream() is ordered).
    using Observer = std::function<Status(Slot first_slot_of_group, const float* x, int64_t n_tokens, int64_t k)>;

    // Runs every sample through the layer: causal attention per sample (positions 0..seqlen-1), GQA.
    // in_place: the hidden states become the layer output; else they stay (statistics-only pass).
    // stop_after: each chunk stops right after the observer of that slot's group (requires !in_place).
    // An observer error stops the pass and is returned. Synchronizes stream() before returning.
    virtual Status forward(bool in_place, const Observer& observer, std::optional<Slot> stop_after = {}) = 0;

    // Samples per chunk (>= 1; clamped to n_samples). Bigger chunks give larger GEMMs and more scratch.
    virtual Status set_chunk_samples(int64_t n) = 0;
    virtual int64_t chunk_samples() const = 0;
    // Device bytes held now (weights + hidden + scratch).
    virtual uint64_t device_bytes() const = 0;
    // The runner's cudaStream_t (as void*: no CUDA headers here). Enqueue device work on it to stay ordered.
    virtual void* stream() const = 0;

    const LayerDims& dims() const { return dims_; }
    int64_t n_samples() const { return n_samples_; }
    int64_t seqlen() const { return seqlen_; }

  protected:
    CalibLayer(LayerDims dims, int64_t n_samples, int64_t seqlen)
        : dims_(std::move(dims)), n_samples_(n_samples), seqlen_(seqlen) {}
    LayerDims dims_;
    int64_t n_samples_ = 0, seqlen_ = 0;
};

// How DeviceHessian multiplies. Both keep the running sums in f64.
//  kF64 (default): inputs widened exactly, cuBLAS dsyrk (FP64 tensor cores). Exact up to f64 rounding (~1e-15);
//    the reference. H200, k = 11008, 32768 rows: 83 ms (48 TFLOP/s, near the FP64 peak).
//  kSplitTf32: x = hi + lo (hi = x rounded to TF32, lo = x - hi); per block of <= 4096 rows
//    hiᵀhi + hiᵀlo + (hiᵀlo)ᵀ on the TF32 tensor cores with f32 accumulation (the lo·lo term, ~2^-22 relative,
//    is dropped), then added to the f64 sums. Same case: 71 ms (15 % faster) at 3e-5 max error relative to max|H|
//    (~2e-6 on small blocks): far below GPTQ's 1 % damping, but not exact — an opt-in for speed.
enum class HessianMath { kF64, kSplitTf32 };

// H = 2/n · Σ x xᵀ over rows x of device inputs [n_tokens, k] f32 (n = total rows, as
// quantize::gptq::HessianAccumulator). Sums are f64 across blocks in both modes: f32 sums over 128 × 2048 rows
// would lose ~1e-4 relative on the diagonal.
class DeviceHessian {
  public:
    // stream: a cudaStream_t as void* (e.g. CalibLayer::stream()) on which add() enqueues its work, so it needs no
    // synchronization inside an observer; null = own stream, and add() synchronizes before returning. A given stream
    // must outlive this object.
    static Result<std::unique_ptr<DeviceHessian>> create(int64_t k, void* stream = nullptr,
                                                         HessianMath math = HessianMath::kF64);
    virtual ~DeviceHessian() = default;

    // Accumulates xᵀx of device x [n_tokens, k] f32 (row-major). x must stay valid until the work on the stream
    // has run (inside an observer on CalibLayer::stream() that is guaranteed).
    virtual Status add(const float* device_x, int64_t n_tokens) = 0;
    // Finished H = 2/n · Σ xxᵀ, full symmetric [k, k] f64 in a device buffer owned by this object (valid until the
    // next finish_device/add/reset). Synchronizes. kBadInput when no rows were added.
    virtual Result<const double*> finish_device() = 0;
    // Same values copied to the host (resized to k*k).
    virtual Status to_host(std::vector<double>& h) = 0;
    // Zeroes the sums (reuse for the next linear without reallocating).
    virtual Status reset() = 0;
    virtual int64_t k() const = 0;
    virtual int64_t n_samples() const = 0; // rows added so far
    virtual uint64_t device_bytes() const = 0;
};

} // namespace lowbit::kernel::cuda
