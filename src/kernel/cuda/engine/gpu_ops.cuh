// SPDX-License-Identifier: MIT
// The CUDA engine's device ops (included by .cu files only). Every launcher enqueues on `stream` and returns
// the launch error (cudaGetLastError) — no host synchronization, so a decode step can be captured in a graph.
// Activations are f32 [n_tokens, width] row-major; weights are rows of their file type (gpu_quant.cuh) in the
// device layout of gpu_repack.h — `layout`: the device_layout() the rows were repacked with (kI4Z group shift).
#pragma once

#include "core/dtype.h"

#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace lowbit::kernel::cuda::engine {

// Whether the engine has device code for weights of `dtype` (row widths must be multiples of 32).
bool gpu_weight_type(DType dtype);
// Uploads what the device decoder of `dtype` needs besides the weights (the NF4/FP4 code tables); call before
// launching kernels on such weights (not during graph capture).
cudaError_t prepare_decoder(DType dtype);

// Largest token count of one GEMV launch (weights streamed once, fused dequantization), and of a step that
// multiplies by GEMV launches (ceil(m / 8) passes over the weights: for a quantized matrix still fewer bytes than
// dequantizing it to f16 for a GEMM, up to about 32 tokens); larger steps take the GEMM path.
inline constexpr int kGemvMaxTokens = 8;
inline constexpr int kGemvStepMaxTokens = 32;

// y[m, n_rows] (= or +=, per `accumulate`) x[m, n_cols] · Wᵀ (+ bias) for m <= kGemvMaxTokens.
cudaError_t launch_gemv(DType dtype, const uint8_t* w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols,
                        const float* x, int64_t m, const float* bias, float* y, bool accumulate, cudaStream_t stream,
                        int layout = 0);
// Whether GEMVs of `dtype` multiply by 8-bit activations (q8_0, q4_0, kI4Z, q4_k, q5_k, q6_k: x quantized per block
// of 32 like the CPU's qdot, integer dots) — unless LOWBIT_GEMV=f32 (f32 activations for
// every type, for A/B runs).
bool gemv_q8_type(DType dtype);
// x [m, n_cols] -> xq [m, n_cols] int8 and ds [m, n_cols / 32] {d, Σ q} (the activation input of launch_gemv_q8).
cudaError_t launch_quantize_q8(const float* x, int64_t m, int64_t n_cols, int8_t* xq, float2* ds, cudaStream_t stream);
// launch_gemv for a gemv_q8_type, from activations quantized by launch_quantize_q8.
cudaError_t launch_gemv_q8(DType dtype, const uint8_t* w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols,
                           const int8_t* xq, const float2* ds, int64_t m, const float* bias, float* y, bool accumulate,
                           cudaStream_t stream, int layout = 0);
// W [n_rows, n_cols] of `dtype` -> dense f16 (or bf16 when to_bf16) rows [n_rows, n_cols] (prefill GEMMs).
cudaError_t launch_dequant_matrix(DType dtype, const uint8_t* w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols,
                                  void* out, bool to_bf16, cudaStream_t stream, int layout = 0);
// hidden[t] = row token[t] of the embedding (any engine type), t < n.
cudaError_t launch_embed(DType dtype, const uint8_t* w, uint64_t row_bytes, int64_t n_cols, const int32_t* token,
                         int64_t n, float* hidden, cudaStream_t stream, int layout = 0);
// f32 -> f16 / bf16 (GEMM inputs), n elements.
cudaError_t launch_to_half(const float* x, __half* y, int64_t n, cudaStream_t stream);
cudaError_t launch_to_bf16(const float* x, __nv_bfloat16* y, int64_t n, cudaStream_t stream);
// y[r, :] += bias (n_rows rows of width n).
cudaError_t launch_add_bias(float* y, const float* bias, int64_t n_rows, int64_t n, cudaStream_t stream);
// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, rows of width n; y may be x. With xq (n % 32 == 0), y is also
// quantized as launch_quantize_q8 would (the next GEMV's input, one launch fewer).
cudaError_t launch_rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps,
                            cudaStream_t stream, int8_t* xq = nullptr, float2* ds = nullptr);
// out[t, i] = silu(gate[t·gate_stride + i]) · up[t·up_stride + i] for t < n_rows, i < n (out may alias gate when
// the strides are n). With xq (n % 32 == 0), out is also quantized as launch_quantize_q8 would.
cudaError_t launch_silu_mul(const float* gate, int64_t gate_stride, const float* up, int64_t up_stride, float* out,
                            int64_t n_rows, int64_t n, cudaStream_t stream, int8_t* xq = nullptr, float2* ds = nullptr);
// y[t, j] = x[t, perm[j]] for t < m, j < k (GPTQ act-order: x into a weight's stored column order).
cudaError_t launch_gather_cols(const float* x, int64_t m, int64_t k, const int32_t* perm, float* y,
                               cudaStream_t stream);
// dst[i, :] = src[rows[i], :] for i < n_out (rows of width n).
cudaError_t launch_gather_rows(const float* src, const int32_t* rows, int64_t n_out, int64_t n, float* dst,
                               cudaStream_t stream);

// RoPE on q [n, n_heads, head_dim] and k [n, n_kv, head_dim] (token t at position pos[t]; neox = rotate-half
// pairing, else interleaved), then k and v rows into the f16 cache layer [n_seq, n_ctx, n_kv * head_dim] at
// (seq[t], pos[t]). Token rows of q, k, v are *_stride floats apart (a fused QKV output interleaves them).
struct RopeStoreArgs {
    float* q = nullptr;
    float* k = nullptr;
    const float* v = nullptr;
    int64_t q_stride = 0, k_stride = 0, v_stride = 0;
    const int32_t* pos = nullptr;
    const int32_t* seq = nullptr;
    int64_t n = 0, n_heads = 0, n_kv = 0, head_dim = 0, n_ctx = 0;
    const float* inv_freq = nullptr; // [head_dim / 2]
    bool neox = true;
    __half* k_cache = nullptr;
    __half* v_cache = nullptr;
};
cudaError_t launch_rope_store(const RopeStoreArgs& a, cudaStream_t stream);

// Causal GQA attention of n tokens over their slots of an f16 cache layer, split-K (flash-decoding): the
// positions of each (token, head) are cut into n_split ranges of `split_len`, each reduced with an online
// softmax into `partial` [n, n_heads, n_split, head_dim + 2], then merged into out [n, n_heads, head_dim].
struct AttentionArgs {
    const float* q = nullptr; // token rows q_stride floats apart
    int64_t q_stride = 0;
    const __half* k_cache = nullptr;
    const __half* v_cache = nullptr;
    const int32_t* pos = nullptr;
    const int32_t* seq = nullptr;
    float* out = nullptr;
    float* partial = nullptr;
    int8_t* out_q8 = nullptr; // optional: out quantized as launch_quantize_q8 would (head_dim % 32 == 0)
    float2* out_ds = nullptr;
    int64_t n = 0, n_heads = 0, n_kv = 0, head_dim = 0, n_ctx = 0;
    int n_split = 1, split_len = 0;
    float scale = 1.0f;
};
cudaError_t launch_attention(const AttentionArgs& a, cudaStream_t stream);
// Splits for a cache of n_ctx positions (fixed per engine so that captured graphs stay valid).
void attention_splits(int64_t n_ctx, int& n_split, int& split_len, bool decode = false);

} // namespace lowbit::kernel::cuda::engine
