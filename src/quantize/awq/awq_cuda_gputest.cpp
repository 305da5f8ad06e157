// SPDX-License-Identifier: MIT
// AWQ device steps (label gpu) against the CPU functions of awq.h: the group quantizer bit for bit (search form
// Q(w·s)/s and the final f16-scale form with codes, scales and zeros), the column means, the loss sum, and the clip
// search (exact f32 GEMMs: the same bound for >= 99 % of the groups; the rest are near-ties moved by the
// x·(q - w) vs x·q - x·w formulation). Skips cleanly without CUDA or without a device.
#include "kernel/cuda/calib_layer.h"
#include "kernel/cuda/cuda_backend.h"
#include "quantize/awq/awq.h"
#include "quantize/awq/awq_cuda.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::quantize::awq {
namespace {

namespace kc = kernel::cuda;

// Heavy-tailed weights (Student-t, 3 dof) with a few large columns, like real LLM linears.
std::vector<float> student(int64_t n, uint32_t seed, float scale = 0.02f) {
    std::mt19937 rng(seed);
    std::student_t_distribution<float> d(3.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = scale * d(rng);
    return v;
}

std::shared_ptr<float> upload(const std::vector<float>& h) {
    auto d = kc::device_floats(int64_t(h.size()));
    EXPECT_TRUE(d.ok());
    EXPECT_TRUE(kc::copy_host_to_device(d->get(), h.data(), h.size() * sizeof(float)).ok());
    return *d;
}

// Through the ops' stream: it is non-blocking, so a legacy-stream cudaMemcpy would not wait for its kernels.
std::vector<float> download(AwqCuda& ops, const float* d, size_t n) {
    std::vector<float> h(n);
    EXPECT_TRUE(ops.to_host(h.data(), d, int64_t(n)).ok());
    return h;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct Case {
    int64_t rows, cols, group;
    int bits;
    bool zero_point;
};

const Case kCases[] = {{64, 256, 128, 4, true}, {96, 512, 32, 3, true},    {40, 384, 128, 2, false},
                       {33, 256, -1, 8, true},  {128, 1024, 64, 4, false}, {17, 96, 16, 4, true}};

TEST(AwqCuda, PseudoQuantizeIsBitIdenticalToTheCpu) {
    if (const std::string why = kernel::cuda::cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    auto ops = AwqCuda::create(nullptr, false);
    ASSERT_TRUE(ops.ok()) << ops.error().message;
    for (const Case& c : kCases) {
        AwqOptions o;
        o.bits = c.bits, o.group_size = c.group, o.zero_point = c.zero_point;
        const std::string label = std::to_string(c.rows) + "x" + std::to_string(c.cols) + " g" +
                                  std::to_string(c.group) + " b" + std::to_string(c.bits) +
                                  (c.zero_point ? " asym" : " sym");
        const std::vector<float> w = student(c.rows * c.cols, uint32_t(c.rows + c.cols));
        std::vector<float> s = student(c.cols, 5, 1.0f);
        for (auto& v : s) v = 0.25f + std::fabs(v);
        // Search form: Q(w·s)/s.
        std::vector<float> ref(w.size());
        for (int64_t r = 0; r < c.rows; ++r)
            for (int64_t k = 0; k < c.cols; ++k) ref[size_t(r * c.cols + k)] = w[size_t(r * c.cols + k)] * s[size_t(k)];
        pseudo_quantize(ref.data(), c.rows, c.cols, o);
        for (int64_t r = 0; r < c.rows; ++r)
            for (int64_t k = 0; k < c.cols; ++k) ref[size_t(r * c.cols + k)] /= s[size_t(k)];
        auto dw = upload(w), ds = upload(s), dout = upload(std::vector<float>(w.size()));
        ASSERT_TRUE((*ops)->scaled_pseudo_quantize(dw.get(), c.rows, c.cols, ds.get(), dout.get(), o).ok());
        EXPECT_TRUE(same_bits(download(**ops, dout.get(), w.size()), ref)) << label;
        // Final form: f16 scales, codes / scales / zeros.
        std::vector<float> cpu = w;
        GroupQuant gc, gg;
        pseudo_quantize(cpu.data(), c.rows, c.cols, o, true, &gc);
        ASSERT_TRUE((*ops)->quantize(dw.get(), c.rows, c.cols, o, gg).ok());
        EXPECT_EQ(gg.codes, gc.codes) << label;
        EXPECT_EQ(gg.zeros, gc.zeros) << label;
        EXPECT_TRUE(same_bits(gg.scales, gc.scales)) << label;
        EXPECT_TRUE(same_bits(download(**ops, dw.get(), w.size()), cpu)) << label;
    }
}

TEST(AwqCuda, MeansLossAndScalingMatchTheCpu) {
    if (const std::string why = kernel::cuda::cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    auto ops = AwqCuda::create(nullptr, true);
    ASSERT_TRUE(ops.ok()) << ops.error().message;
    const int64_t n = 3000, k = 640; // rows not a multiple of the 256-row chunks
    const std::vector<float> x = student(n * k, 11, 1.0f);
    auto dx = upload(x);
    ChannelMeanAbs cm(k);
    cm.add(x.data(), n);
    auto m = (*ops)->channel_mean_abs(dx.get(), n, k);
    ASSERT_TRUE(m.ok()) << m.error().message;
    const std::vector<float> want = cm.mean();
    for (int64_t c = 0; c < k; ++c) EXPECT_NEAR((*m)[size_t(c)], want[size_t(c)], 1e-6 * want[size_t(c)]) << c;
    const std::vector<float> w1 = student(96 * k, 12), w2 = student(32 * k, 13);
    auto d1 = upload(w1), d2 = upload(w2);
    const LinearRef host_refs[2] = {{w1.data(), 96}, {w2.data(), 32}};
    const DeviceLinearRef dev_refs[2] = {{d1.get(), 96}, {d2.get(), 32}};
    for (int64_t g : {int64_t(64), int64_t(-1)}) {
        const std::vector<float> wm_cpu = weight_mean(host_refs, k, g);
        auto wm = (*ops)->weight_mean(dev_refs, 2, k, g);
        ASSERT_TRUE(wm.ok()) << wm.error().message;
        for (int64_t c = 0; c < k; ++c) EXPECT_NEAR((*wm)[size_t(c)], wm_cpu[size_t(c)], 1e-6 * wm_cpu[size_t(c)]);
    }
    const std::vector<float> y = student(n * k, 14, 1.0f);
    auto dy = upload(y);
    ASSERT_TRUE((*ops)->reset_loss().ok());
    ASSERT_TRUE((*ops)->add_sq_diff(dx.get(), dy.get(), n * k / 2).ok());
    ASSERT_TRUE((*ops)->add_sq_diff(dx.get() + n * k / 2, dy.get() + n * k / 2, n * k - n * k / 2).ok());
    auto loss = (*ops)->loss();
    ASSERT_TRUE(loss.ok()) << loss.error().message;
    const double want_loss = mean_squared_error(x.data(), y.data(), n * k) * double(n * k);
    EXPECT_NEAR(*loss, want_loss, 1e-12 * want_loss);
    // Deterministic: the same sum twice.
    ASSERT_TRUE((*ops)->reset_loss().ok());
    ASSERT_TRUE((*ops)->add_sq_diff(dx.get(), dy.get(), n * k / 2).ok());
    ASSERT_TRUE((*ops)->add_sq_diff(dx.get() + n * k / 2, dy.get() + n * k / 2, n * k - n * k / 2).ok());
    EXPECT_EQ(*(*ops)->loss(), *loss);
    // Column / row scaling.
    std::vector<float> s(static_cast<size_t>(k)), r(static_cast<size_t>(n));
    for (int64_t c = 0; c < k; ++c) s[size_t(c)] = 0.5f + 0.01f * float(c % 97);
    for (int64_t i = 0; i < n; ++i) r[size_t(i)] = 1.5f - 0.001f * float(i % 211);
    auto dsc = upload(s), dr = upload(r);
    ASSERT_TRUE((*ops)->scale_columns(dx.get(), n, k, dsc.get(), true).ok());
    ASSERT_TRUE((*ops)->scale_rows(dx.get(), n, k, dr.get(), false).ok());
    std::vector<float> want_x = x;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < k; ++c) {
            float& v = want_x[size_t(i * k + c)];
            v /= s[size_t(c)];
            v *= r[size_t(i)];
        }
    std::vector<float> got(x.size());
    ASSERT_TRUE((*ops)->to_host(got.data(), dx.get(), n * k).ok());
    EXPECT_TRUE(same_bits(got, want_x));
}

TEST(AwqCuda, ClipSearchMatchesTheCpu) {
    if (const std::string why = kernel::cuda::cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    auto ops = AwqCuda::create(nullptr, false);
    ASSERT_TRUE(ops.ok()) << ops.error().message;
    struct ClipCase {
        int64_t n_out, n_in, group, tokens;
        int bits;
        bool zero_point;
    };
    for (const ClipCase& c : {ClipCase{96, 512, 128, 2000, 4, true}, ClipCase{64, 256, 32, 700, 3, false},
                              ClipCase{48, 384, -1, 513, 4, true}}) {
        AwqOptions o;
        o.bits = c.bits, o.group_size = c.group, o.zero_point = c.zero_point, o.n_sample_token = 128;
        const std::vector<float> w = student(c.n_out * c.n_in, 21), x = student(c.tokens * c.n_in, 22, 1.0f);
        auto want = search_best_clip(w.data(), c.n_out, c.n_in, x.data(), c.tokens, o);
        ASSERT_TRUE(want.ok()) << want.error().message;
        std::vector<float> w_cpu = w;
        apply_clip(w_cpu.data(), c.n_out, c.n_in, c.group, *want);
        auto dw = upload(w), dx = upload(x);
        std::vector<float> got;
        ASSERT_TRUE((*ops)->clip(dw.get(), c.n_out, c.n_in, dx.get(), c.tokens, o, &got).ok());
        ASSERT_EQ(got.size(), want->size());
        int64_t same = 0;
        for (size_t i = 0; i < got.size(); ++i) same += got[i] == (*want)[i];
        const double frac = double(same) / double(got.size());
        std::printf("clip %lldx%lld g%lld: %lld / %zu bounds equal (%.2f %%)\n", (long long)c.n_out, (long long)c.n_in,
                    (long long)c.group, (long long)same, got.size(), 100.0 * frac);
        EXPECT_GE(frac, 0.99);
        if (same == int64_t(got.size())) {
            EXPECT_TRUE(same_bits(download(**ops, dw.get(), w.size()), w_cpu));
        }
    }
}

TEST(AwqCuda, BadOptionsAreErrors) {
    if (const std::string why = kernel::cuda::cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    auto ops = AwqCuda::create(nullptr, true);
    ASSERT_TRUE(ops.ok());
    AwqOptions o;
    o.group_size = 96;
    GroupQuant gq;
    auto d = kc::device_floats(64 * 256);
    const Status s = (*ops)->quantize(d->get(), 64, 256, o, gq);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kUsage);
    EXPECT_NE(s.error().message.find("group size"), std::string::npos) << s.error().message;
}

} // namespace
} // namespace lowbit::quantize::awq
