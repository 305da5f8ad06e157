// SPDX-License-Identifier: MIT
// Registry-driven parity tests: every non-ref row of the kernel table against ref/, by NMSE, for every scheme
// row that can be produced (quantize_row), on shapes that break tiles (m = 1, 3, 17; K not a tile multiple).
#include "kernel/cpu/cpu_ops.h"
#include "kernel/kernel_list.h"
#include "kernel/ref/ref_ops.h"
#include "scheme/scheme_list.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>
#include <vector>

namespace lowbit::kernel {
namespace {

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
    double num = 0, den = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
        den += double(want[i]) * want[i];
    }
    return den == 0 ? num : num / den;
}

std::vector<float> randn(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// Column counts to try for a dtype: awkward multiples of the block size (or of nothing, for plain types).
std::vector<int64_t> k_values(DType dtype) {
    const int64_t b = dtype_block_elems(dtype);
    if (b == 1) return {1, 7, 33, 1000};
    return {b, 3 * b, 5 * b};
}

struct Quantized {
    std::vector<uint8_t> bytes;
    WeightView view;
};

Quantized quantize(const scheme::SchemeTraits& s, const std::vector<float>& w, int64_t n, int64_t k) {
    Quantized q;
    const uint64_t row_bytes = *dtype_row_bytes(s.dtype, uint64_t(k));
    q.bytes.resize(row_bytes * uint64_t(n));
    for (int64_t r = 0; r < n; ++r)
        s.quantize_row(w.data() + r * k, q.bytes.data() + uint64_t(r) * row_bytes, k, nullptr);
    q.view = make_weight(q.bytes.data(), s.dtype, n, k);
    return q;
}

TEST(KernelTable, RefRegisteredForEveryOp) {
    for (Op op : {Op::kMatmul, Op::kRmsNorm, Op::kRope, Op::kSoftmax, Op::kSiluMul, Op::kAttention}) {
        const KernelRow* row = find_kernel(op, DType::kF32, Backend::kRef);
        ASSERT_NE(row, nullptr) << op_name(op);
        EXPECT_EQ(row->backend, Backend::kRef);
    }
    // A dtype without a scheme row has no matmul anywhere; the dispatcher says so instead of guessing.
    EXPECT_EQ(find_kernel(Op::kMatmul, DType::kI64, Backend::kCpu), nullptr);
    EXPECT_FALSE(can_matmul(DType::kI64));
    EXPECT_TRUE(can_matmul(DType::kF16));
}

TEST(KernelCpu, F16FastConversionIsBitExact) {
    std::vector<uint16_t> all(65536);
    for (uint32_t h = 0; h < 65536; ++h) all[h] = uint16_t(h);
    std::vector<float> fast(65536), want(65536);
    scheme::find_scheme(DType::kF16)->dequantize_row(all.data(), want.data(), 65536);
    std::vector<scheme::DequantizeRowFn> fns = {cpu::dequantize_row_f16_fast};
    if (cpu::has_f16c()) fns.push_back(cpu::dequantize_row_f16_f16c);
    for (auto fn : fns) {
        fn(all.data(), fast.data(), 65533); // odd length: vector body + scalar tail
        for (uint32_t h = 0; h < 65533; ++h) {
            uint32_t a, b;
            std::memcpy(&a, &fast[h], 4), std::memcpy(&b, &want[h], 4);
            if (std::isnan(want[h])) { // NaN payloads may differ (F16C quiets signaling NaNs)
                ASSERT_TRUE(std::isnan(fast[h])) << "f16 bits 0x" << std::hex << h;
                continue;
            }
            ASSERT_EQ(a, b) << "f16 bits 0x" << std::hex << h;
        }
    }
}

TEST(KernelTable, CpuPrefersExactDtypeRow) {
    EXPECT_STREQ(find_kernel(Op::kMatmul, DType::kF16, Backend::kCpu)->name, "cpu::qdot_f16");
    EXPECT_STREQ(find_kernel(Op::kMatmul, DType::kF32, Backend::kCpu)->name, "cpu::matmul_f32");
    EXPECT_STREQ(find_kernel(Op::kMatmul, DType::kBF16, Backend::kCpu)->name, "cpu::qdot_bf16");
    EXPECT_STREQ(find_kernel(Op::kMatmul, DType::kQ4_K, Backend::kCpu)->name, "cpu::qdot_q4_k");
    EXPECT_EQ(find_kernel(Op::kSoftmax, DType::kF32, Backend::kCpu)->backend, Backend::kRef); // falls back
}

// Every (non-ref matmul row) x (producible scheme) x m x K against ref::matmul on the same quantized bytes.
// Rows that round x to 8-bit blocks (quantizes_activations, as llama.cpp does) differ from ref/ by that rounding:
// about 0.7% relative for Gaussian data (cpu/qdot/qdot_test.cpp derives the bound), so NMSE < 1e-4 for them.
TEST(KernelParity, MatmulEverySchemeEveryBackend) {
    ThreadPool pool(2);
    int n_checked = 0;
    for (const auto& s : scheme::all_schemes()) {
        if (!s.quantize_row || !s.dequantize_row) continue;
        for (const auto& row : kernel_list()) {
            if (row.op != Op::kMatmul || row.backend == Backend::kRef) continue;
            if (row.dtype != kAnyDType && row.dtype != s.dtype) continue;
            if (find_kernel(Op::kMatmul, s.dtype, row.backend) != &row) continue; // shadowed by an exact row
            for (int64_t k : k_values(s.dtype)) {
                const int64_t n = 600; // > one dequant tile for large K; not a multiple of 16
                const auto w = randn(size_t(n * k), 7u + uint32_t(k));
                const auto q = quantize(s, w, n, k);
                const auto bias = randn(size_t(n), 99);
                for (int64_t m : {1, 3, 17}) {
                    const auto x = randn(size_t(m * k), 11u + uint32_t(m));
                    std::vector<float> want(size_t(m * n)), got(size_t(m * n), NAN);
                    ref::matmul(x.data(), m, q.view, bias.data(), want.data(), nullptr);
                    std::get<MatmulFn>(row.fn)(x.data(), m, q.view, bias.data(), got.data(), &pool);
                    EXPECT_LT(nmse(got, want), row.quantizes_activations ? 1e-4 : 1e-10)
                        << row.name << " dtype " << dtype_name(s.dtype) << " m=" << m << " K=" << k;
                    ++n_checked;
                }
            }
        }
    }
    EXPECT_GE(n_checked, 3 * 3 * 3); // at least f32/f16/bf16 x 3 K x 3 m
}

AttentionArgs make_attention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                             std::vector<float>& out, int64_t n_tokens, int64_t n_past) {
    AttentionArgs a;
    a.q = q.data(), a.k = k.data(), a.v = v.data(), a.out = out.data();
    a.n_tokens = n_tokens, a.n_past = n_past, a.n_heads = 6, a.n_kv_heads = 2, a.head_dim = 10;
    a.scale = 1.0f / std::sqrt(10.0f);
    return a;
}

// Element ops and attention: every non-ref row against its ref/ row.
TEST(KernelParity, OtherOpsEveryBackend) {
    ThreadPool pool(2);
    const int64_t rows = 5, n = 37;
    const auto x = randn(size_t(rows * n), 1), w = randn(size_t(n), 2), u = randn(size_t(rows * n), 3);
    for (const auto& row : kernel_list()) {
        if (row.backend == Backend::kRef || row.op == Op::kMatmul) continue;
        std::vector<float> want(x.size()), got(x.size());
        switch (row.op) {
        case Op::kRmsNorm:
            ref::rms_norm(x.data(), w.data(), want.data(), rows, n, 1e-5f);
            std::get<RmsNormFn>(row.fn)(x.data(), w.data(), got.data(), rows, n, 1e-5f);
            break;
        case Op::kSiluMul:
            ref::silu_mul(x.data(), u.data(), want.data(), rows * n);
            std::get<SiluMulFn>(row.fn)(x.data(), u.data(), got.data(), rows * n);
            break;
        case Op::kSoftmax:
            want = got = x;
            ref::softmax(want.data(), n);
            std::get<SoftmaxFn>(row.fn)(got.data(), n);
            break;
        case Op::kRope: {
            std::vector<float> inv_freq(5);
            for (size_t i = 0; i < 5; ++i) inv_freq[i] = std::pow(10000.0f, -float(i) / 5.0f);
            for (RopeStyle st : {RopeStyle::kNeox, RopeStyle::kNorm}) {
                want = got = x; // [5 tokens, 3 heads, 10] + 7 spare floats per row
                ref::rope(want.data(), rows, n, 3, 10, 4, inv_freq.data(), st);
                std::get<RopeFn>(row.fn)(got.data(), rows, n, 3, 10, 4, inv_freq.data(), st);
                EXPECT_LT(nmse(got, want), 1e-10) << row.name;
            }
            break;
        }
        case Op::kAttention: {
            const int64_t n_past = 4, n_tok = 3; // q: [3, 6, 10], kv: [7, 2, 10]
            const auto q = randn(size_t(n_tok * 60), 4), k = randn(size_t((n_past + n_tok) * 20), 5),
                       v = randn(size_t((n_past + n_tok) * 20), 6);
            want.assign(size_t(n_tok * 60), 0), got.assign(size_t(n_tok * 60), 0);
            ref::attention(make_attention(q, k, v, want, n_tok, n_past), nullptr);
            std::get<AttentionFn>(row.fn)(make_attention(q, k, v, got, n_tok, n_past), &pool);
            break;
        }
        case Op::kMatmul:
        case Op::kKvAttention: // kv_attention_test.cpp: every cache type, slots, against ref and attention
            continue;
        }
        EXPECT_LT(nmse(got, want), 1e-10) << row.name;
    }
}

} // namespace
} // namespace lowbit::kernel
