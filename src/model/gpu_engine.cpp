// SPDX-License-Identifier: MIT
// Transformer -> CUDA engine description (see gpu_engine.h).
#include "model/gpu_engine.h"

#include <fmt/format.h>

namespace lowbit::model {
namespace {

kernel::cuda::GpuWeight gpu_weight(const kernel::WeightView& w) {
    kernel::cuda::GpuWeight g;
    g.data = w.data, g.dtype = w.dtype, g.n_rows = w.n_rows, g.n_cols = w.n_cols, g.row_bytes = w.row_bytes;
    g.row_scale = w.row_scale, g.outlier_threshold = w.outlier_threshold, g.col_perm = w.col_perm;
    return g;
}

const float* or_null(const std::vector<float>& v) {
    return v.empty() ? nullptr : v.data();
}

} // namespace

Result<std::unique_ptr<kernel::cuda::LlamaGpu>> make_gpu_engine(const Transformer& model,
                                                                const kernel::cuda::GpuEngineOptions& options) {
    const auto& c = model.config();
    const ModelWeights& w = model.weights();
    kernel::cuda::GpuModelDesc d;
    d.n_layers = c.n_layers, d.hidden = c.hidden_size, d.n_heads = c.n_heads, d.n_kv_heads = c.n_kv_heads;
    d.head_dim = c.head_dim, d.n_ff = c.intermediate_size, d.n_vocab = c.vocab_size, d.rms_eps = c.rms_norm_eps;
    d.rope_neox = model.rope_style() == kernel::RopeStyle::kNeox;
    d.inv_freq = model.inv_freq();
    d.token_embd = gpu_weight(w.token_embd), d.output = gpu_weight(w.output);
    d.output_norm = w.output_norm.data();
    for (const LayerWeights& l : w.layers) {
        kernel::cuda::GpuLayerDesc g;
        g.attn_norm = l.attn_norm.data(), g.ffn_norm = l.ffn_norm.data();
        g.wq = gpu_weight(l.wq), g.wk = gpu_weight(l.wk), g.wv = gpu_weight(l.wv), g.wo = gpu_weight(l.wo);
        g.gate = gpu_weight(l.w_gate), g.up = gpu_weight(l.w_up), g.down = gpu_weight(l.w_down);
        g.bq = or_null(l.bq), g.bk = or_null(l.bk), g.bv = or_null(l.bv), g.bo = or_null(l.bo);
        d.layers.push_back(g);
    }
    return kernel::cuda::LlamaGpu::create(d, options);
}

Status gpu_forward(kernel::cuda::LlamaGpu& engine, const Batch& batch, KvCache& cache, float* logits) {
    LOWBIT_TRY(engine.forward(batch.token.data(), batch.pos.data(), batch.seq.data(), batch.logits.data(), batch.size(),
                              logits));
    for (int64_t t = 0; t < batch.size(); ++t)
        cache.set_seq_len(batch.seq[size_t(t)], int64_t(batch.pos[size_t(t)]) + 1);
    return ok_status();
}

} // namespace lowbit::model
