// SPDX-License-Identifier: MIT
// A tiny, slow, dependency-free stand-in for the five BLAS/LAPACK entry points lowbit calls
// (cblas_sgemm, cblas_sgemv, cblas_dsyrk, dpotrf_, dpotri_), linked only when configured with
// -DLOWBIT_BLAS=OFF. Purpose: portable binaries for machines without OpenBLAS (the GPU device image), where
// the heavy math runs on CUDA. Plain loops, same semantics as the reference BLAS for the arguments lowbit
// passes; any other argument combination aborts with a message (an internal error, never user input).
#include <cblas.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {
[[noreturn]] void unsupported(const char* what) {
    std::fprintf(stderr, "lowbit miniblas: unsupported call %s (configure with -DLOWBIT_BLAS=ON)\n", what);
    std::abort();
}
} // namespace

extern "C" {

void openblas_set_num_threads(int) {} // single-threaded loops: nothing to set

void cblas_sgemm(const CBLAS_ORDER order, const CBLAS_TRANSPOSE ta, const CBLAS_TRANSPOSE tb, const blasint m,
                 const blasint n, const blasint k, const float alpha, const float* a, const blasint lda, const float* b,
                 const blasint ldb, const float beta, float* c, const blasint ldc) {
    if (order != CblasRowMajor) unsupported("cblas_sgemm(col-major)");
    for (blasint i = 0; i < m; ++i) {
        float* crow = c + size_t(i) * size_t(ldc);
        for (blasint j = 0; j < n; ++j) crow[j] = beta == 0.0f ? 0.0f : beta * crow[j];
        for (blasint p = 0; p < k; ++p) {
            const float av = alpha * (ta == CblasNoTrans ? a[size_t(i) * lda + p] : a[size_t(p) * lda + i]);
            if (av == 0.0f) continue;
            if (tb == CblasNoTrans) {
                const float* brow = b + size_t(p) * ldb;
                for (blasint j = 0; j < n; ++j) crow[j] += av * brow[j];
            } else {
                for (blasint j = 0; j < n; ++j) crow[j] += av * b[size_t(j) * ldb + p];
            }
        }
    }
}

void cblas_sgemv(const CBLAS_ORDER order, const CBLAS_TRANSPOSE trans, const blasint m, const blasint n,
                 const float alpha, const float* a, const blasint lda, const float* x, const blasint incx,
                 const float beta, float* y, const blasint incy) {
    if (order != CblasRowMajor || trans != CblasNoTrans || incx != 1 || incy != 1) unsupported("cblas_sgemv");
    for (blasint i = 0; i < m; ++i) {
        double s = 0;
        for (blasint j = 0; j < n; ++j) s += double(a[size_t(i) * lda + j]) * x[j];
        y[i] = alpha * float(s) + (beta == 0.0f ? 0.0f : beta * y[i]);
    }
}

// Row-major, upper, trans: C[n,n] (upper) = alpha * Aᵀ A + beta * C with A [k, n] (lda >= n).
void cblas_dsyrk(const CBLAS_ORDER order, const CBLAS_UPLO uplo, const CBLAS_TRANSPOSE trans, const blasint n,
                 const blasint k, const double alpha, const double* a, const blasint lda, const double beta, double* c,
                 const blasint ldc) {
    if (order != CblasRowMajor || uplo != CblasUpper || trans != CblasTrans) unsupported("cblas_dsyrk");
    for (blasint i = 0; i < n; ++i)
        for (blasint j = i; j < n; ++j) c[size_t(i) * ldc + j] *= beta;
    for (blasint p = 0; p < k; ++p) {
        const double* row = a + size_t(p) * lda;
        for (blasint i = 0; i < n; ++i) {
            const double ai = alpha * row[i];
            if (ai == 0.0) continue;
            double* crow = c + size_t(i) * ldc;
            for (blasint j = i; j < n; ++j) crow[j] += ai * row[j];
        }
    }
}

// LAPACK, column-major, uplo 'L' only: A = L Lᵀ, L in the lower triangle.
void dpotrf_(const char* uplo, const int* n_in, double* a, const int* lda_in, int* info) {
    if (*uplo != 'L' && *uplo != 'l') unsupported("dpotrf_(U)");
    const int n = *n_in, lda = *lda_in;
    auto at = [&](int r, int c) -> double& { return a[size_t(c) * lda + r]; };
    *info = 0;
    for (int j = 0; j < n; ++j) {
        double d = at(j, j);
        for (int p = 0; p < j; ++p) d -= at(j, p) * at(j, p);
        if (!(d > 0.0) || !std::isfinite(d)) {
            *info = j + 1;
            return;
        }
        d = std::sqrt(d);
        at(j, j) = d;
        for (int i = j + 1; i < n; ++i) {
            double s = at(i, j);
            for (int p = 0; p < j; ++p) s -= at(i, p) * at(j, p);
            at(i, j) = s / d;
        }
    }
}

// LAPACK, column-major, uplo 'L': from the factor L (dpotrf_), A⁻¹ = L⁻ᵀ L⁻¹ into the lower triangle.
void dpotri_(const char* uplo, const int* n_in, double* a, const int* lda_in, int* info) {
    if (*uplo != 'L' && *uplo != 'l') unsupported("dpotri_(U)");
    const int n = *n_in, lda = *lda_in;
    auto at = [&](int r, int c) -> double& { return a[size_t(c) * lda + r]; };
    *info = 0;
    std::vector<double> inv(size_t(n) * size_t(n), 0.0); // L⁻¹, column-major lower
    auto li = [&](int r, int c) -> double& { return inv[size_t(c) * n + r]; };
    for (int j = 0; j < n; ++j) {
        if (at(j, j) == 0.0) {
            *info = j + 1;
            return;
        }
        li(j, j) = 1.0 / at(j, j);
        for (int i = j + 1; i < n; ++i) {
            double s = 0;
            for (int p = j; p < i; ++p) s -= at(i, p) * li(p, j);
            li(i, j) = s / at(i, i);
        }
    }
    for (int c = 0; c < n; ++c) // (L⁻ᵀ L⁻¹)[r][c] = Σ_p L⁻¹[p][r] L⁻¹[p][c], p >= max(r, c)
        for (int r = c; r < n; ++r) {
            double s = 0;
            for (int p = r; p < n; ++p) s += li(p, r) * li(p, c);
            at(r, c) = s;
        }
}

} // extern "C"
