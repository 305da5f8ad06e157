// SPDX-License-Identifier: MIT
// Session: a loaded Llama-family model ready to run — config, mmapped weights bound to kernels, KV cache,
// thread pool and (when the model ships one) the tokenizer. Implements runtime::LanguageModel.
// Goals: one entry point for an HF directory (config.json + safetensors) or a .gguf file; a KV cache of n_seq
// slots so that several sequences advance in one forward step (decode(Batch), the server's continuous
// batching). The LanguageModel interface (eval/truncate) is the single-sequence special case on slot 0.
// Non-goals: sampling (runtime/sampler), scheduling requests onto slots (the server's job).
// Thread-safety: one eval/decode at a time per session.
#pragma once

#include "core/thread_pool.h"
#include "format/hf/config.h"
#include "format/tensor_store.h"
#include "kernel/kernel.h"
#include "model/batch.h"
#include "model/gpu_engine.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "runtime/language_model.h"
#include "runtime/tokenizer/tokenizer.h"

#include <memory>
#include <string>

namespace lowbit::runtime {

using model::parse_cache_type; // "f16" | "f32" | "q8_0" -> the KvCache row type

// Where the forward runs: the CPU engine (model::Transformer), the CUDA engine (kernel/cuda/engine: weights,
// KV cache and activations on one GPU), or CUDA when it can run this model here, else the CPU (with a log line).
enum class Device : uint8_t { kCpu, kCuda, kAuto };
const char* device_name(Device d); // "cpu" | "cuda" | "auto"
// "cpu" | "cuda" | "auto" (case-insensitive) -> Device; kUsage naming the choices otherwise.
Result<Device> parse_device(const std::string& name);

struct SessionOptions {
    int n_threads = 0;              // worker threads (<= 0: all cores); also the OpenBLAS thread count
    int64_t n_ctx = 0;              // KV cache positions (<= 0: min(max_position_embeddings, 4096), or 2048 if unknown)
    int64_t n_batch = 512;          // tokens per forward chunk (bounds activation memory for long prompts)
    int64_t n_seq = 1;              // KV cache slots (sequences decoded together)
    DType cache_type = DType::kF16; // KV cache rows: kF16 (default, as llama.cpp), kF32 (exact), kQ8_0
    kernel::Backend backend = kernel::Backend::kCpu; // CPU kernel table row (ref / cpu)
    Device device = Device::kCpu;
    int gpu_index = 0;          // CUDA device ordinal
    bool load_tokenizer = true; // a tokenizer that fails to load is a warning, not an error
};

class Session final : public LanguageModel {
  public:
    // `path`: an HF model directory or a .gguf file. Errors name the path: kIo (cannot open), kBadInput (not a
    // model, corrupt, missing/mis-shaped tensors), kUnsupported (architecture, dtype, rope scaling).
    static Result<std::unique_ptr<Session>> open(const std::string& path, const SessionOptions& options = {});
    // A session over weights already in a store (tests, tools, in-memory models). `tok` may be null.
    static Result<std::unique_ptr<Session>> from_store(std::shared_ptr<const format::TensorStore> store,
                                                       const format::ModelConfig& config, model::SourceFormat source,
                                                       const SessionOptions& options,
                                                       std::unique_ptr<tokenizer::Tokenizer> tok = nullptr);

    // LanguageModel.
    int64_t n_vocab() const override { return model_->config().vocab_size; }
    int64_t n_ctx() const override { return cache_.n_ctx(); }
    int64_t n_past() const override { return cache_.seq_len(0); } // slot 0's length
    void truncate(int64_t n_past) override;
    Status eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits) override;
    // The first non-finite weight (model::find_non_finite_weight), or "".
    std::string explain_non_finite() const override;

    // One step over several sequences: logits [batch.n_logits(), n_vocab] in batch order. kUsage when the batch
    // breaks a rule of model/batch.h. Slot 0's length is what eval()/n_past() use.
    Status decode(const model::Batch& batch, std::vector<float>& logits);
    int64_t n_seq() const { return cache_.n_seq(); }
    // Slot operations that keep the engine's rows in step (use these, not kv_cache(), from the server).
    // copy_prefix: kUsage when a slot is out of range or n > the source slot's length.
    Status copy_prefix(int64_t src, int64_t dst, int64_t n);
    void clear_slot(int64_t s) { cache_.clear(s); }
    void truncate_slot(int64_t s, int64_t n) { cache_.truncate(s, n); }
    // True when the forward runs on the CUDA engine; backend_label: "CUDA" or "CPU" (llama-bench's names) and
    // gpu_name the device's name (empty on the CPU).
    bool on_gpu() const { return gpu_ != nullptr; }
    std::string backend_label() const { return gpu_ ? "CUDA" : "CPU"; }
    std::string gpu_name() const { return gpu_ ? gpu_->device_name() : std::string(); }
    // Null when the model has no (loadable) tokenizer.
    const tokenizer::Tokenizer* tokenizer() const { return tokenizer_.get(); }
    const format::ModelConfig& config() const { return model_->config(); }
    const std::string& path() const { return path_; }
    // Tensor bytes and element count of the weights as the session holds them (llama-bench's model_size and
    // model_n_params; a quantized HF directory dequantized at load counts its dense bytes).
    uint64_t model_bytes() const { return model_bytes_; }
    int64_t n_params() const { return n_params_; }
    DType main_dtype() const { return main_dtype_; } // the weight dtype holding the most bytes
    // Calibration access (CPU sessions): the transformer (embed / run_layer / head), its cache and the pool. On
    // the CUDA engine the cache holds slot lengths only (its rows are on the device).
    model::Transformer& transformer() { return *model_; }
    model::KvCache& kv_cache() { return cache_; }
    ThreadPool& pool() { return *pool_; }

  private:
    Session() = default;
    static Result<std::unique_ptr<Session>> build(std::shared_ptr<const format::TensorStore> store,
                                                  const format::ModelConfig& config, model::SourceFormat source,
                                                  const SessionOptions& options);

    std::string path_;
    std::unique_ptr<model::Transformer> model_;
    std::unique_ptr<kernel::cuda::LlamaGpu> gpu_; // the CUDA engine, when the session runs on it
    model::KvCache cache_;
    std::unique_ptr<ThreadPool> pool_;
    std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
    int64_t n_batch_ = 512;
    uint64_t model_bytes_ = 0;
    int64_t n_params_ = 0;
    DType main_dtype_ = DType::kF32;
};

} // namespace lowbit::runtime
