// SPDX-License-Identifier: MIT
// Transformer: the Llama-family forward pass over bound weights and a slotted KV cache (kv_cache.h).
//   embed -> per layer [RMSNorm -> Q,K,V (+bias) -> RoPE -> causal GQA attention over the cache -> o_proj ->
//   residual -> RMSNorm -> SwiGLU MLP -> residual] -> final RMSNorm -> LM head.
// A step is a Batch (batch.h): tokens of one or several sequences go through at once ([n_tokens, hidden]
// activations, matmuls as GEMM over all of them); only attention looks at each token's own slot.
// Thread-safety: one forward at a time per instance (scratch buffers are members).
#pragma once

#include "core/error.h"
#include "core/thread_pool.h"
#include "format/hf/config.h"
#include "format/tensor_store.h"
#include "kernel/kernel.h"
#include "model/arch/arch.h"
#include "model/batch.h"
#include "model/kv_cache.h"
#include "model/weights.h"

#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace lowbit::model {

// The linear layers of a decoder block (+ the LM head), for calibration observers.
enum class LinearId : uint8_t { kQ, kK, kV, kO, kGate, kUp, kDown, kOutput };
const char* linear_gguf_name(LinearId id); // "attn_q", ..., "ffn_down", "output"
const char* linear_hf_name(LinearId id);   // "self_attn.q_proj", ..., "mlp.down_proj", "lm_head"

// Sees the input x [n_tokens, n_cols] f32 of a linear layer right before it is multiplied (layer = -1 for the
// LM head). q/k/v share one input and gate/up another: the observer is called once per weight, as llama.cpp's
// imatrix collector is. Calibration (imatrix Σx², GPTQ Hessians, AWQ channel means) is built on this seam.
using LinearObserver =
    std::function<void(int64_t layer, LinearId id, const float* x, int64_t n_tokens, int64_t n_cols)>;

class Transformer {
  public:
    // Normalizes the config, finds the arch (config.arch, else config.hf_architecture), binds the weights and
    // computes RoPE frequencies. `store` is kept alive by the transformer (the weights are views into it).
    static Result<std::unique_ptr<Transformer>> create(std::shared_ptr<const format::TensorStore> store,
                                                       const format::ModelConfig& config, SourceFormat source,
                                                       kernel::Backend backend = kernel::Backend::kCpu);

    const format::ModelConfig& config() const { return config_; }
    const ArchDesc& arch() const { return *arch_; }
    SourceFormat source() const { return source_; }
    kernel::RopeStyle rope_style() const { return rope_style_; }
    const ModelWeights& weights() const { return weights_; }
    const std::vector<float>& inv_freq() const { return inv_freq_; } // [head_dim / 2]

    // A cache sized for this model (errors: see KvCache::create).
    Result<KvCache> make_cache(const KvCacheOptions& options) const;
    // One f32 slot of n_ctx positions (calibration and tests; the size is trusted: aborts if it cannot be made).
    KvCache make_cache(int64_t n_ctx) const;

    // kUsage when `batch` breaks a rule of batch.h for this model and cache (message names the token index).
    Status validate_batch(const Batch& batch, const KvCache& cache) const;
    // One step: writes every token's K/V into its slot at its position, sets each slot's length to its last
    // position + 1, and fills logits [batch.n_logits(), n_vocab] (rows in batch order). Precondition:
    // validate_batch(batch, cache) is ok and batch.size() >= 1.
    void forward(const Batch& batch, KvCache& cache, float* logits, ThreadPool* pool);
    // Single-sequence form (slot 0): tokens at positions [n_past, n_past + n). logits: [n, n_vocab] when
    // all_logits, else [1, n_vocab] (last token). Preconditions: 0 <= id < n_vocab, n_past + n <= n_ctx, n >= 1.
    void forward(std::span<const int32_t> tokens, int64_t n_past, KvCache& cache, bool all_logits, float* logits,
                 ThreadPool* pool);

    // Calibration hooks (same preconditions). hidden: [n_tokens, hidden_size] f32.
    void embed(std::span<const int32_t> tokens, float* hidden) const;
    // One decoder layer in place on `hidden`, attending over cache rows [0, n_past + n_tokens).
    void run_layer(int64_t layer, float* hidden, int64_t n_tokens, int64_t n_past, KvCache& cache, ThreadPool* pool);
    // Final norm + LM head on `n_tokens` rows of hidden (modified in place by the norm) -> logits [n_tokens, n_vocab].
    void head(float* hidden, int64_t n_tokens, float* logits, ThreadPool* pool);

    // Installs (or clears, with an empty function) the observer of linear-layer inputs.
    void set_linear_observer(LinearObserver observer) { observer_ = std::move(observer); }

  private:
    Transformer() = default;
    kernel::Exec exec(ThreadPool* pool) const { return kernel::Exec{backend_, pool}; }
    // Token t of the n is in slot seq[t] at position pos[t].
    void attention_block(const LayerWeights& l, int64_t il, float* hidden, int64_t n, const int32_t* seq,
                         const int32_t* pos, KvCache& cache, ThreadPool* pool);
    void layer_step(int64_t il, float* hidden, int64_t n, const int32_t* seq, const int32_t* pos, KvCache& cache,
                    ThreadPool* pool);
    void mlp_block(const LayerWeights& l, int64_t il, float* hidden, int64_t n, ThreadPool* pool);
    void observe(int64_t layer, LinearId id, const float* x, int64_t n, int64_t n_cols) const {
        if (observer_) observer_(layer, id, x, n, n_cols);
    }

    std::shared_ptr<const format::TensorStore> store_;
    format::ModelConfig config_;
    const ArchDesc* arch_ = nullptr;
    SourceFormat source_ = SourceFormat::kHf;
    kernel::Backend backend_ = kernel::Backend::kCpu;
    kernel::RopeStyle rope_style_ = kernel::RopeStyle::kNeox;
    ModelWeights weights_;
    std::vector<float> inv_freq_;
    // Scratch, grown on demand: [n, hidden] x2, [n, q_dim] x2, [n, kv_dim] x2, [n, n_ff] x2, [n_logits, hidden].
    std::vector<float> hidden_, norm_, q_, attn_, k_, v_, gate_, up_, picked_;
    std::vector<int32_t> seq_scratch_, pos_scratch_; // the single-sequence forms' slot 0 / positions
    LinearObserver observer_;
};

} // namespace lowbit::model
