// SPDX-License-Identifier: MIT
// The "hqq" row of the algorithm table: solver (CPU or CUDA) + records + error report.
#include "quantize/hqq/hqq_algo.h"

#include "core/half.h"
#include "quantize/hqq/hqq_solver.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fmt/format.h>

namespace lowbit::quantize::hqq {
namespace {

void to_options(const SchemeParams& s, scheme::hqq::HqqParams* p, HqqOptions* o) {
    p->nbits = s.bits;
    p->group_size = s.group_size;
    p->axis = s.axis;
    o->optimize = s.optimize;
    o->round_zero = s.round_zero;
    o->kappa = s.kappa;
}

// scale/zero as stored: f16 (converted on the pool: millions of groups in a 7B) or f32 bytes.
std::vector<uint8_t> meta_bytes(const std::vector<float>& v, DType dtype, ThreadPool& pool) {
    if (dtype == DType::kF32) {
        std::vector<uint8_t> b(v.size() * sizeof(float));
        if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
        return b;
    }
    std::vector<uint8_t> b(v.size() * sizeof(uint16_t));
    pool.parallel_for(
        int64_t(v.size()),
        [&](int64_t lo, int64_t hi, int) {
            for (int64_t i = lo; i < hi; ++i) {
                const uint16_t h = f32_to_f16(v[size_t(i)]);
                std::memcpy(&b[size_t(i) * 2], &h, 2);
            }
        },
        1 << 16);
    return b;
}

// scheme::hqq::to_records of a solved tensor, built without copying the packed codes (moved) and with the
// scale/zero conversion on the pool; the bytes are to_records' own.
std::vector<scheme::TensorRecord> take_records(scheme::hqq::HqqTensor& t, bool optimize, bool round_zero,
                                               ThreadPool* pool_arg) {
    ThreadPool& pool = pool_arg ? *pool_arg : ThreadPool::global();
    std::vector<uint8_t> w_q = std::move(t.w_q);
    std::vector<uint8_t> scale = meta_bytes(t.scale, t.params.meta_dtype, pool);
    std::vector<uint8_t> zero = meta_bytes(t.zero, t.params.meta_dtype, pool);
    t.w_q.clear();
    t.scale.clear();
    t.zero.clear();
    std::vector<scheme::TensorRecord> records = scheme::hqq::to_records(t, optimize, round_zero);
    for (scheme::TensorRecord& r : records) {
        if (r.suffix == "W_q") r.bytes = std::move(w_q);
        if (r.suffix == "scale") r.bytes = std::move(scale);
        if (r.suffix == "zero") r.bytes = std::move(zero);
    }
    return records;
}

// measure_error's report from the solver's reconstruction sums.
QuantizeReport report_of(const HqqReconSums& st, int64_t numel, const std::vector<scheme::TensorRecord>& records) {
    QuantizeReport r;
    const double n = double(std::max<int64_t>(numel, 1));
    const double var = std::max(0.0, st.sum_sq / n - (st.sum / n) * (st.sum / n));
    r.rmse = std::sqrt(st.sq_err / n);
    r.rel_rmse = var > 0.0 ? r.rmse / std::sqrt(var) : 0.0;
    r.max_abs_err = st.max_abs;
    r.bits_per_weight = double(scheme::records_bytes(records)) * 8.0 / n;
    return r;
}

Result<QuantizeOutput> quantize_on_cuda(const void* w, DType dtype, int64_t n_rows, int64_t n_cols,
                                        const SchemeParams& params, ThreadPool* pool) {
    scheme::hqq::HqqParams p;
    HqqOptions o;
    to_options(params, &p, &o);
    const Shape shape{n_rows, n_cols};
    QuantizeOutput out;
    HqqDeviceStats st;
    LOWBIT_TRY(with_shared_solver([&](HqqCudaSolver& solver) -> Status {
        LOWBIT_ASSIGN_OR_RETURN(HqqSolveResult r, solver.quantize(w, dtype, shape, p, o, pool, &st));
        out.records = take_records(r.tensor, o.optimize, r.round_zero, pool);
        out.report.n_iters = int(r.errors.size());
        return ok_status();
    }));
    const int n_iters = out.report.n_iters;
    out.report = report_of(st, shape.n_elems(), out.records);
    out.report.n_iters = n_iters;
    return out;
}

} // namespace

Result<QuantizeOutput> quantize_hqq_algo(const QuantizeRequest& req) {
    scheme::hqq::HqqParams p;
    HqqOptions o;
    to_options(req.params, &p, &o);
    const Shape shape{req.n_rows, req.n_cols};
    LOWBIT_ASSIGN_OR_RETURN(HqqSolveResult r, quantize_hqq(req.weights, shape, p, o, req.pool));
    QuantizeOutput out;
    out.records = take_records(r.tensor, o.optimize, r.round_zero, req.pool);
    out.report = report_of(r.recon, shape.n_elems(), out.records);
    out.report.n_iters = int(r.errors.size());
    return out;
}

Result<HqqDevice> parse_hqq_device(std::string_view name) {
    if (name == "auto") return HqqDevice::kAuto;
    if (name == "cpu") return HqqDevice::kCpu;
    if (name == "cuda") return HqqDevice::kCuda;
    return make_error(ErrorCode::kUsage, fmt::format("--device must be auto, cpu or cuda, got '{}'", name));
}

const char* hqq_device_name(HqqDevice device) {
    switch (device) {
    case HqqDevice::kAuto:
        return "auto";
    case HqqDevice::kCpu:
        return "cpu";
    case HqqDevice::kCuda:
        return "cuda";
    }
    return "?";
}

Result<HqqDevice> resolve_hqq_device(HqqDevice requested) {
    if (requested == HqqDevice::kCpu) return requested;
    const Status s = hqq_cuda_available();
    if (requested == HqqDevice::kCuda) {
        if (!s.ok()) return Error{s.error().code, "--device cuda: " + s.error().message};
        return requested;
    }
    return s.ok() ? HqqDevice::kCuda : HqqDevice::kCpu;
}

Result<QuantizeOutput> quantize_hqq_weights(const void* w, DType dtype, int64_t n_rows, int64_t n_cols,
                                            const SchemeParams& params, HqqDevice device, ThreadPool* pool) {
    if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16)
        return make_error(ErrorCode::kUsage,
                          fmt::format("hqq: weights must be f32, f16 or bf16, got {}", dtype_name(dtype)));
    if (!w || n_rows <= 0 || n_cols <= 0)
        return make_error(ErrorCode::kUsage,
                          fmt::format("hqq: needs a non-empty weight matrix, got [{}, {}]", n_rows, n_cols));
    if (device == HqqDevice::kAuto)
        return make_error(ErrorCode::kInternal, "hqq: the device must be resolved (resolve_hqq_device) first");
    if (device == HqqDevice::kCuda) return quantize_on_cuda(w, dtype, n_rows, n_cols, params, pool);
    QuantizeRequest req;
    req.n_rows = n_rows;
    req.n_cols = n_cols;
    req.params = params;
    req.pool = pool;
    const size_t n = size_t(n_rows) * size_t(n_cols);
    if (dtype == DType::kF32 && reinterpret_cast<uintptr_t>(w) % alignof(float) == 0) {
        req.weights = static_cast<const float*>(w);
        return quantize_hqq_algo(req);
    }
    std::vector<float> f(n);
    if (dtype == DType::kF32) { // mmap'd at an odd offset: an aligned copy
        std::memcpy(f.data(), w, n * sizeof(float));
        req.weights = f.data();
        return quantize_hqq_algo(req);
    }
    const void* h = w; // any alignment (mmap'd safetensors data): load_u16 reads through memcpy
    ThreadPool& tp = pool ? *pool : ThreadPool::global();
    tp.parallel_for(
        int64_t(n),
        [&](int64_t b, int64_t e, int) {
            for (int64_t i = b; i < e; ++i)
                f[size_t(i)] = dtype == DType::kBF16 ? bf16_to_f32(load_u16(h, i)) : f16_to_f32(load_u16(h, i));
        },
        1 << 16);
    req.weights = f.data();
    return quantize_hqq_algo(req);
}

} // namespace lowbit::quantize::hqq
