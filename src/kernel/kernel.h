// SPDX-License-Identifier: MIT
// kernel.h: every op of the forward pass, declared once (contract + shapes). Implementations live per back end
// (ref/ = plain scalar oracle, cpu/ = BLAS + thread pool) and are picked per (op, dtype, backend) by the table
// in kernel_list.h; the dispatching entry points below are what the model room calls.
// Goals: one signature per op; any weight dtype that has a row in scheme/scheme_list.h works in matmul
// (dequantize + f32 math) from day one. Non-goals: activations other than f32; CUDA (kernel/cuda/, later).
// Thread-safety: ops are pure functions of their arguments; `pool` may be used by one op at a time.
#pragma once

#include "core/dtype.h"
#include "core/thread_pool.h"

#include <cstdint>

namespace lowbit::kernel {

enum class Backend : uint8_t { kRef, kCpu };
const char* backend_name(Backend b);

// A 2-D weight matrix [n_rows, n_cols] of any scheme-table dtype, rows `row_bytes` apart (a view into an mmap;
// never owned). For block types n_cols is a multiple of the block size.
struct WeightView {
    const void* data = nullptr;
    DType dtype = DType::kF32;
    int64_t n_rows = 0;
    int64_t n_cols = 0;
    uint64_t row_bytes = 0;
    // dtype kI8 only (LLM.int8 weights, bitsandbytes Linear8bitLt): w = q * row_scale[r] / 127, row_scale is
    // SCB [n_rows] f32 (a view, never owned). matmul decomposes the activations: columns with some
    // |x| >= outlier_threshold multiply in f32, the rest in int8 (kernel/ref/matmul_int8_decomp.h); <= 0: none.
    const float* row_scale = nullptr;
    float outlier_threshold = 0.0f;
    // Any dtype: when set, stored column j multiplies input column col_perm[j] (a permutation of [0, n_cols), a view,
    // never owned) — GPTQ act-order weights repacked with their groups contiguous (model/quantized/repack.h).
    // matmul() gathers x into that order, then multiplies as usual.
    const int32_t* col_perm = nullptr;

    const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + uint64_t(r) * row_bytes; }
};

// Builds a contiguous view; row_bytes from the dtype table. The caller guarantees n_cols fits the block size.
WeightView make_weight(const void* data, DType dtype, int64_t n_rows, int64_t n_cols);

// RoPE pairing conventions.
//   kNeox ("rotate half", Hugging Face): dims (i, i + head_dim/2) rotate together with frequency i.
//   kNorm (interleaved, GGUF/llama.cpp's llama): dims (2i, 2i + 1) rotate together with frequency i.
enum class RopeStyle : uint8_t { kNeox, kNorm };
const char* rope_style_name(RopeStyle s);

// Attention over a KV cache, causal, grouped-query (head h reads kv head h / (n_heads / n_kv_heads)).
struct AttentionArgs {
    const float* q = nullptr; // [n_tokens, n_heads, head_dim]
    const float* k = nullptr; // [n_past + n_tokens, n_kv_heads, head_dim]  (cache rows 0.. used)
    const float* v = nullptr; // [n_past + n_tokens, n_kv_heads, head_dim]
    float* out = nullptr;     // [n_tokens, n_heads, head_dim]
    int64_t n_tokens = 0;
    int64_t n_past = 0; // token t sits at position n_past + t and sees cache rows [0, n_past + t]
    int64_t n_heads = 0;
    int64_t n_kv_heads = 0;
    int64_t head_dim = 0;
    float scale = 1.0f; // usually 1/sqrt(head_dim)
};

// Attention of a batch of tokens that may belong to several sequences, over a KV cache of slots (the runtime
// shape; see model/kv_cache.h). Token t belongs to slot seq[t], sits at position pos[t] and sees rows
// [0, pos[t]] of its slot (written before the call, its own row included). Causal, grouped-query as above.
// The cache stores rows of kv_dim = n_kv_heads * head_dim elements of kv_dtype: kF32, kF16, or kQ8_0 (head_dim
// a multiple of 32). Results for a kF32 cache are bit-identical with `attention` on the same rows.
struct KvAttentionArgs {
    const float* q = nullptr;     // [n_tokens, n_heads, head_dim]
    float* out = nullptr;         // [n_tokens, n_heads, head_dim]
    const int32_t* seq = nullptr; // [n_tokens] slot of each token, in [0, n_seq)
    const int32_t* pos = nullptr; // [n_tokens] position of each token, in [0, n_ctx)
    int64_t n_tokens = 0;
    const void* k = nullptr; // [n_seq, n_ctx, kv_dim] of kv_dtype: one layer of the cache
    const void* v = nullptr; // [n_seq, n_ctx, kv_dim]
    DType kv_dtype = DType::kF32;
    int64_t n_ctx = 0; // rows per slot
    int64_t n_heads = 0;
    int64_t n_kv_heads = 0;
    int64_t head_dim = 0;
    float scale = 1.0f;

    uint64_t row_bytes() const; // bytes of one cache row (kv_dim elements of kv_dtype)
    const uint8_t* k_row(int64_t s, int64_t p) const {
        return static_cast<const uint8_t*>(k) + (uint64_t(s) * uint64_t(n_ctx) + uint64_t(p)) * row_bytes();
    }
    const uint8_t* v_row(int64_t s, int64_t p) const {
        return static_cast<const uint8_t*>(v) + (uint64_t(s) * uint64_t(n_ctx) + uint64_t(p)) * row_bytes();
    }
};

// ---- op signatures (what every back end implements) ----
// y[m, N] = x[m, K] · W[N, K]^T (+ bias[N] when non-null). W.n_cols == K.
using MatmulFn = void (*)(const float* x, int64_t m, const WeightView& w, const float* bias, float* y,
                          ThreadPool* pool);
// y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight[:], for r < n_rows; x, y: [n_rows, n]. y may be x.
using RmsNormFn = void (*)(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps);
// In place on x [n_tokens, n_heads, head_dim] (token rows `row_stride` floats apart): token t at position
// pos0 + t is rotated by angle pos * inv_freq[i], inv_freq: [head_dim / 2].
using RopeFn = void (*)(float* x, int64_t n_tokens, int64_t row_stride, int64_t n_heads, int64_t head_dim, int64_t pos0,
                        const float* inv_freq, RopeStyle style);
// In place: x[0..n) = exp(x - max) / sum.
using SoftmaxFn = void (*)(float* x, int64_t n);
// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)); out may alias gate or up.
using SiluMulFn = void (*)(const float* gate, const float* up, float* out, int64_t n);
using AttentionFn = void (*)(const AttentionArgs& args, ThreadPool* pool);
using KvAttentionFn = void (*)(const KvAttentionArgs& args, ThreadPool* pool);

// ---- dispatching entry points (kernel_list.cpp): the best registered kernel for `backend`, else ref ----
struct Exec {
    Backend backend = Backend::kCpu;
    ThreadPool* pool = nullptr; // null: single-threaded
};

// True when some back end can multiply by weights of `dtype` (it has a scheme row with dequantize_row, or an
// exact-dtype matmul row such as kI8 = LLM.int8 with row_scale).
bool can_matmul(DType dtype);
void matmul(const Exec& ex, const float* x, int64_t m, const WeightView& w, const float* bias, float* y);
void rms_norm(const Exec& ex, const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps);
void rope(const Exec& ex, float* x, int64_t n_tokens, int64_t row_stride, int64_t n_heads, int64_t head_dim,
          int64_t pos0, const float* inv_freq, RopeStyle style);
void softmax(const Exec& ex, float* x, int64_t n);
void silu_mul(const Exec& ex, const float* gate, const float* up, float* out, int64_t n);
void attention(const Exec& ex, const AttentionArgs& args);
// The row is picked by args.kv_dtype (an exact row, else the back end's any-dtype row, else ref).
void kv_attention(const Exec& ex, const KvAttentionArgs& args);
// True when kv_attention accepts a cache of `dtype` (kF32, kF16, kQ8_0).
bool can_cache(DType dtype);

// Dequantizes row `r` of `w` into dst[0..w.n_cols) (embedding lookup). dtype must satisfy can_matmul.
void dequantize_row(const WeightView& w, int64_t r, float* dst);

// Threads OpenBLAS may use inside one GEMM (process-wide; <= 0 leaves the library default).
void set_blas_threads(int n_threads);

} // namespace lowbit::kernel
