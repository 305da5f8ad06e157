// SPDX-License-Identifier: MIT
// The device half of the CUDA HQQ solver, in C++17 (nvcc compiles the .cu as C++17, so no scheme/ header
// with std::span is seen from here). hqq_cuda.cpp checks parameters and builds HqqTensor; this layer only
// moves bytes and runs kernels. Implemented by hqq_cuda.cu (LOWBIT_CUDA) or hqq_cuda_stub.cpp (kUnsupported).
#pragma once

#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::quantize::hqq::device {

bool compiled();
Status available();  // kUnsupported without CUDA, kDevice without a usable device 0
std::string label(); // device 0 name, sm and memory; empty when unavailable

// One validated problem: the grouped [R, C] matrix (hqq_solver.h), solver options and the packed size.
struct Problem {
    int64_t R = 0, C = 0, n_groups = 0, group_elems = 0;
    int axis = 1, nbits = 4;
    DType dtype = DType::kF32; // of the host weights: kF32, kF16 or kBF16
    bool meta_f16 = true;      // scale/zero rounded to f16
    bool optimize = true, round_zero = true;
    float lp_norm = 0.7f;
    double beta = 10.0, kappa = 1.01;
    int iters = 20;
    int64_t packed_bytes = 0;
};

struct Output {
    std::vector<uint8_t> packed;    // hqq bitpack of the codes ([packed rows, C] u8, or i32 for 3 bit)
    std::vector<float> scale, zero; // [n_groups], rounded to the meta dtype
    std::vector<double> errors;     // per iteration run
    double sq_err = 0.0, max_abs = 0.0, sum = 0.0, sum_sq = 0.0; // reconstruction sums (hqq_cuda.h)
    int64_t bad_index = -1; // first non-finite weight, -1 when none (the other fields are then unset)
};

// Seconds per phase summed over solve() calls since the last reset (every Solver of the process): host copy into
// pinned staging, the H2D span on the stream (DMA + waiting for the copies), kernels, D2H, host work after the
// sync, and solve()'s whole wall time.
struct PhaseTimes {
    double copy_in = 0.0, h2d = 0.0, kernels = 0.0, d2h = 0.0, host_out = 0.0, total = 0.0;
    int64_t calls = 0;
};
PhaseTimes phase_times();
void reset_phase_times();
// Benchmark knob: false copies the weights with one cudaMemcpyAsync from the caller's (pageable) memory instead of
// the two pinned staging chunks. Default true.
void set_staged_upload(bool staged);

class Solver {
  public:
    ~Solver();
    static Result<std::unique_ptr<Solver>> create(int index);
    // `w`: R * C host values of p.dtype. `pool` copies them into pinned staging.
    Status solve(const void* w, const Problem& p, ThreadPool& pool, Output* out);

    struct Impl;

  private:
    explicit Solver(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace lowbit::quantize::hqq::device
