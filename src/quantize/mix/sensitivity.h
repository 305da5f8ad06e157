// SPDX-License-Identifier: MIT
// The cheap sensitivity proxy of mixed precision: the importance-weighted reconstruction error of one tensor
// stored as one type, err = sum_rows sum_j imp[j] * (w[r, j] - Q(w)[r, j])^2, with Q the GGUF block quantizer
// given the same importance (llama.cpp's imatrix: imp[j] = mean squared input of column j). For a linear layer
// y = W x this is the expected squared error of y per token, E||(W - Q(W)) x||^2 with the cross terms of x
// dropped (the diagonal of the input covariance, as the imatrix keeps).
#pragma once

#include "core/dtype.h"
#include "core/error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lowbit::quantize::mix {

// w [n_rows, n_per_row] f32; importance null (all ones) or [n_per_row]. Errors: those of the quantizer
// (kUnsupported type, kUsage row length not a multiple of the block).
Result<double> weighted_error(DType type, const float* w, int64_t n_rows, int64_t n_per_row, const float* importance);

// sum_rows sum_j imp[j] * w[r, j]^2: the expected squared output E||W x||^2 per token (diagonal inputs, as above).
double weighted_signal(const float* w, int64_t n_rows, int64_t n_per_row, const float* importance);

// Where an error lands in the residual stream. The raw proxy ranks tensors poorly across depth (Spearman 0.43
// against measured single-tensor KLD on the reference model, docs/compare/proxy-check.txt): the residual stream
// grows with depth, so the same absolute error matters less later. Per tensor a factor f, damage = proxy * f:
//   residual writers (attn_output, ffn_down):  f = 1 / R, R = E||h||^2 of the residual stream they add to,
//     estimated as token_embd's mean squared row + the signals (weighted_signal) of the writers before them;
//   their readers (attn_q/k/v -> attn_output, ffn_gate/up -> ffn_down): the relative error proxy / signal carried
//     through the writer, f = signal(writer) / (signal(self) * R(writer));
//   token_embd: f = 1 / signal (relative error, R = its own norm); output: f = 1 / R after the last layer.
// names are GGUF names ("blk.3.ffn_down.weight"), signal[i] the tensor's weighted_signal (token_embd: per row).
// nullopt when a quantized tensor is none of these (fused or MoE tensors) or a layer lacks a writer: the caller
// keeps the raw proxy. Ranks 0.75 (Spearman) on the same table; designed after looking at it.
std::optional<std::vector<double>> residual_factors(const std::vector<std::string>& names,
                                                    const std::vector<double>& signal);

} // namespace lowbit::quantize::mix
