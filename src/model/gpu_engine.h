// SPDX-License-Identifier: MIT
// The CUDA engine seen from the model room: describes a bound Transformer (weights as mmap views, dims, RoPE)
// to kernel::cuda::LlamaGpu, which uploads it. The engine then runs the same contract as Transformer::forward
// (a Batch over a KvCache's slots) with its rows on the device; the caller keeps the host KvCache for the slot
// lengths (KvCacheOptions::host_rows = false) and validates batches with Transformer::validate_batch.
#pragma once

#include "core/error.h"
#include "kernel/cuda/engine/llama_gpu.h"
#include "model/batch.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

#include <memory>

namespace lowbit::model {

// kUnsupported naming the first weight whose type has no CUDA kernel (HF packed 4-bit layouts, LLM.int8, ...).
Result<std::unique_ptr<kernel::cuda::LlamaGpu>> make_gpu_engine(const Transformer& model,
                                                                const kernel::cuda::GpuEngineOptions& options);

// One step of `batch` on the engine (logits [batch.n_logits(), n_vocab]); then each slot's length in `cache` is
// its last position + 1, as Transformer::forward leaves it. Precondition: validate_batch(batch, cache) is ok.
Status gpu_forward(kernel::cuda::LlamaGpu& engine, const Batch& batch, KvCache& cache, float* logits);

} // namespace lowbit::model
