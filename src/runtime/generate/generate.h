// SPDX-License-Identifier: MIT
// Generation loop: prompt tokens -> prefill in batches -> sample/decode one token at a time until n_predict
// tokens, an end-of-generation token or a full context; text is streamed through the tokenizer's
// Detokenizer so every callback receives complete UTF-8. Timings follow llama.cpp's llama_perf_context_print.
// Non-goals: several sequences, chat templates, stop strings.
#pragma once

#include "core/error.h"
#include "runtime/language_model.h"
#include "runtime/sampler/sampler.h"
#include "runtime/tokenizer/tokenizer.h"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::runtime {

struct GenerateOptions {
    int64_t n_predict = -1; // tokens to generate; < 0: until EOG or the context is full; 0: prompt only
    int64_t n_batch = 512;  // prompt tokens per eval call
};

enum class StopReason { kPromptOnly, kLength, kEndOfGeneration, kContextFull };
const char* stop_reason_name(StopReason reason);

struct GenerateTimings {
    double prompt_ms = 0; // prefill (all prompt eval calls)
    int64_t n_prompt_tokens = 0;
    double eval_ms = 0; // decode eval calls of generated tokens
    int64_t n_eval = 0; // generated tokens fed back through the model
    double sample_ms = 0;
    int64_t n_sampled = 0; // tokens drawn (including a final EOG)
};

struct GenerateResult {
    std::vector<int32_t> tokens; // generated ids (an EOG that stopped generation is not included)
    std::string text;            // their text (as streamed)
    StopReason stop = StopReason::kPromptOnly;
    GenerateTimings timings;
};

using PieceCallback = std::function<void(std::string_view)>;

// Tokenizes a prompt: BOS (and EOS) as the vocabulary says unless add_special is false; special-token text
// such as "<|eot_id|>" is parsed into its id.
std::vector<int32_t> tokenize_prompt(const tokenizer::Tokenizer& tok, std::string_view text, bool add_special);

// Errors: kUsage when the prompt is empty or longer than model.n_ctx() (message gives both numbers) or
// n_batch < 1; kBadInput when the logits to sample from hold a NaN or +Inf (or no finite value): nothing can be
// sampled, and the message names the cause (model.explain_non_finite(): the first non-finite weight, else
// activations that overflowed); whatever model.eval returns. The sampler's history is reset, then fed the prompt tokens
// (repeat-penalty history); its RNG state carries on.
Result<GenerateResult> generate(LanguageModel& model, const tokenizer::Tokenizer& tok, std::span<const int32_t> prompt,
                                Sampler& sampler, const GenerateOptions& options, const PieceCallback& on_piece = {});

// llama.cpp-style timing lines ("prompt eval time = X ms / N tokens (Y ms per token, Z tokens per second)").
std::string format_timings(const GenerateTimings& t, double load_ms);

} // namespace lowbit::runtime
