// SPDX-License-Identifier: MIT
// HqqCudaSolver (hqq_cuda.h): checks the problem like quantize_hqq, hands it to the device layer
// (hqq_cuda_device.h) and builds the HqqTensor. Compiled in every build; without CUDA the device layer refuses.
#include "quantize/hqq/hqq_cuda.h"

#include "core/finite.h"
#include "core/half.h"
#include "quantize/hqq/hqq_cuda_device.h"

#include <cstring>
#include <fmt/format.h>
#include <mutex>
#include <optional>

namespace lowbit::quantize::hqq {

struct HqqCudaSolver::Impl {
    std::unique_ptr<device::Solver> solver;
};

bool hqq_cuda_compiled() {
    return device::compiled();
}
Status hqq_cuda_available() {
    return device::available();
}
std::string hqq_cuda_device_label() {
    return device::label();
}

HqqCudaSolver::HqqCudaSolver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HqqCudaSolver::~HqqCudaSolver() = default;

Result<std::unique_ptr<HqqCudaSolver>> HqqCudaSolver::create(int index) {
    LOWBIT_ASSIGN_OR_RETURN(std::unique_ptr<device::Solver> s, device::Solver::create(index));
    auto impl = std::make_unique<Impl>();
    impl->solver = std::move(s);
    return std::unique_ptr<HqqCudaSolver>(new HqqCudaSolver(std::move(impl)));
}

Result<HqqSolveResult> HqqCudaSolver::quantize(const void* w, DType dtype, const Shape& shape,
                                               const scheme::hqq::HqqParams& params, const HqqOptions& options,
                                               ThreadPool* pool, HqqDeviceStats* stats) {
    LOWBIT_TRY(scheme::hqq::validate(params, shape));
    LOWBIT_TRY(validate_hqq_options(options));
    if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16)
        return make_error(ErrorCode::kUsage,
                          fmt::format("HQQ on cuda takes f32, f16 or bf16 weights, got {}", dtype_name(dtype)));
    const scheme::hqq::GroupedShape gs = scheme::hqq::grouped_shape(params, shape);
    device::Problem p;
    p.R = gs.n_rows;
    p.C = gs.n_cols;
    p.axis = params.axis;
    p.nbits = params.nbits;
    p.n_groups = scheme::hqq::n_groups(params, gs);
    p.group_elems = p.R * p.C / p.n_groups;
    p.dtype = dtype;
    p.meta_f16 = params.meta_dtype == DType::kF16;
    p.optimize = options.optimize;
    p.round_zero = options.round_zero.value_or(params.nbits == 4);
    p.lp_norm = options.lp_norm;
    p.beta = options.beta;
    p.kappa = options.kappa;
    p.iters = options.iters;
    p.packed_bytes = scheme::hqq::packed_shape(params.nbits, p.R, p.C).n_elems() * (params.nbits == 3 ? 4 : 1);
    device::Output out;
    LOWBIT_TRY(impl_->solver->solve(w, p, pool ? *pool : ThreadPool::global(), &out));
    if (out.bad_index >= 0) {
        const char* b = static_cast<const char*>(w);
        float v = 0.0f;
        uint16_t h = 0;
        if (dtype == DType::kF32) {
            std::memcpy(&v, b + 4 * out.bad_index, 4);
        } else {
            std::memcpy(&h, b + 2 * out.bad_index, 2);
            v = dtype == DType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
        }
        return non_finite_error("", out.bad_index, shape.n_dims == 2 ? shape[1] : 0, v);
    }
    HqqSolveResult res;
    res.round_zero = p.round_zero;
    res.errors = std::move(out.errors);
    res.tensor.params = params;
    res.tensor.shape = shape;
    res.tensor.w_q = std::move(out.packed);
    res.tensor.scale = std::move(out.scale);
    res.tensor.zero = std::move(out.zero);
    res.recon = HqqReconSums{out.sq_err, out.max_abs, out.sum, out.sum_sq};
    if (stats) *stats = res.recon;
    return res;
}

Status with_shared_solver(const std::function<Status(HqqCudaSolver&)>& fn) {
    static std::mutex mutex;
    static HqqCudaSolver* solver = nullptr; // kept until exit: no device teardown in static destructors
    static std::optional<Error> create_error;
    std::lock_guard<std::mutex> lock(mutex);
    if (!solver && !create_error) {
        auto s = HqqCudaSolver::create(0);
        if (s.ok()) {
            solver = s->release();
        } else {
            create_error = s.error();
        }
    }
    if (!solver) return *create_error;
    return fn(*solver);
}

} // namespace lowbit::quantize::hqq
