// SPDX-License-Identifier: MIT
// LlamaGpu: the CUDA engine — a whole Llama-family forward on one GPU (weights, f16 KV cache of n_seq slots and
// activations in device memory; the host only passes token ids, positions and slots, and reads back the logits
// it asked for). C++ view only (no CUDA headers): llama_gpu.cu implements it when LOWBIT_CUDA is on,
// llama_gpu_stub.cpp answers kUnsupported otherwise. The model room describes the model with plain host
// pointers (GpuModelDesc) — this room knows no model types; see model/gpu_engine.h for the adapter.
// Step shape: the runtime's Batch (model/batch.h) — tokens of several slots in one forward; the caller checks
// the batch rules (Transformer::validate_batch) and keeps the slots' lengths.
// Matmuls: m <= 32 tokens -> GEMV launches of <= 8 tokens with fused dequantization (weights read once per 8
// tokens); more -> weights dequantized into a 16-bit scratch matrix, then a cuBLAS tensor-core GEMM. GEMV-only
// steps (m <= 32) are captured in a CUDA graph per (tokens, logits) shape and replayed.
// Thread-safety: one forward at a time per engine.
#pragma once

#include "core/dtype.h"
#include "core/error.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::kernel::cuda {

// A weight matrix [n_rows, n_cols] in host memory (an mmap view): rows row_bytes apart.
struct GpuWeight {
    const void* data = nullptr;
    DType dtype = DType::kF32;
    int64_t n_rows = 0, n_cols = 0;
    uint64_t row_bytes = 0;
    // kI8 only (LLM.int8): per-row scales SCB [n_rows] and the outlier threshold (<= 0: none), as in WeightView.
    const float* row_scale = nullptr;
    float outlier_threshold = 0.0f;
    // Any type: stored column j multiplies input column col_perm[j] (GPTQ act-order, WeightView::col_perm) or null.
    const int32_t* col_perm = nullptr;
};

struct GpuLayerDesc {
    const float* attn_norm = nullptr; // [hidden]
    const float* ffn_norm = nullptr;  // [hidden]
    GpuWeight wq, wk, wv, wo, gate, up, down;
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr; // biases or null
};

struct GpuModelDesc {
    int64_t n_layers = 0, hidden = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, n_ff = 0, n_vocab = 0;
    float rms_eps = 1e-5f;
    bool rope_neox = true;       // rotate-half pairing (HF); false = interleaved (GGUF llama)
    std::vector<float> inv_freq; // [head_dim / 2]
    GpuWeight token_embd, output;
    const float* output_norm = nullptr; // [hidden]
    std::vector<GpuLayerDesc> layers;
};

struct GpuEngineOptions {
    int64_t n_seq = 1;        // KV cache slots
    int64_t n_ctx = 2048;     // positions per slot
    int64_t max_tokens = 512; // tokens per device step (larger batches run as several steps)
    int device = 0;
    bool graphs = true; // capture decode steps (<= 8 tokens) in CUDA graphs
};

// Whether the CUDA engine multiplies by weights of `dtype` (f32/f16/bf16, q4_0..q8_0, q2_k..q6_k); false
// without CUDA.
bool gpu_engine_supports(DType dtype);
// Whether the engine's GEMV (m <= 32) multiplies weights of `dtype` by 8-bit activations (blocks of 32, quantized
// like the CPU's qdot) rather than f32 ones; LOWBIT_GEMV=f32 turns it off. False without CUDA.
bool gpu_gemv_uses_q8_activations(DType dtype);

class LlamaGpu {
  public:
    // Uploads the weights and allocates cache and scratch. Errors: kUnsupported (a weight type without device
    // code, naming it; head_dim > 256; rows not multiples of 32), kOutOfMemory ("needs N GiB, the GPU has M GiB
    // free"), kDevice (no device / driver failure), kUsage (inconsistent dims).
    static Result<std::unique_ptr<LlamaGpu>> create(const GpuModelDesc& model, const GpuEngineOptions& options);
    virtual ~LlamaGpu() = default;

    // One step: n tokens (token ids, positions, slots), logits [n_want, n_vocab] into host `logits` for the
    // tokens with want[t] != 0, in order. Writes every token's K/V row. Preconditions: the batch rules.
    virtual Status forward(const int32_t* token, const int32_t* pos, const int32_t* seq, const uint8_t* want, int64_t n,
                           float* logits) = 0;
    // Copies positions [0, n) of slot src into slot dst (every layer).
    virtual Status copy_prefix(int64_t src, int64_t dst, int64_t n) = 0;

    virtual uint64_t weight_bytes() const = 0; // device bytes of the weights
    virtual uint64_t cache_bytes() const = 0;  // device bytes of K + V
    virtual std::string device_name() const = 0;
};

// y[m, n_rows] = x[m, n_cols] · Wᵀ on the device through the engine's matmul (GEMV for m <= 32 unless
// force_gemm, else dequantize + cuBLAS): the parity tests' entry point. Host arrays in and out.
Status gpu_matmul(const GpuWeight& w, const float* x, int64_t m, float* y, bool force_gemm = false);

// Device time of one such matmul in microseconds (weights uploaded once, the mean of `reps` launches after a
// warm-up, CUDA events): the kernel benchmark's entry point (tests/tools/gpu_matmul_bench.cpp). x: the host
// activations [m, n_cols] to multiply (zeros when null; LLM.int8's time depends on its outlier columns).
Result<double> gpu_matmul_time_us(const GpuWeight& w, int64_t m, int reps, bool force_gemm = false,
                                  const float* x = nullptr);

} // namespace lowbit::kernel::cuda
