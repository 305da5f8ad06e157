// SPDX-License-Identifier: MIT
// CalibLayer on CUDA (calib_layer.h): one decoder layer over the hidden states of all calibration samples.
// Layout: q/k/v weights in one buffer [q_dim + 2 kv_dim, hidden] and gate/up in one [2 ff, hidden], so each group
// is a single GEMM; per-slot pointers stay plain [out, in] blocks for the GPTQ solver. Samples run in chunks; per
// chunk: RMSNorm -> QKV GEMM (+bias) -> RoPE on q|k -> batched QKᵀ over (sample, head) with GQA pointers ->
// causal softmax -> batched PV -> o GEMM accumulated into h (beta = 1) -> RMSNorm -> gate|up GEMM -> SiLU*mul ->
// down GEMM into h. Attention scratch: scores [chunk, n_heads, L, L] f32.
#include "kernel/cuda/calib_layer.h"
#include "kernel/cuda/calib_layer_kernels.cuh"
#include "kernel/cuda/calib_layer_util.cuh"

#include <cmath>
#include <string>

namespace lowbit::kernel::cuda {
namespace {

constexpr uint64_t kScoresBudget = uint64_t(1) << 30; // default bound of the attention scratch per chunk

class CudaCalibLayer final : public CalibLayer {
  public:
    CudaCalibLayer(LayerDims dims, int64_t n_samples, int64_t seqlen, Precision precision)
        : CalibLayer(std::move(dims), n_samples, seqlen),
          compute_(precision == Precision::kTF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F) {
        q_dim_ = dims_.n_heads * dims_.head_dim;
        kv_dim_ = dims_.n_kv_heads * dims_.head_dim;
        qkv_ld_ = q_dim_ + 2 * kv_dim_;
    }
    ~CudaCalibLayer() override {
        if (blas_) cublasDestroy(blas_);
        if (stream_) cudaStreamDestroy(stream_);
    }

    Status init();
    Status set_linear(Slot slot, const float* w, const float* bias) override;
    Status set_norms(const float* attn_norm, const float* ffn_norm) override;
    float* device_weight(Slot slot) override { return slot_weight(slot); }
    Status set_hidden(const float* host, int64_t n_rows) override;
    Status get_hidden(float* host) const override;
    float* device_hidden() override { return hidden_.get(); }
    Status forward(bool in_place, const Observer& observer, std::optional<Slot> stop_after) override;
    Status set_chunk_samples(int64_t n) override;
    int64_t chunk_samples() const override { return chunk_; }
    uint64_t device_bytes() const override;
    void* stream() const override { return stream_; }

  private:
    struct SlotShape {
        int64_t out = 0, in = 0;
    };
    SlotShape shape(Slot s) const;
    float* slot_weight(Slot s) const;
    float* slot_bias(Slot s) const;
    Status alloc_scratch();
    Status gemm_xwt(const float* x, int64_t ldx, int64_t n_rows, const float* w, int64_t n_out, int64_t k, float beta,
                    float* y, int64_t ldy, const char* what);
    Status run_chunk(float* h, int64_t n_chunk_samples, const Observer& observer, std::optional<Slot> stop_group);
    Status observe(const Observer& observer, Slot group, const float* x, int64_t n_tokens, int64_t k);
    bool group_has_bias(Slot first, int n) const {
        for (int i = 0; i < n; ++i)
            if (has_bias_[int(first) + i]) return true;
        return false;
    }

    cublasComputeType_t compute_;
    int64_t q_dim_ = 0, kv_dim_ = 0, qkv_ld_ = 0;
    int64_t chunk_ = 1;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t blas_ = nullptr;
    bool weight_set_[kNumSlots] = {}, has_bias_[kNumSlots] = {}, norms_set_ = false, hidden_set_ = false;
    // Parameters: [q_dim + 2 kv_dim, hidden], [hidden, q_dim], [2 ff, hidden], [hidden, ff]; biases alike.
    DeviceBuffer<float> w_qkv_, w_o_, w_gu_, w_down_, b_qkv_, b_o_, b_gu_, b_down_, attn_norm_, ffn_norm_;
    DeviceBuffer<float2> rope_cs_; // [seqlen, head_dim / 2] (cos, sin)
    DeviceBuffer<float> hidden_;   // [n_samples * seqlen, hidden]
    DeviceBuffer<float> h_work_;   // [chunk * seqlen, hidden]: the chunk's h when !in_place
    DeviceBuffer<float> xnorm_;    // [chunk * seqlen, hidden]
    DeviceBuffer<float> qkv_;      // [chunk * seqlen, qkv_ld]
    DeviceBuffer<float> attn_;     // [chunk * seqlen, q_dim]
    DeviceBuffer<float> scores_;   // [chunk * n_heads, seqlen, seqlen]
    DeviceBuffer<float> gu_;       // [chunk * seqlen, 2 ff]
    DeviceBuffer<float> act_;      // [chunk * seqlen, ff]
    DeviceBuffer<void*> att_ptrs_; // 6 arrays of [chunk * n_heads]: QKᵀ (A, B, C), PV (A, B, C)
};

CudaCalibLayer::SlotShape CudaCalibLayer::shape(Slot s) const {
    switch (s) {
    case Slot::kQ:
        return {q_dim_, dims_.hidden};
    case Slot::kK:
    case Slot::kV:
        return {kv_dim_, dims_.hidden};
    case Slot::kO:
        return {dims_.hidden, q_dim_};
    case Slot::kGate:
    case Slot::kUp:
        return {dims_.ff, dims_.hidden};
    case Slot::kDown:
        return {dims_.hidden, dims_.ff};
    }
    return {};
}

float* CudaCalibLayer::slot_weight(Slot s) const {
    const int64_t h = dims_.hidden;
    switch (s) {
    case Slot::kQ:
        return w_qkv_.get();
    case Slot::kK:
        return w_qkv_.get() + q_dim_ * h;
    case Slot::kV:
        return w_qkv_.get() + (q_dim_ + kv_dim_) * h;
    case Slot::kO:
        return w_o_.get();
    case Slot::kGate:
        return w_gu_.get();
    case Slot::kUp:
        return w_gu_.get() + dims_.ff * h;
    case Slot::kDown:
        return w_down_.get();
    }
    return nullptr;
}

float* CudaCalibLayer::slot_bias(Slot s) const {
    switch (s) {
    case Slot::kQ:
        return b_qkv_.get();
    case Slot::kK:
        return b_qkv_.get() + q_dim_;
    case Slot::kV:
        return b_qkv_.get() + q_dim_ + kv_dim_;
    case Slot::kO:
        return b_o_.get();
    case Slot::kGate:
        return b_gu_.get();
    case Slot::kUp:
        return b_gu_.get() + dims_.ff;
    case Slot::kDown:
        return b_down_.get();
    }
    return nullptr;
}

Status CudaCalibLayer::init() {
    CALIB_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "CalibLayer: cudaStreamCreate");
    CALIB_CUBLAS_TRY(cublasCreate(&blas_), "CalibLayer: cublasCreate");
    CALIB_CUBLAS_TRY(cublasSetStream(blas_, stream_), "CalibLayer: cublasSetStream");
    const int64_t h = dims_.hidden, ff = dims_.ff;
    LOWBIT_TRY(w_qkv_.alloc(qkv_ld_ * h, "q|k|v weights"));
    LOWBIT_TRY(w_o_.alloc(h * q_dim_, "o_proj weight"));
    LOWBIT_TRY(w_gu_.alloc(2 * ff * h, "gate|up weights"));
    LOWBIT_TRY(w_down_.alloc(h * ff, "down_proj weight"));
    LOWBIT_TRY(b_qkv_.alloc(qkv_ld_, "q|k|v bias"));
    LOWBIT_TRY(b_o_.alloc(h, "o_proj bias"));
    LOWBIT_TRY(b_gu_.alloc(2 * ff, "gate|up bias"));
    LOWBIT_TRY(b_down_.alloc(h, "down_proj bias"));
    for (auto* b : {&b_qkv_, &b_o_, &b_gu_, &b_down_})
        CALIB_CUDA_TRY(cudaMemsetAsync(b->get(), 0, b->bytes(), stream_), "CalibLayer: zero biases");
    LOWBIT_TRY(attn_norm_.alloc(h, "attn norm"));
    LOWBIT_TRY(ffn_norm_.alloc(h, "ffn norm"));
    // RoPE table in double like the CPU reference (kernel/ref rope), rounded once to f32.
    const int64_t half = dims_.head_dim / 2;
    std::vector<float2> cs(size_t(seqlen_ * half));
    for (int64_t p = 0; p < seqlen_; ++p)
        for (int64_t i = 0; i < half; ++i) {
            const double a = double(p) * double(dims_.rope_inv_freq[size_t(i)]);
            cs[size_t(p * half + i)] = make_float2(float(std::cos(a)), float(std::sin(a)));
        }
    LOWBIT_TRY(rope_cs_.alloc(seqlen_ * half, "RoPE table"));
    CALIB_CUDA_TRY(cudaMemcpyAsync(rope_cs_.get(), cs.data(), rope_cs_.bytes(), cudaMemcpyHostToDevice, stream_),
                   "CalibLayer: upload RoPE table");
    LOWBIT_TRY(hidden_.alloc(n_samples_ * seqlen_ * h, "hidden states"));
    const uint64_t per_sample = uint64_t(dims_.n_heads) * uint64_t(seqlen_) * uint64_t(seqlen_) * sizeof(float);
    chunk_ = std::max<int64_t>(1, int64_t(kScoresBudget / per_sample));
    chunk_ = std::min(chunk_, n_samples_);
    LOWBIT_TRY(alloc_scratch());
    CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "CalibLayer: init");
    return ok_status();
}

Status CudaCalibLayer::alloc_scratch() {
    const int64_t nt = chunk_ * seqlen_, h = dims_.hidden, ff = dims_.ff, nh = dims_.n_heads, L = seqlen_;
    LOWBIT_TRY(h_work_.alloc(nt * h, "chunk hidden copy"));
    LOWBIT_TRY(xnorm_.alloc(nt * h, "normed hidden"));
    LOWBIT_TRY(qkv_.alloc(nt * qkv_ld_, "q|k|v activations"));
    LOWBIT_TRY(attn_.alloc(nt * q_dim_, "attention output"));
    LOWBIT_TRY(scores_.alloc(chunk_ * nh * L * L, "attention scores"));
    LOWBIT_TRY(gu_.alloc(nt * 2 * ff, "gate|up activations"));
    LOWBIT_TRY(act_.alloc(nt * ff, "silu(gate)*up"));
    // Batched attention pointers: batch b = sample s * n_heads + head; kv head = head / (n_heads / n_kv_heads).
    const int64_t nb = chunk_ * nh, group = nh / dims_.n_kv_heads, d = dims_.head_dim;
    std::vector<void*> p(size_t(6 * nb));
    for (int64_t s = 0; s < chunk_; ++s)
        for (int64_t hh = 0; hh < nh; ++hh) {
            const int64_t b = s * nh + hh, kvh = hh / group;
            float* rows = qkv_.get() + s * L * qkv_ld_;
            float* sc = scores_.get() + b * L * L;
            p[size_t(0 * nb + b)] = rows + q_dim_ + kvh * d;           // K
            p[size_t(1 * nb + b)] = rows + hh * d;                     // Q
            p[size_t(2 * nb + b)] = sc;                                // S
            p[size_t(3 * nb + b)] = rows + q_dim_ + kv_dim_ + kvh * d; // V
            p[size_t(4 * nb + b)] = sc;                                // P
            p[size_t(5 * nb + b)] = attn_.get() + s * L * q_dim_ + hh * d;
        }
    LOWBIT_TRY(att_ptrs_.alloc(6 * nb, "attention pointer arrays"));
    CALIB_CUDA_TRY(cudaMemcpyAsync(att_ptrs_.get(), p.data(), att_ptrs_.bytes(), cudaMemcpyHostToDevice, stream_),
                   "CalibLayer: upload attention pointers");
    CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "CalibLayer: upload attention pointers");
    return ok_status();
}

Status CudaCalibLayer::set_linear(Slot slot, const float* w, const float* bias) {
    const SlotShape s = shape(slot);
    const std::string what = std::string("CalibLayer::set_linear(") + slot_name(slot) + ")";
    if (!w) return make_error(ErrorCode::kUsage, what + ": null weight pointer");
    CALIB_CUDA_TRY(
        cudaMemcpyAsync(slot_weight(slot), w, sizeof(float) * size_t(s.out * s.in), cudaMemcpyHostToDevice, stream_),
        what + " upload of [" + std::to_string(s.out) + ", " + std::to_string(s.in) + "] f32");
    if (bias) {
        CALIB_CUDA_TRY(
            cudaMemcpyAsync(slot_bias(slot), bias, sizeof(float) * size_t(s.out), cudaMemcpyHostToDevice, stream_),
            what + " bias upload");
    } else {
        CALIB_CUDA_TRY(cudaMemsetAsync(slot_bias(slot), 0, sizeof(float) * size_t(s.out), stream_), what + " bias");
    }
    CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), what);
    weight_set_[int(slot)] = true;
    has_bias_[int(slot)] = bias != nullptr;
    return ok_status();
}

Status CudaCalibLayer::set_norms(const float* attn_norm, const float* ffn_norm) {
    if (!attn_norm || !ffn_norm) return make_error(ErrorCode::kUsage, "CalibLayer::set_norms: null pointer");
    const size_t bytes = sizeof(float) * size_t(dims_.hidden);
    CALIB_CUDA_TRY(cudaMemcpyAsync(attn_norm_.get(), attn_norm, bytes, cudaMemcpyHostToDevice, stream_),
                   "CalibLayer::set_norms: attn norm upload");
    CALIB_CUDA_TRY(cudaMemcpyAsync(ffn_norm_.get(), ffn_norm, bytes, cudaMemcpyHostToDevice, stream_),
                   "CalibLayer::set_norms: ffn norm upload");
    CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "CalibLayer::set_norms");
    norms_set_ = true;
    return ok_status();
}

Status CudaCalibLayer::set_hidden(const float* host, int64_t n_rows) {
    if (n_rows != n_samples_ * seqlen_)
        return make_error(ErrorCode::kUsage, "CalibLayer::set_hidden: expected " + std::to_string(n_samples_) + " x " +
                                                 std::to_string(seqlen_) + " = " +
                                                 std::to_string(n_samples_ * seqlen_) + " rows, got " +
                                                 std::to_string(n_rows));
    CALIB_CUDA_TRY(cudaMemcpyAsync(hidden_.get(), host, hidden_.bytes(), cudaMemcpyHostToDevice, stream_),
                   "CalibLayer::set_hidden upload (" + std::to_string(hidden_.bytes()) + " bytes)");
    CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "CalibLayer::set_hidden");
    hidden_set_ = true;
    return ok_status();
}

Status CudaCalibLayer::get_hidden(float* host) const {
    CALIB_CUDA_TRY(cudaMemcpyAsync(host, hidden_.get(), hidden_.bytes(), cudaMemcpyDeviceToHost, stream_),
                   "CalibLayer::get_hidden download (" + std::to_string(hidden_.bytes()) + " bytes)");
    CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "CalibLayer::get_hidden");
    return ok_status();
}

Status CudaCalibLayer::set_chunk_samples(int64_t n) {
    if (n < 1)
        return make_error(ErrorCode::kUsage, "CalibLayer::set_chunk_samples: need >= 1, got " + std::to_string(n));
    n = std::min(n, n_samples_);
    if (n == chunk_) return ok_status();
    CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "CalibLayer::set_chunk_samples");
    chunk_ = n;
    return alloc_scratch();
}

uint64_t CudaCalibLayer::device_bytes() const {
    uint64_t n = rope_cs_.bytes() + att_ptrs_.bytes();
    for (const auto* b : {&w_qkv_, &w_o_, &w_gu_, &w_down_, &b_qkv_, &b_o_, &b_gu_, &b_down_, &attn_norm_, &ffn_norm_,
                          &hidden_, &h_work_, &xnorm_, &qkv_, &attn_, &scores_, &gu_, &act_})
        n += b->bytes();
    return n;
}

// y[n_rows, n_out] (rows ldy apart) = x[n_rows, k] · W[n_out, k]ᵀ + beta · y. Column-major view: yᵀ = W · xᵀ.
Status CudaCalibLayer::gemm_xwt(const float* x, int64_t ldx, int64_t n_rows, const float* w, int64_t n_out, int64_t k,
                                float beta, float* y, int64_t ldy, const char* what) {
    const float one = 1.0f;
    CALIB_CUBLAS_TRY(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(n_out), int(n_rows), int(k), &one, w, CUDA_R_32F,
                                  int(k), x, CUDA_R_32F, int(ldx), &beta, y, CUDA_R_32F, int(ldy), compute_,
                                  CUBLAS_GEMM_DEFAULT),
                     std::string("CalibLayer ") + what + " GEMM [" + std::to_string(n_rows) + " x " +
                         std::to_string(k) + "] x [" + std::to_string(k) + " x " + std::to_string(n_out) + "]");
    return ok_status();
}

Status CudaCalibLayer::observe(const Observer& observer, Slot group, const float* x, int64_t n_tokens, int64_t k) {
    if (!observer) return ok_status();
    CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), std::string("CalibLayer: before observer of ") + slot_name(group));
    return observer(group, x, n_tokens, k);
}

Status CudaCalibLayer::forward(bool in_place, const Observer& observer, std::optional<Slot> stop_after) {
    if (in_place && stop_after)
        return make_error(ErrorCode::kUsage, "CalibLayer::forward: stop_after needs a statistics-only pass "
                                             "(in_place = false): the layer output would be incomplete");
    for (int s = 0; s < kNumSlots; ++s)
        if (!weight_set_[s])
            return make_error(ErrorCode::kUsage, std::string("CalibLayer::forward: ") + slot_name(Slot(s)) +
                                                     " weights were never set (call set_linear)");
    if (!norms_set_) return make_error(ErrorCode::kUsage, "CalibLayer::forward: norms were never set (set_norms)");
    if (!hidden_set_) return make_error(ErrorCode::kUsage, "CalibLayer::forward: hidden states were never set");
    std::optional<Slot> stop_group;
    if (stop_after) stop_group = first_slot_of_group(*stop_after);
    const int64_t h = dims_.hidden;
    for (int64_t s0 = 0; s0 < n_samples_; s0 += chunk_) {
        const int64_t cs = std::min(chunk_, n_samples_ - s0);
        float* rows = hidden_.get() + s0 * seqlen_ * h;
        if (!in_place) {
            CALIB_CUDA_TRY(cudaMemcpyAsync(h_work_.get(), rows, sizeof(float) * size_t(cs * seqlen_ * h),
                                           cudaMemcpyDeviceToDevice, stream_),
                           "CalibLayer::forward: copy of the chunk's hidden states");
            rows = h_work_.get();
        }
        LOWBIT_TRY(run_chunk(rows, cs, observer, stop_group));
    }
    CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "CalibLayer::forward");
    return ok_status();
}

// h [cs * seqlen, hidden] += attention(h); h += mlp(h). Returns early after the observer of `stop_group`.
Status CudaCalibLayer::run_chunk(float* h, int64_t cs, const Observer& observer, std::optional<Slot> stop_group) {
    const int64_t nt = cs * seqlen_, hd = dims_.hidden, ff = dims_.ff, L = seqlen_, d = dims_.head_dim;
    const int64_t nh = dims_.n_heads, nb = cs * nh, nb_all = chunk_ * nh;
    // Attention block.
    CALIB_CUDA_TRY(launch_rms_norm(h, attn_norm_.get(), xnorm_.get(), nt, hd, dims_.rms_eps, stream_),
                   "CalibLayer attn rms_norm");
    LOWBIT_TRY(observe(observer, Slot::kQ, xnorm_.get(), nt, hd));
    if (stop_group == Slot::kQ) return ok_status();
    LOWBIT_TRY(gemm_xwt(xnorm_.get(), hd, nt, w_qkv_.get(), qkv_ld_, hd, 0.0f, qkv_.get(), qkv_ld_, "q|k|v"));
    if (group_has_bias(Slot::kQ, 3))
        CALIB_CUDA_TRY(launch_add_bias(qkv_.get(), qkv_ld_, b_qkv_.get(), nt, qkv_ld_, stream_), "CalibLayer qkv bias");
    // q and k heads are adjacent columns of each row: one RoPE pass over n_heads + n_kv_heads heads.
    CALIB_CUDA_TRY(launch_rope_neox(qkv_.get(), qkv_ld_, nt, nh + dims_.n_kv_heads, d, L, rope_cs_.get(), stream_),
                   "CalibLayer rope");
    void** p = att_ptrs_.get();
    const float scale = float(1.0 / std::sqrt(double(d))), one = 1.0f, zero = 0.0f;
    // S_b [L_q rows, L_k cols] row-major = column-major Sᵀ = K_b (L_k x d) · Q_bᵀ.
    CALIB_CUBLAS_TRY(cublasGemmBatchedEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(L), int(L), int(d), &scale,
                                         p + 0 * nb_all, CUDA_R_32F, int(qkv_ld_), p + 1 * nb_all, CUDA_R_32F,
                                         int(qkv_ld_), &zero, p + 2 * nb_all, CUDA_R_32F, int(L), int(nb), compute_,
                                         CUBLAS_GEMM_DEFAULT),
                     "CalibLayer attention scores QK^T (batch " + std::to_string(nb) + ")");
    CALIB_CUDA_TRY(launch_causal_softmax(scores_.get(), nb, L, stream_), "CalibLayer causal softmax");
    // O_b [L, d] (rows q_dim apart) = P_b · V_b; column-major Oᵀ = Vᵀ · Pᵀ.
    CALIB_CUBLAS_TRY(cublasGemmBatchedEx(blas_, CUBLAS_OP_N, CUBLAS_OP_N, int(d), int(L), int(L), &one, p + 3 * nb_all,
                                         CUDA_R_32F, int(qkv_ld_), p + 4 * nb_all, CUDA_R_32F, int(L), &zero,
                                         p + 5 * nb_all, CUDA_R_32F, int(q_dim_), int(nb), compute_,
                                         CUBLAS_GEMM_DEFAULT),
                     "CalibLayer attention PV (batch " + std::to_string(nb) + ")");
    LOWBIT_TRY(observe(observer, Slot::kO, attn_.get(), nt, q_dim_));
    if (stop_group == Slot::kO) return ok_status();
    LOWBIT_TRY(gemm_xwt(attn_.get(), q_dim_, nt, w_o_.get(), hd, q_dim_, 1.0f, h, hd, "o_proj + residual"));
    if (has_bias_[int(Slot::kO)])
        CALIB_CUDA_TRY(launch_add_bias(h, hd, b_o_.get(), nt, hd, stream_), "CalibLayer o_proj bias");
    // MLP block.
    CALIB_CUDA_TRY(launch_rms_norm(h, ffn_norm_.get(), xnorm_.get(), nt, hd, dims_.rms_eps, stream_),
                   "CalibLayer ffn rms_norm");
    LOWBIT_TRY(observe(observer, Slot::kGate, xnorm_.get(), nt, hd));
    if (stop_group == Slot::kGate) return ok_status();
    LOWBIT_TRY(gemm_xwt(xnorm_.get(), hd, nt, w_gu_.get(), 2 * ff, hd, 0.0f, gu_.get(), 2 * ff, "gate|up"));
    if (group_has_bias(Slot::kGate, 2))
        CALIB_CUDA_TRY(launch_add_bias(gu_.get(), 2 * ff, b_gu_.get(), nt, 2 * ff, stream_), "CalibLayer gate|up bias");
    CALIB_CUDA_TRY(launch_silu_mul(gu_.get(), act_.get(), nt, ff, stream_), "CalibLayer silu*mul");
    LOWBIT_TRY(observe(observer, Slot::kDown, act_.get(), nt, ff));
    if (stop_group == Slot::kDown) return ok_status();
    LOWBIT_TRY(gemm_xwt(act_.get(), ff, nt, w_down_.get(), hd, ff, 1.0f, h, hd, "down_proj + residual"));
    if (has_bias_[int(Slot::kDown)])
        CALIB_CUDA_TRY(launch_add_bias(h, hd, b_down_.get(), nt, hd, stream_), "CalibLayer down_proj bias");
    return ok_status();
}

} // namespace

Result<std::shared_ptr<float>> device_floats(int64_t n) {
    if (n <= 0) return make_error(ErrorCode::kUsage, "device_floats: n must be > 0, got " + std::to_string(n));
    void* p = nullptr;
    CALIB_CUDA_TRY(cudaMalloc(&p, sizeof(float) * size_t(n)), "device_floats (" + std::to_string(n) + " floats)");
    return std::shared_ptr<float>(static_cast<float*>(p), [](float* q) { cudaFree(q); });
}

Status copy_device_to_host(void* host, const void* device, uint64_t bytes) {
    CALIB_CUDA_TRY(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost),
                   "copy_device_to_host (" + std::to_string(bytes) + " bytes)");
    return ok_status();
}

Status copy_host_to_device(void* device, const void* host, uint64_t bytes) {
    CALIB_CUDA_TRY(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice),
                   "copy_host_to_device (" + std::to_string(bytes) + " bytes)");
    return ok_status();
}

Result<std::unique_ptr<CalibLayer>> CalibLayer::create(const LayerDims& dims, int64_t n_samples, int64_t seqlen,
                                                       Precision precision) {
    const std::string what = "CalibLayer::create";
    if (dims.hidden <= 0 || dims.n_heads <= 0 || dims.n_kv_heads <= 0 || dims.head_dim <= 0 || dims.ff <= 0)
        return make_error(ErrorCode::kUsage, what + ": hidden, n_heads, n_kv_heads, head_dim and ff must be > 0");
    if (dims.n_heads % dims.n_kv_heads != 0)
        return make_error(ErrorCode::kUsage, what + ": n_heads " + std::to_string(dims.n_heads) +
                                                 " is not a multiple of n_kv_heads " + std::to_string(dims.n_kv_heads));
    if (dims.head_dim % 2 != 0)
        return make_error(ErrorCode::kUsage, what + ": head_dim " + std::to_string(dims.head_dim) + " is odd");
    if (int64_t(dims.rope_inv_freq.size()) != dims.head_dim / 2)
        return make_error(ErrorCode::kUsage,
                          what + ": rope_inv_freq has " + std::to_string(dims.rope_inv_freq.size()) +
                              " entries, expected head_dim / 2 = " + std::to_string(dims.head_dim / 2));
    if (n_samples <= 0 || seqlen <= 0)
        return make_error(ErrorCode::kUsage, what + ": n_samples and seqlen must be > 0");
    auto layer = std::make_unique<CudaCalibLayer>(dims, n_samples, seqlen, precision);
    LOWBIT_TRY(layer->init());
    return std::unique_ptr<CalibLayer>(std::move(layer));
}

} // namespace lowbit::kernel::cuda
