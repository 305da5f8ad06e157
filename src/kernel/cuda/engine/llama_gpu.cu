// SPDX-License-Identifier: MIT
// The CUDA engine (see llama_gpu.h): weight upload, the per-step op sequence, GEMV/GEMM choice, graphs.
#include "core/half.h"
#include "kernel/cuda/calib_layer_util.cuh"
#include "kernel/cuda/engine/gpu_int8.cuh"
#include "kernel/cuda/engine/gpu_ops.cuh"
#include "kernel/cuda/engine/gpu_repack.h"
#include "kernel/cuda/engine/llama_gpu.h"
#include "scheme/packed4/packed4.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>

namespace lowbit::kernel::cuda {
namespace {

using engine::kGemvMaxTokens;

std::string gib(double bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", bytes / double(1ull << 30));
    return buf;
}

std::string type_name(DType t) {
    return std::string(dtype_name(t));
}

// A weight matrix in device memory, in its file layout.
struct DevWeight {
    DeviceBuffer<uint8_t> buf;
    DType dtype = DType::kF32;
    int64_t n_rows = 0, n_cols = 0;
    uint64_t row_bytes = 0;
    DeviceBuffer<float> scb;          // kI8: per-row scales
    float threshold = 0.0f;           // kI8: outlier threshold
    int layout = engine::kLayoutFile; // gpu_repack.h device_layout (kLayoutI4ZG128: one (d, z) per 128 weights)
    DeviceBuffer<int32_t> perm;       // GPTQ act-order: stored column j = input column perm[j] (GpuWeight::col_perm)
};

// LLM.int8 weights: int8 rows with per-row scales, multiplied by launch_int8_decomp (no block decoder).
bool is_int8(const GpuWeight& w) {
    return w.dtype == DType::kI8 && w.row_scale;
}

// kI8Z (the 8-bit groups of GPTQ/HQQ/RTN) has no device decoder yet: its rows go to the device as f16 (the
// dequantized values rounded to f16, 2 bytes per weight instead of the 4 of the dense f32 path they had before).
bool f16_on_device(DType dtype) {
    return dtype == DType::kI8Z;
}

Status check_weight(const GpuWeight& w, const std::string& name) {
    if (!engine::gpu_weight_type(w.dtype) && !is_int8(w) && !f16_on_device(w.dtype))
        return make_error(ErrorCode::kUnsupported,
                          name + ": weights of type " + type_name(w.dtype) +
                              " have no CUDA kernel (the engine runs f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, "
                              "q2_k, q3_k, q4_k, q5_k, q6_k, the int4 groups of GPTQ, AWQ, HQQ and RTN, bitsandbytes "
                              "nf4/fp4 and LLM.int8; run it with "
                              "--device cpu)");
    if (w.n_cols % dtype_block_elems(w.dtype) != 0 || w.n_cols % 32 != 0 || w.n_rows < 1)
        return make_error(ErrorCode::kUnsupported, name + ": rows of " + std::to_string(w.n_cols) +
                                                       " columns (the CUDA engine needs a multiple of 32)");
    return ok_status();
}

// Copies matrices stacked in order into d (one, or several of one type and width: fused QKV, gate|up), in the
// device layout (gpu_repack.h).
Status upload_rows(std::initializer_list<const GpuWeight*> list, DevWeight& d, const std::string& name) {
    std::vector<const GpuWeight*> ws(list);
    std::vector<std::vector<uint16_t>> f16_rows; // f16_on_device types, converted on the host
    std::vector<GpuWeight> as_f16;
    f16_rows.reserve(ws.size()), as_f16.reserve(ws.size());
    for (const GpuWeight*& w : ws) {
        if (!f16_on_device(w->dtype)) continue; // (checked as the f16 copy below)
        std::vector<uint16_t>& h = f16_rows.emplace_back(size_t(w->n_rows * w->n_cols));
        std::vector<float> row(static_cast<size_t>(w->n_cols));
        for (int64_t r = 0; r < w->n_rows; ++r) {
            scheme::packed4::dequantize_row_i8z(static_cast<const uint8_t*>(w->data) + uint64_t(r) * w->row_bytes,
                                                row.data(), w->n_cols); // the only f16_on_device type
            for (int64_t j = 0; j < w->n_cols; ++j) h[size_t(r * w->n_cols + j)] = f32_to_f16(row[size_t(j)]);
        }
        GpuWeight c = *w;
        c.data = h.data(), c.dtype = DType::kF16, c.row_bytes = uint64_t(w->n_cols) * 2;
        as_f16.push_back(c);
        w = &as_f16.back();
    }
    const GpuWeight* a = ws.front();
    int64_t rows = 0;
    for (const GpuWeight* w : ws) {
        LOWBIT_TRY(check_weight(*w, name));
        rows += w->n_rows;
    }
    const uint64_t file_row = uint64_t(a->n_cols / dtype_block_elems(a->dtype)) * uint64_t(dtype_block_bytes(a->dtype));
    d.layout = engine::kLayoutI4ZG128; // the stacked matrices share one row layout: the compact one only when every
                                       // matrix allows it
    for (const GpuWeight* w : ws)
        d.layout = std::min(d.layout, engine::device_layout(w->dtype, static_cast<const uint8_t*>(w->data),
                                                            w->row_bytes, w->n_rows, file_row));
    d.dtype = a->dtype, d.n_rows = rows, d.n_cols = a->n_cols,
    d.row_bytes = engine::device_row_bytes(file_row, d.layout);
    CALIB_CUDA_TRY(engine::prepare_decoder(a->dtype), "decoder tables for " + name);
    LOWBIT_TRY(d.buf.alloc(int64_t(uint64_t(rows) * d.row_bytes), name));
    if (is_int8(*a)) { // the stacked rows' scales, in the same order
        std::vector<float> scb;
        for (const GpuWeight* w : ws) scb.insert(scb.end(), w->row_scale, w->row_scale + w->n_rows);
        d.threshold = a->outlier_threshold;
        LOWBIT_TRY(d.scb.alloc(rows, name + " row scales"));
        CALIB_CUDA_TRY(cudaMemcpy(d.scb.get(), scb.data(), scb.size() * 4, cudaMemcpyHostToDevice),
                       "upload of " + name + " row scales");
    }
    if (a->col_perm) { // stacked matrices share it (can_fuse)
        LOWBIT_TRY(d.perm.alloc(a->n_cols, name + " column order"));
        CALIB_CUDA_TRY(cudaMemcpy(d.perm.get(), a->col_perm, uint64_t(a->n_cols) * 4, cudaMemcpyHostToDevice),
                       "upload of " + name + " column order");
    }
    std::vector<uint8_t> staging;
    uint64_t off = 0;
    for (const GpuWeight* w : ws) {
        const uint64_t bytes = uint64_t(w->n_rows) * d.row_bytes;
        staging.resize(size_t(bytes));
        engine::repack_rows(w->dtype, static_cast<const uint8_t*>(w->data), w->row_bytes, w->n_rows, file_row,
                            staging.data(), d.layout);
        CALIB_CUDA_TRY(cudaMemcpy(d.buf.get() + off, staging.data(), bytes, cudaMemcpyHostToDevice),
                       "upload of " + name);
        off += bytes;
    }
    return ok_status();
}

Status upload(const GpuWeight& w, DevWeight& d, const std::string& name) {
    return upload_rows({&w}, d, name);
}

// Several matrices of one type and width stacked into one [Σ rows, n_cols] (fused QKV, gate|up: one GEMV
// launch reads them all).
bool can_fuse(std::initializer_list<const GpuWeight*> ws) {
    const GpuWeight* a = *ws.begin();
    for (const GpuWeight* w : ws)
        if (w->dtype != a->dtype || w->n_cols != a->n_cols || w->row_bytes != a->row_bytes ||
            !w->row_scale != !a->row_scale || w->outlier_threshold != a->outlier_threshold ||
            !w->col_perm != !a->col_perm ||
            (w->col_perm && !std::equal(w->col_perm, w->col_perm + w->n_cols, a->col_perm)))
            return false;
    return true;
}

Status upload_floats(const float* host, int64_t n, DeviceBuffer<float>& d, const std::string& name) {
    if (!host) return ok_status();
    LOWBIT_TRY(d.alloc(n, name));
    CALIB_CUDA_TRY(cudaMemcpy(d.get(), host, uint64_t(n) * 4, cudaMemcpyHostToDevice), "upload of " + name);
    return ok_status();
}

bool needs_dequant_scratch(DType t) {
    return t != DType::kF16 && t != DType::kBF16 && t != DType::kF32 && t != DType::kI8 && !f16_on_device(t);
}

// Matmul on the device: GEMV for few tokens, dequantize + cuBLAS for more. Owns the GEMM scratch.
class Matmul {
  public:
    ~Matmul() {
        if (cublas_) cublasDestroy(cublas_);
    }
    // int8: whether some weight is LLM.int8 (its scratch: mask, int8 rows and scales for max_tokens tokens).
    // perm: whether some weight has a column order (GPTQ act-order; its scratch: x gathered for max_tokens tokens).
    Status init(cudaStream_t stream, int64_t max_tokens, int64_t max_cols, int64_t max_dequant_elems, bool int8,
                bool perm) {
        stream_ = stream;
        if (perm) LOWBIT_TRY(xp_.alloc(max_tokens * max_cols, "act-order activations"));
        if (int8) {
            LOWBIT_TRY(i8_mask_.alloc(max_cols, "LLM.int8 outlier mask"));
            LOWBIT_TRY(i8_outl_.alloc(max_cols + 1, "LLM.int8 outlier list"));
            LOWBIT_TRY(i8_xq_.alloc(max_tokens * max_cols, "LLM.int8 activations"));
            LOWBIT_TRY(i8_amax_.alloc(max_tokens, "LLM.int8 activation scales"));
        }
        CALIB_CUBLAS_TRY(cublasCreate(&cublas_), "cublasCreate");
        CALIB_CUBLAS_TRY(cublasSetStream(cublas_, stream), "cublasSetStream");
        if (max_tokens > engine::kGemvStepMaxTokens) {
            LOWBIT_TRY(xh_.alloc(max_tokens * max_cols, "GEMM input scratch"));
            LOWBIT_TRY(wdeq_.alloc(max_dequant_elems, "GEMM weight scratch"));
        }
        const int64_t qt = std::min<int64_t>(max_tokens, engine::kGemvStepMaxTokens);
        LOWBIT_TRY(xq_.alloc(qt * max_cols, "GEMV 8-bit activations"));
        LOWBIT_TRY(xds_.alloc(qt * max_cols / 32, "GEMV activation scales"));
        if (perm) {
            LOWBIT_TRY(xqp_.alloc(qt * max_cols, "act-order 8-bit activations"));
            LOWBIT_TRY(xdsp_.alloc(qt * max_cols / 32, "act-order activation scales"));
        }
        return ok_status();
    }
    static uint64_t scratch_bytes(int64_t max_tokens, int64_t max_cols, int64_t max_dequant_elems, bool int8,
                                  bool perm) {
        const uint64_t q8 = uint64_t(std::min<int64_t>(max_tokens, engine::kGemvStepMaxTokens) * max_cols) / 32 * 40;
        return q8 +
               (int8 ? uint64_t(max_tokens + 1) * uint64_t(max_cols) + 4 * uint64_t(max_cols + 1) +
                           4 * uint64_t(max_tokens)
                     : 0) +
               (perm ? uint64_t(max_tokens) * uint64_t(max_cols) * 4 + q8 : 0) +
               (max_tokens > engine::kGemvStepMaxTokens ? uint64_t(max_tokens * max_cols + max_dequant_elems) * 2 : 0);
    }

    // Whether run() on w for m tokens multiplies by 8-bit activations (then the op producing x may quantize it
    // into xq()/xds() itself and pass x_q8_ready).
    // Not for a weight with a column order: run() gathers x first and quantizes the gathered rows itself.
    bool q8_input(const DevWeight* w, int64_t m) const { return w && !w->perm.get() && q8_capable(*w, m); }
    // Whether the GEMV of w for m tokens takes 8-bit activations (and the scratch holds them).
    bool q8_capable(const DevWeight& w, int64_t m) const {
        return m <= engine::kGemvStepMaxTokens && engine::gemv_q8_type(w.dtype) && m * w.n_cols <= xq_.size();
    }
    int8_t* xq() const { return xq_.get(); }
    float2* xds() const { return xds_.get(); }

    // y[m, N] (= or +=) x[m, K] · Wᵀ (+ bias). Device pointers. x_q8_ready: xq()/xds() already hold x quantized.
    Status run(const DevWeight& w, const float* x, int64_t m, const float* bias, float* y, bool accumulate,
               bool force_gemm = false, bool x_q8_ready = false) {
        if (w.perm.get()) { // GPTQ act-order: x into the stored column order
            if (m * w.n_cols > xp_.size())
                return make_error(ErrorCode::kInternal, "act-order gather of " + std::to_string(m) + " x " +
                                                            std::to_string(w.n_cols) + " exceeds the engine's scratch");
            CALIB_CUDA_TRY(engine::launch_gather_cols(x, m, w.n_cols, w.perm.get(), xp_.get(), stream_),
                           "act-order gather");
            x = xp_.get(), x_q8_ready = false;
        }
        if (w.dtype == DType::kI8) { // LLM.int8: one path for every m (the decomposition is per step)
            if (m * w.n_cols > i8_xq_.size() || w.n_cols > i8_mask_.size() || w.n_cols >= i8_outl_.size() ||
                m > i8_amax_.size())
                return make_error(ErrorCode::kInternal, "LLM.int8 matmul of " + std::to_string(m) + " x " +
                                                            std::to_string(w.n_cols) + " exceeds the engine's scratch");
            CALIB_CUDA_TRY(engine::launch_int8_decomp(reinterpret_cast<const int8_t*>(w.buf.get()), w.scb.get(),
                                                      w.n_rows, w.n_cols, w.threshold, x, m, bias, y, accumulate,
                                                      i8_mask_.get(), i8_outl_.get(), i8_xq_.get(), i8_amax_.get(),
                                                      stream_),
                           "LLM.int8 matmul");
            return ok_status();
        }
        if (!force_gemm && engine::gemv_q8_type(w.dtype) && m <= engine::kGemvStepMaxTokens) {
            if (!q8_capable(w, m))
                return make_error(ErrorCode::kInternal, "GEMV of " + std::to_string(m) + " x " +
                                                            std::to_string(w.n_cols) + " exceeds the engine's scratch");
            // A weight with a column order quantizes its gathered x into its own scratch: the producer's xq(), which
            // the other consumers of the same x take, stays intact.
            int8_t* xq = w.perm.get() ? xqp_.get() : xq_.get();
            float2* xds = w.perm.get() ? xdsp_.get() : xds_.get();
            if (!x_q8_ready)
                CALIB_CUDA_TRY(engine::launch_quantize_q8(x, m, w.n_cols, xq, xds, stream_), "8-bit activations");
            for (int64_t t0 = 0; t0 < m; t0 += kGemvMaxTokens)
                CALIB_CUDA_TRY(engine::launch_gemv_q8(w.dtype, w.buf.get(), w.row_bytes, w.n_rows, w.n_cols,
                                                      xq + t0 * w.n_cols, xds + t0 * (w.n_cols / 32),
                                                      std::min<int64_t>(kGemvMaxTokens, m - t0), bias,
                                                      y + t0 * w.n_rows, accumulate, stream_, w.layout),
                               "GEMV (" + type_name(w.dtype) + ", 8-bit activations)");
            return ok_status();
        }
        if (m <= engine::kGemvStepMaxTokens && !force_gemm) {
            for (int64_t t0 = 0; t0 < m; t0 += kGemvMaxTokens)
                CALIB_CUDA_TRY(engine::launch_gemv(w.dtype, w.buf.get(), w.row_bytes, w.n_rows, w.n_cols,
                                                   x + t0 * w.n_cols, std::min<int64_t>(kGemvMaxTokens, m - t0), bias,
                                                   y + t0 * w.n_rows, accumulate, stream_, w.layout),
                               "GEMV (" + type_name(w.dtype) + ")");
            return ok_status();
        }
        const void* a = w.buf.get();
        const void* b = x;
        cudaDataType at = CUDA_R_32F, bt = CUDA_R_32F;
        if (m * w.n_cols > xh_.size() || (needs_dequant_scratch(w.dtype) && w.n_rows * w.n_cols > wdeq_.size()))
            return make_error(ErrorCode::kInternal, "GEMM of " + std::to_string(m) + " x " + std::to_string(w.n_cols) +
                                                        " exceeds the engine's scratch");
        if (w.dtype == DType::kF32) {
            at = bt = CUDA_R_32F;
        } else if (w.dtype == DType::kBF16) {
            at = bt = CUDA_R_16BF;
            CALIB_CUDA_TRY(
                engine::launch_to_bf16(x, reinterpret_cast<__nv_bfloat16*>(xh_.get()), m * w.n_cols, stream_),
                "f32->bf16");
            b = xh_.get();
        } else {
            at = bt = CUDA_R_16F;
            if (w.dtype != DType::kF16) {
                CALIB_CUDA_TRY(engine::launch_dequant_matrix(w.dtype, w.buf.get(), w.row_bytes, w.n_rows, w.n_cols,
                                                             wdeq_.get(), false, stream_, w.layout),
                               "dequantize " + type_name(w.dtype));
                a = wdeq_.get();
            }
            CALIB_CUDA_TRY(engine::launch_to_half(x, reinterpret_cast<__half*>(xh_.get()), m * w.n_cols, stream_),
                           "f32->f16");
            b = xh_.get();
        }
        const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
        // Row-major y[m, N] = x[m, K] · W[N, K]ᵀ is column-major yᵀ[N, m] = W(ᵀ of col-major K×N) · xᵀ.
        CALIB_CUBLAS_TRY(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(w.n_rows), int(m), int(w.n_cols), &alpha,
                                      a, at, int(w.n_cols), b, bt, int(w.n_cols), &beta, y, CUDA_R_32F, int(w.n_rows),
                                      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                         "cublasGemmEx (" + type_name(w.dtype) + ")");
        if (bias) CALIB_CUDA_TRY(engine::launch_add_bias(y, bias, m, w.n_rows, stream_), "bias");
        return ok_status();
    }

  private:
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    DeviceBuffer<uint16_t> xh_;     // x as f16/bf16
    DeviceBuffer<uint16_t> wdeq_;   // a dequantized weight matrix
    DeviceBuffer<int8_t> xq_;       // x quantized to 8 bits (GEMV of the gemv_q8_type types)
    DeviceBuffer<float2> xds_;      // their per-32 {d, Σ q}
    DeviceBuffer<uint8_t> i8_mask_; // LLM.int8: outlier columns of the step (prefill)
    DeviceBuffer<int32_t> i8_outl_; // LLM.int8: their count and list
    DeviceBuffer<float> xp_;        // GPTQ act-order: x in a weight's column order
    DeviceBuffer<int8_t> xqp_;      // ... and quantized (never the producer's xq_)
    DeviceBuffer<float2> xdsp_;
    DeviceBuffer<int8_t> i8_xq_;  // LLM.int8: token rows quantized to int8
    DeviceBuffer<float> i8_amax_; // LLM.int8: their amax
};

// LOWBIT_GPU_PROFILE=1: per-op device time (CUDA events between ops, graphs off), printed at exit as a table —
// where a step's time goes, with the achieved GB/s of each matmul family.
class StepProfiler {
  public:
    StepProfiler() {
        const char* e = std::getenv("LOWBIT_GPU_PROFILE");
        on_ = e && *e && std::string(e) != "0";
    }
    ~StepProfiler() {
        if (!on_) return;
        report();
        for (cudaEvent_t e : pool_) cudaEventDestroy(e);
    }
    bool on() const { return on_; }
    void begin(cudaStream_t s) {
        if (!on_) return;
        used_ = 0, marks_.clear();
        cudaEventRecord(event(), s);
    }
    void mark(const char* name, uint64_t bytes, cudaStream_t s) {
        if (!on_) return;
        marks_.push_back({name, bytes});
        cudaEventRecord(event(), s);
    }
    // After the step's stream synchronisation.
    void end() {
        if (!on_) return;
        for (size_t i = 0; i < marks_.size(); ++i) {
            float ms = 0.0f;
            cudaEventElapsedTime(&ms, pool_[i], pool_[i + 1]);
            Row& r = rows_[marks_[i].name];
            r.ms += ms, r.bytes += double(marks_[i].bytes), ++r.calls;
        }
        ++steps_;
    }

  private:
    struct Mark {
        const char* name;
        uint64_t bytes;
    };
    struct Row {
        double ms = 0, bytes = 0;
        int64_t calls = 0;
    };
    cudaEvent_t event() {
        if (used_ == pool_.size()) {
            cudaEvent_t e = nullptr;
            cudaEventCreate(&e);
            pool_.push_back(e);
        }
        return pool_[used_++];
    }
    void report() const {
        double total = 0;
        for (const auto& [name, r] : rows_) total += r.ms;
        std::vector<std::pair<std::string, Row>> v(rows_.begin(), rows_.end());
        std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
        std::fprintf(stderr, "lowbit: GPU profile over %lld steps (%.3f ms device time per step)\n",
                     static_cast<long long>(steps_), steps_ ? total / double(steps_) : 0.0);
        std::fprintf(stderr, "  %-14s %8s %10s %10s %8s %9s\n", "op", "calls", "total ms", "us/call", "share", "GB/s");
        for (const auto& [name, r] : v)
            std::fprintf(stderr, "  %-14s %8lld %10.3f %10.2f %7.1f%% %9.1f\n", name.c_str(),
                         static_cast<long long>(r.calls), r.ms, 1000.0 * r.ms / double(r.calls),
                         100.0 * r.ms / std::max(total, 1e-9), r.bytes > 0 ? r.bytes / (r.ms * 1e6) : 0.0);
    }
    bool on_ = false;
    std::vector<cudaEvent_t> pool_;
    size_t used_ = 0;
    std::vector<Mark> marks_;
    std::map<std::string, Row> rows_;
    int64_t steps_ = 0;
};

struct DevLayer {
    DeviceBuffer<float> attn_norm, ffn_norm, bq, bk, bv, bo, bqkv;
    const DevWeight *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr, *gate = nullptr, *up = nullptr,
                    *down = nullptr;
    DevWeight qkv, gate_up; // fused (empty buffer when the parts differ in type)
};

class LlamaGpuImpl final : public LlamaGpu {
  public:
    ~LlamaGpuImpl() override {
        for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
        if (stream_) cudaStreamDestroy(stream_);
    }

    Status init(const GpuModelDesc& m, const GpuEngineOptions& o);
    Status forward(const int32_t* token, const int32_t* pos, const int32_t* seq, const uint8_t* want, int64_t n,
                   float* logits) override;
    Status copy_prefix(int64_t src, int64_t dst, int64_t n) override;
    uint64_t weight_bytes() const override { return weight_bytes_; }
    uint64_t cache_bytes() const override { return k_.bytes() + v_.bytes(); }
    std::string device_name() const override { return device_name_; }

  private:
    Status enqueue_step(int64_t n, int64_t n_out);
    Status run_step(int64_t n, int64_t n_out);
    const DevWeight* weight(const GpuWeight& w, const std::string& name, Status& st);
    static uint64_t qkv_bytes(const DevLayer& l) {
        return l.qkv.buf.get() ? l.qkv.buf.bytes() : l.wq->buf.bytes() + l.wk->buf.bytes() + l.wv->buf.bytes();
    }

    GpuModelDesc m_; // dims (weight pointers are not used after init)
    GpuEngineOptions o_;
    std::string device_name_;
    cudaStream_t stream_ = nullptr;
    Matmul mm_;
    std::vector<std::unique_ptr<DevWeight>> weights_;
    std::map<const void*, const DevWeight*> by_host_; // tied embeddings upload once
    uint64_t weight_bytes_ = 0;
    std::vector<DevLayer> layers_;
    const DevWeight *embd_ = nullptr, *output_ = nullptr;
    DeviceBuffer<float> output_norm_, inv_freq_;
    DeviceBuffer<__half> k_, v_;
    uint64_t layer_elems_ = 0;                // cache elements per layer (n_seq * n_ctx * kv_dim)
    int n_split_ = 1, split_len_ = 0;         // attention splits of prefill steps
    int n_split_dec_ = 1, split_len_dec_ = 0; // and of steps of <= kGemvStepMaxTokens tokens (decode)
    // Scratch for max_tokens tokens.
    DeviceBuffer<float> hidden_, xn_, picked_, q_, k_tok_, v_tok_, attn_, gate_, up_, partial_, logits_;
    DeviceBuffer<int32_t> inputs_; // token | pos | seq | rows, max_tokens each
    std::vector<int32_t> staged_;
    std::map<std::pair<int64_t, int64_t>, cudaGraphExec_t> graphs_;
    StepProfiler prof_;
};

const DevWeight* LlamaGpuImpl::weight(const GpuWeight& w, const std::string& name, Status& st) {
    if (!st.ok()) return nullptr;
    if (auto it = by_host_.find(w.data); it != by_host_.end()) return it->second;
    auto d = std::make_unique<DevWeight>();
    if (Status up = upload(w, *d, name); !up.ok()) {
        st = std::move(up);
        return nullptr;
    }
    weight_bytes_ += d->buf.bytes();
    by_host_[w.data] = d.get();
    weights_.push_back(std::move(d));
    return weights_.back().get();
}

Status LlamaGpuImpl::init(const GpuModelDesc& m, const GpuEngineOptions& o) {
    m_ = m, o_ = o;
    if (m.n_layers < 1 || m.hidden < 1 || m.n_heads < 1 || m.n_kv_heads < 1 || m.n_heads % m.n_kv_heads != 0 ||
        m.head_dim < 2 || m.head_dim % 2 != 0 || int64_t(m.inv_freq.size()) != m.head_dim / 2 ||
        int64_t(m.layers.size()) != m.n_layers || o.n_seq < 1 || o.n_ctx < 1 || o.max_tokens < 1)
        return make_error(ErrorCode::kUsage, "CUDA engine: inconsistent model or options");
    if (m.head_dim > 256)
        return make_error(ErrorCode::kUnsupported,
                          "CUDA engine: head_dim " + std::to_string(m.head_dim) + " (at most 256 is supported)");
    int n_dev = 0;
    CALIB_CUDA_TRY(cudaGetDeviceCount(&n_dev), "cudaGetDeviceCount");
    if (o.device < 0 || o.device >= n_dev)
        return make_error(ErrorCode::kDevice, "CUDA device " + std::to_string(o.device) + " does not exist (" +
                                                  std::to_string(n_dev) + " visible)");
    CALIB_CUDA_TRY(cudaSetDevice(o.device), "cudaSetDevice");
    cudaDeviceProp prop{};
    CALIB_CUDA_TRY(cudaGetDeviceProperties(&prop, o.device), "cudaGetDeviceProperties");
    device_name_ = prop.name;

    // Sizes first, checked against free memory, so a model that cannot fit fails before any upload.
    const int64_t T = o.max_tokens, hs = m.hidden, qd = m.n_heads * m.head_dim, kvd = m.n_kv_heads * m.head_dim;
    const double cache_elems = double(m.n_layers) * double(o.n_seq) * double(o.n_ctx) * double(kvd);
    if (cache_elems > 1e14)
        return make_error(ErrorCode::kOutOfMemory, "CUDA engine: a KV cache of " + std::to_string(o.n_seq) + " x " +
                                                       std::to_string(o.n_ctx) + " positions is beyond any GPU");
    engine::attention_splits(o.n_ctx, n_split_, split_len_);
    engine::attention_splits(o.n_ctx, n_split_dec_, split_len_dec_, /*decode=*/true);
    const int64_t partial_rows =
        std::max<int64_t>(T * n_split_, std::min<int64_t>(T, engine::kGemvStepMaxTokens) * n_split_dec_);
    uint64_t w_bytes = 0;
    int64_t max_cols = std::max({hs, qd, m.n_ff}), max_deq = 0;
    for (const auto& l : m.layers) {
        if (can_fuse({&l.wq, &l.wk, &l.wv}) && needs_dequant_scratch(l.wq.dtype))
            max_deq = std::max(max_deq, (qd + 2 * kvd) * hs);
        if (can_fuse({&l.gate, &l.up}) && needs_dequant_scratch(l.gate.dtype))
            max_deq = std::max(max_deq, 2 * m.n_ff * hs);
    }
    std::map<const void*, bool> seen;
    bool int8 = false, perm = false;
    auto count = [&](const GpuWeight& w) {
        int8 = int8 || is_int8(w);
        perm = perm || w.col_perm;
        if (seen[w.data]) return;
        seen[w.data] = true;
        w_bytes += uint64_t(w.n_rows) *
                       (f16_on_device(w.dtype) ? uint64_t(w.n_cols) * 2 : engine::device_row_bytes(w.row_bytes)) +
                   (w.col_perm ? uint64_t(w.n_cols) * 4 : 0);
        if (needs_dequant_scratch(w.dtype)) max_deq = std::max(max_deq, w.n_rows * w.n_cols);
    };
    count(m.token_embd), count(m.output);
    for (const auto& l : m.layers)
        for (const GpuWeight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) count(*w);
    const uint64_t cache = uint64_t(cache_elems) * 2 * 2;
    const uint64_t scratch = uint64_t(T) * 4 *
                                 uint64_t(3 * hs + 3 * qd + 4 * kvd + 5 * m.n_ff + m.n_vocab +
                                          m.n_heads * (partial_rows / T + 1) * (m.head_dim + 2)) +
                             Matmul::scratch_bytes(T, max_cols, max_deq, int8, perm);
    size_t free_b = 0, total_b = 0;
    CALIB_CUDA_TRY(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    const uint64_t need = w_bytes + cache + scratch;
    if (need > free_b)
        return make_error(ErrorCode::kOutOfMemory, "CUDA engine: the model needs " + gib(double(need)) +
                                                       " GiB (weights " + gib(double(w_bytes)) + ", KV cache " +
                                                       gib(double(cache)) + ", scratch " + gib(double(scratch)) +
                                                       ") but " + device_name_ + " has " + gib(double(free_b)) +
                                                       " GiB free (lower -c / -np, or use a smaller type)");

    CALIB_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    LOWBIT_TRY(mm_.init(stream_, T, max_cols, max_deq, int8, perm));
    Status st = ok_status();
    embd_ = weight(m.token_embd, "token_embd", st);
    output_ = weight(m.output, "output", st);
    layers_.resize(size_t(m.n_layers));
    for (int64_t il = 0; il < m.n_layers && st.ok(); ++il) {
        const GpuLayerDesc& s = m.layers[size_t(il)];
        DevLayer& d = layers_[size_t(il)];
        const std::string p = "blk." + std::to_string(il) + ".";
        if (can_fuse({&s.wq, &s.wk, &s.wv})) {
            LOWBIT_TRY(upload_rows({&s.wq, &s.wk, &s.wv}, d.qkv, p + "attn_qkv"));
            weight_bytes_ += d.qkv.buf.bytes();
            if (s.bq || s.bk || s.bv) {
                std::vector<float> b(size_t(qd + 2 * kvd), 0.0f);
                if (s.bq) std::copy(s.bq, s.bq + qd, b.begin());
                if (s.bk) std::copy(s.bk, s.bk + kvd, b.begin() + qd);
                if (s.bv) std::copy(s.bv, s.bv + kvd, b.begin() + qd + kvd);
                LOWBIT_TRY(upload_floats(b.data(), int64_t(b.size()), d.bqkv, p + "attn_qkv.bias"));
            }
        } else {
            d.wq = weight(s.wq, p + "attn_q", st), d.wk = weight(s.wk, p + "attn_k", st);
            d.wv = weight(s.wv, p + "attn_v", st);
        }
        if (can_fuse({&s.gate, &s.up})) {
            LOWBIT_TRY(upload_rows({&s.gate, &s.up}, d.gate_up, p + "ffn_gate_up"));
            weight_bytes_ += d.gate_up.buf.bytes();
        } else {
            d.gate = weight(s.gate, p + "ffn_gate", st), d.up = weight(s.up, p + "ffn_up", st);
        }
        d.wo = weight(s.wo, p + "attn_output", st);
        d.down = weight(s.down, p + "ffn_down", st);
        if (!st.ok()) break;
        LOWBIT_TRY(upload_floats(s.attn_norm, hs, d.attn_norm, p + "attn_norm"));
        LOWBIT_TRY(upload_floats(s.ffn_norm, hs, d.ffn_norm, p + "ffn_norm"));
        LOWBIT_TRY(upload_floats(s.bq, qd, d.bq, p + "attn_q.bias"));
        LOWBIT_TRY(upload_floats(s.bk, kvd, d.bk, p + "attn_k.bias"));
        LOWBIT_TRY(upload_floats(s.bv, kvd, d.bv, p + "attn_v.bias"));
        LOWBIT_TRY(upload_floats(s.bo, hs, d.bo, p + "attn_output.bias"));
    }
    LOWBIT_TRY(st);
    LOWBIT_TRY(upload_floats(m.output_norm, hs, output_norm_, "output_norm"));
    LOWBIT_TRY(upload_floats(m.inv_freq.data(), int64_t(m.inv_freq.size()), inv_freq_, "rope frequencies"));
    layer_elems_ = uint64_t(o.n_seq) * uint64_t(o.n_ctx) * uint64_t(kvd);
    LOWBIT_TRY(k_.alloc(int64_t(layer_elems_ * uint64_t(m.n_layers)), "K cache"));
    LOWBIT_TRY(v_.alloc(int64_t(layer_elems_ * uint64_t(m.n_layers)), "V cache"));
    LOWBIT_TRY(hidden_.alloc(T * hs, "hidden"));
    LOWBIT_TRY(xn_.alloc(T * hs, "normed"));
    LOWBIT_TRY(picked_.alloc(T * hs, "logit rows"));
    LOWBIT_TRY(q_.alloc(T * (qd + 2 * kvd), "q (fused: q|k|v)"));
    LOWBIT_TRY(attn_.alloc(T * qd, "attention output"));
    LOWBIT_TRY(k_tok_.alloc(T * kvd, "k"));
    LOWBIT_TRY(v_tok_.alloc(T * kvd, "v"));
    LOWBIT_TRY(gate_.alloc(T * 2 * m.n_ff, "gate (fused: gate|up)"));
    LOWBIT_TRY(up_.alloc(T * m.n_ff, "up"));
    LOWBIT_TRY(partial_.alloc(partial_rows * m.n_heads * (m.head_dim + 2), "attention partials"));
    LOWBIT_TRY(logits_.alloc(T * m.n_vocab, "logits"));
    LOWBIT_TRY(inputs_.alloc(4 * T, "step inputs"));
    staged_.resize(size_t(4 * T));
    CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "engine init");
    return ok_status();
}

// The whole step on stream_, inputs already in inputs_: token | pos | seq | rows (n_out of them).
Status LlamaGpuImpl::enqueue_step(int64_t n, int64_t n_out) {
    const int64_t T = o_.max_tokens, hs = m_.hidden, qd = m_.n_heads * m_.head_dim, kvd = m_.n_kv_heads * m_.head_dim;
    const int32_t *tok = inputs_.get(), *pos = tok + T, *seq = pos + T, *rows = seq + T;
    CALIB_CUDA_TRY(engine::launch_embed(embd_->dtype, embd_->buf.get(), embd_->row_bytes, hs, tok, n, hidden_.get(),
                                        stream_, embd_->layout),
                   "embedding");
    prof_.mark("embed", 0, stream_);
    for (int64_t il = 0; il < m_.n_layers; ++il) {
        const DevLayer& l = layers_[size_t(il)];
        // Ops that produce a GEMV input quantize it too when a consumer takes 8-bit activations (fused).
        const bool qkv_q8 = l.qkv.buf.get() ? mm_.q8_input(&l.qkv, n)
                                            : mm_.q8_input(l.wq, n) || mm_.q8_input(l.wk, n) || mm_.q8_input(l.wv, n);
        CALIB_CUDA_TRY(engine::launch_rms_norm(hidden_.get(), l.attn_norm.get(), xn_.get(), n, hs, m_.rms_eps, stream_,
                                               qkv_q8 ? mm_.xq() : nullptr, mm_.xds()),
                       "attn_norm");
        prof_.mark("norm", 0, stream_);
        engine::RopeStoreArgs r;
        if (l.qkv.buf.get()) { // one GEMV/GEMM: token rows [q | k | v]
            LOWBIT_TRY(mm_.run(l.qkv, xn_.get(), n, l.bqkv.get(), q_.get(), false, false, qkv_q8));
            r.q = q_.get(), r.k = q_.get() + qd, r.v = q_.get() + qd + kvd;
            r.q_stride = r.k_stride = r.v_stride = qd + 2 * kvd;
        } else {
            LOWBIT_TRY(mm_.run(*l.wq, xn_.get(), n, l.bq.get(), q_.get(), false, false, qkv_q8));
            LOWBIT_TRY(mm_.run(*l.wk, xn_.get(), n, l.bk.get(), k_tok_.get(), false, false, qkv_q8));
            LOWBIT_TRY(mm_.run(*l.wv, xn_.get(), n, l.bv.get(), v_tok_.get(), false, false, qkv_q8));
            r.q = q_.get(), r.k = k_tok_.get(), r.v = v_tok_.get();
            r.q_stride = qd, r.k_stride = r.v_stride = kvd;
        }
        prof_.mark(n <= engine::kGemvStepMaxTokens ? "mm qkv" : "gemm qkv", qkv_bytes(l), stream_);
        r.pos = pos, r.seq = seq;
        r.n = n, r.n_heads = m_.n_heads, r.n_kv = m_.n_kv_heads, r.head_dim = m_.head_dim, r.n_ctx = o_.n_ctx;
        r.inv_freq = inv_freq_.get(), r.neox = m_.rope_neox;
        r.k_cache = k_.get() + uint64_t(il) * layer_elems_, r.v_cache = v_.get() + uint64_t(il) * layer_elems_;
        CALIB_CUDA_TRY(engine::launch_rope_store(r, stream_), "rope");
        prof_.mark("rope+store", 0, stream_);
        engine::AttentionArgs a;
        a.q = r.q, a.q_stride = r.q_stride, a.k_cache = r.k_cache, a.v_cache = r.v_cache, a.pos = pos, a.seq = seq;
        a.out = attn_.get(), a.partial = partial_.get();
        a.n = n, a.n_heads = m_.n_heads, a.n_kv = m_.n_kv_heads, a.head_dim = m_.head_dim, a.n_ctx = o_.n_ctx;
        const bool dec = n <= engine::kGemvStepMaxTokens;
        a.n_split = dec ? n_split_dec_ : n_split_, a.split_len = dec ? split_len_dec_ : split_len_;
        a.scale = float(1.0 / std::sqrt(double(m_.head_dim)));
        const bool wo_q8 = mm_.q8_input(l.wo, n) && m_.head_dim % 32 == 0;
        if (wo_q8) a.out_q8 = mm_.xq(), a.out_ds = mm_.xds();
        CALIB_CUDA_TRY(engine::launch_attention(a, stream_), "attention");
        prof_.mark("attention", 0, stream_);
        LOWBIT_TRY(mm_.run(*l.wo, attn_.get(), n, l.bo.get(), hidden_.get(), true, false, wo_q8));
        prof_.mark(n <= engine::kGemvStepMaxTokens ? "mm wo" : "gemm wo", l.wo->buf.bytes(), stream_);
        const bool gu_q8 =
            l.gate_up.buf.get() ? mm_.q8_input(&l.gate_up, n) : mm_.q8_input(l.gate, n) || mm_.q8_input(l.up, n);
        CALIB_CUDA_TRY(engine::launch_rms_norm(hidden_.get(), l.ffn_norm.get(), xn_.get(), n, hs, m_.rms_eps, stream_,
                                               gu_q8 ? mm_.xq() : nullptr, mm_.xds()),
                       "ffn_norm");
        prof_.mark("norm", 0, stream_);
        const int64_t ff = m_.n_ff;
        const bool down_q8 = mm_.q8_input(l.down, n);
        if (l.gate_up.buf.get()) { // token rows [gate | up] -> silu(gate) * up into up_
            LOWBIT_TRY(mm_.run(l.gate_up, xn_.get(), n, nullptr, gate_.get(), false, false, gu_q8));
            CALIB_CUDA_TRY(engine::launch_silu_mul(gate_.get(), 2 * ff, gate_.get() + ff, 2 * ff, up_.get(), n, ff,
                                                   stream_, down_q8 ? mm_.xq() : nullptr, mm_.xds()),
                           "silu_mul");
        } else {
            LOWBIT_TRY(mm_.run(*l.gate, xn_.get(), n, nullptr, gate_.get(), false, false, gu_q8));
            LOWBIT_TRY(mm_.run(*l.up, xn_.get(), n, nullptr, up_.get(), false, false, gu_q8));
            CALIB_CUDA_TRY(engine::launch_silu_mul(gate_.get(), ff, up_.get(), ff, up_.get(), n, ff, stream_,
                                                   down_q8 ? mm_.xq() : nullptr, mm_.xds()),
                           "silu_mul");
        }
        prof_.mark(n <= engine::kGemvStepMaxTokens ? "mm gate_up+silu" : "gemm gate_up+silu",
                   l.gate_up.buf.get() ? l.gate_up.buf.bytes() : l.gate->buf.bytes() + l.up->buf.bytes(), stream_);
        LOWBIT_TRY(mm_.run(*l.down, up_.get(), n, nullptr, hidden_.get(), true, false, down_q8));
        prof_.mark(n <= engine::kGemvStepMaxTokens ? "mm down" : "gemm down", l.down->buf.bytes(), stream_);
    }
    if (n_out == 0) return ok_status();
    const float* src = hidden_.get();
    if (n_out < n) {
        CALIB_CUDA_TRY(engine::launch_gather_rows(hidden_.get(), rows, n_out, hs, picked_.get(), stream_), "gather");
        src = picked_.get();
    }
    const bool out_q8 = mm_.q8_input(output_, n_out);
    CALIB_CUDA_TRY(engine::launch_rms_norm(src, output_norm_.get(), xn_.get(), n_out, hs, m_.rms_eps, stream_,
                                           out_q8 ? mm_.xq() : nullptr, mm_.xds()),
                   "output_norm");
    prof_.mark("out norm", 0, stream_);
    LOWBIT_TRY(mm_.run(*output_, xn_.get(), n_out, nullptr, logits_.get(), false, false, out_q8));
    prof_.mark(n_out <= engine::kGemvStepMaxTokens ? "mm output" : "gemm output", output_->buf.bytes(), stream_);
    return ok_status();
}

Status LlamaGpuImpl::run_step(int64_t n, int64_t n_out) {
    if (!o_.graphs || prof_.on() || n > engine::kGemvStepMaxTokens)
        return enqueue_step(n, n_out); // cuBLAS steps (and profiled ones): no graph
    const auto key = std::make_pair(n, n_out);
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
        CALIB_CUDA_TRY(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "graph capture");
        Status st = enqueue_step(n, n_out);
        cudaGraph_t graph = nullptr;
        const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
        if (!st.ok()) {
            if (graph) cudaGraphDestroy(graph);
            return st;
        }
        CALIB_CUDA_TRY(end, "graph capture");
        cudaGraphExec_t exec = nullptr;
        const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
        cudaGraphDestroy(graph);
        CALIB_CUDA_TRY(inst, "graph instantiate");
        it = graphs_.emplace(key, exec).first;
    }
    CALIB_CUDA_TRY(cudaGraphLaunch(it->second, stream_), "graph launch");
    return ok_status();
}

Status LlamaGpuImpl::forward(const int32_t* token, const int32_t* pos, const int32_t* seq, const uint8_t* want,
                             int64_t n, float* logits) {
    const int64_t T = o_.max_tokens;
    int64_t out_row = 0;
    for (int64_t begin = 0; begin < n; begin += T) {
        const int64_t c = std::min(T, n - begin);
        int64_t n_out = 0;
        for (int64_t i = 0; i < c; ++i) {
            staged_[size_t(i)] = token[begin + i];
            staged_[size_t(T + i)] = pos[begin + i];
            staged_[size_t(2 * T + i)] = seq[begin + i];
            if (want[begin + i]) staged_[size_t(3 * T + n_out++)] = int32_t(i);
        }
        // The rows part only matters when some tokens want no logits (else the step uses all rows in order).
        CALIB_CUDA_TRY(
            cudaMemcpyAsync(inputs_.get(), staged_.data(), staged_.size() * 4, cudaMemcpyHostToDevice, stream_),
            "step inputs");
        prof_.begin(stream_);
        LOWBIT_TRY(run_step(c, n_out));
        if (n_out > 0)
            CALIB_CUDA_TRY(cudaMemcpyAsync(logits + out_row * m_.n_vocab, logits_.get(),
                                           uint64_t(n_out * m_.n_vocab) * 4, cudaMemcpyDeviceToHost, stream_),
                           "logits");
        CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "forward step");
        prof_.end();
        out_row += n_out;
    }
    return ok_status();
}

Status LlamaGpuImpl::copy_prefix(int64_t src, int64_t dst, int64_t n) {
    if (src < 0 || dst < 0 || src >= o_.n_seq || dst >= o_.n_seq || n < 0 || n > o_.n_ctx)
        return make_error(ErrorCode::kUsage, "copy_prefix: slot or length out of range");
    if (n == 0 || src == dst) return ok_status();
    const uint64_t kvd = uint64_t(m_.n_kv_heads * m_.head_dim), slot = uint64_t(o_.n_ctx) * kvd;
    for (int64_t il = 0; il < m_.n_layers; ++il)
        for (__half* base : {k_.get(), v_.get()}) {
            __half* layer = base + uint64_t(il) * layer_elems_;
            CALIB_CUDA_TRY(cudaMemcpyAsync(layer + uint64_t(dst) * slot, layer + uint64_t(src) * slot,
                                           uint64_t(n) * kvd * 2, cudaMemcpyDeviceToDevice, stream_),
                           "copy_prefix");
        }
    CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "copy_prefix");
    return ok_status();
}

} // namespace

bool gpu_engine_supports(DType dtype) {
    return engine::gpu_weight_type(dtype);
}

bool gpu_gemv_uses_q8_activations(DType dtype) {
    return engine::gpu_weight_type(dtype) && engine::gemv_q8_type(dtype);
}

Result<std::unique_ptr<LlamaGpu>> LlamaGpu::create(const GpuModelDesc& model, const GpuEngineOptions& options) {
    auto e = std::make_unique<LlamaGpuImpl>();
    LOWBIT_TRY(e->init(model, options));
    return std::unique_ptr<LlamaGpu>(std::move(e));
}

namespace {

// One weight on the device with its stream, matmul and activation buffers (the test and benchmark entries).
struct MatmulRig {
    DevWeight d;
    cudaStream_t stream = nullptr;
    Matmul mm;
    DeviceBuffer<float> xd, yd;
    bool gemm = false;
    ~MatmulRig() {
        if (stream) cudaStreamDestroy(stream);
    }
    Status init(const GpuWeight& w, int64_t m, bool force_gemm) {
        if (m < 1) return make_error(ErrorCode::kUsage, "gpu_matmul: m must be >= 1");
        LOWBIT_TRY(upload(w, d, "weight"));
        CALIB_CUDA_TRY(cudaStreamCreate(&stream), "cudaStreamCreate");
        gemm = force_gemm || m > engine::kGemvStepMaxTokens;
        LOWBIT_TRY(mm.init(stream, gemm ? std::max<int64_t>(m, engine::kGemvStepMaxTokens + 1) : m, w.n_cols,
                           w.n_rows * w.n_cols, is_int8(w), w.col_perm != nullptr));
        LOWBIT_TRY(xd.alloc(m * w.n_cols, "x"));
        LOWBIT_TRY(yd.alloc(m * w.n_rows, "y"));
        return ok_status();
    }
};

} // namespace

Status gpu_matmul(const GpuWeight& w, const float* x, int64_t m, float* y, bool force_gemm) {
    MatmulRig rig;
    LOWBIT_TRY(rig.init(w, m, force_gemm));
    CALIB_CUDA_TRY(cudaMemcpy(rig.xd.get(), x, uint64_t(m * w.n_cols) * 4, cudaMemcpyHostToDevice), "x upload");
    LOWBIT_TRY(rig.mm.run(rig.d, rig.xd.get(), m, nullptr, rig.yd.get(), false, force_gemm));
    CALIB_CUDA_TRY(cudaStreamSynchronize(rig.stream), "matmul");
    CALIB_CUDA_TRY(cudaMemcpy(y, rig.yd.get(), uint64_t(m * w.n_rows) * 4, cudaMemcpyDeviceToHost), "y download");
    return ok_status();
}

Result<double> gpu_matmul_time_us(const GpuWeight& w, int64_t m, int reps, bool force_gemm, const float* x) {
    if (reps < 1) return make_error(ErrorCode::kUsage, "gpu_matmul_time_us: reps must be >= 1");
    MatmulRig rig;
    LOWBIT_TRY(rig.init(w, m, force_gemm));
    if (x)
        CALIB_CUDA_TRY(cudaMemcpy(rig.xd.get(), x, uint64_t(m * w.n_cols) * 4, cudaMemcpyHostToDevice), "x upload");
    else
        CALIB_CUDA_TRY(cudaMemsetAsync(rig.xd.get(), 0, uint64_t(m * w.n_cols) * 4, rig.stream), "x");
    for (int i = 0; i < 3; ++i)
        LOWBIT_TRY(rig.mm.run(rig.d, rig.xd.get(), m, nullptr, rig.yd.get(), false, force_gemm));
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    CALIB_CUDA_TRY(cudaEventCreate(&e0), "event");
    CALIB_CUDA_TRY(cudaEventCreate(&e1), "event");
    cudaEventRecord(e0, rig.stream);
    Status st = ok_status();
    for (int i = 0; i < reps && st.ok(); ++i)
        st = rig.mm.run(rig.d, rig.xd.get(), m, nullptr, rig.yd.get(), false, force_gemm);
    cudaEventRecord(e1, rig.stream);
    const cudaError_t sync = cudaEventSynchronize(e1);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, e0, e1);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    LOWBIT_TRY(st);
    CALIB_CUDA_TRY(sync, "matmul timing");
    return 1000.0 * double(ms) / double(reps);
}

} // namespace lowbit::kernel::cuda
