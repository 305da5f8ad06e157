// SPDX-License-Identifier: MIT
// `lowbit imatrix` job: tokenize, evaluate chunk by chunk with a linear-input observer, write the GGUF imatrix.
#include "pipeline/imatrix/imatrix.h"

#include "core/file.h"
#include "core/progress.h"
#include "format/gguf/imatrix_file.h"
#include "pipeline/perplexity/perplexity.h"
#include "runtime/session.h"
#include "runtime/tokenizer/unicode.h"

#include <chrono>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <vector>

namespace lowbit::pipeline {
namespace {

// Σx² per column (double, summed over all chunks) and the tokens seen, for one weight.
struct Accumulator {
    std::vector<double> sum2;
    int64_t count = 0;
};

class Collector {
  public:
    explicit Collector(bool process_output) : process_output_(process_output) {}

    // x: [n_tokens, n_cols] f32, the input of `layer`'s linear `id` (layer -1: the LM head).
    void observe(int64_t layer, model::LinearId id, const float* x, int64_t n_tokens, int64_t n_cols) {
        if (layer < 0 && !process_output_) return; // llama-imatrix collects blk.* only by default
        const std::string name = layer < 0 ? std::string("output.weight")
                                           : fmt::format("blk.{}.{}.weight", layer, model::linear_gguf_name(id));
        std::lock_guard<std::mutex> lock(mutex_);
        Accumulator& a = acc_[name];
        if (a.sum2.empty()) a.sum2.assign(static_cast<size_t>(n_cols), 0.0);
        for (int64_t t = 0; t < n_tokens; ++t) {
            const float* row = x + t * n_cols;
            for (int64_t j = 0; j < n_cols; ++j) a.sum2[static_cast<size_t>(j)] += double(row[j]) * double(row[j]);
        }
        a.count += n_tokens;
    }

    std::map<std::string, gguf::ImatrixEntry> entries() const {
        std::map<std::string, gguf::ImatrixEntry> out;
        for (const auto& [name, a] : acc_) {
            gguf::ImatrixEntry e;
            e.in_sum2.assign(a.sum2.begin(), a.sum2.end());
            e.counts = {static_cast<float>(a.count)};
            out.emplace(name, std::move(e));
        }
        return out;
    }

  private:
    bool process_output_;
    std::mutex mutex_;
    std::map<std::string, Accumulator> acc_;
};

Result<std::string> read_text(const std::string& path) {
    LOWBIT_ASSIGN_OR_RETURN(std::string text, read_file_to_string(path));
    if (text.empty()) return make_error(ErrorCode::kBadInput, "text file '" + path + "' is empty");
    LOWBIT_TRY(tokenizer::check_utf8_text(text, "text file '" + path + "'"));
    return text;
}

} // namespace

Result<ImatrixReport> compute_imatrix(const ImatrixOptions& o) {
    if (o.n_ctx < 2) return make_error(ErrorCode::kUsage, fmt::format("-c/--ctx-size must be >= 2, got {}", o.n_ctx));
    if (o.n_batch < 1)
        return make_error(ErrorCode::kUsage, fmt::format("-b/--batch-size must be >= 1, got {}", o.n_batch));
    if (o.output.empty()) return make_error(ErrorCode::kUsage, "imatrix needs an output path (-o)");
    if (o.n_chunks == 0 || o.n_chunks < -1) // 0 chunks would end in "no linear-layer inputs", a misleading cause
        return make_error(
            ErrorCode::kUsage,
            fmt::format("--chunks must be at least 1 (or omitted for all the text has), got {}", o.n_chunks));
    const auto t0 = std::chrono::steady_clock::now();
    LOWBIT_ASSIGN_OR_RETURN(const std::string text, read_text(o.text_file));
    runtime::SessionOptions so;
    so.n_threads = o.n_threads;
    so.n_ctx = o.n_ctx;
    so.n_batch = o.n_batch;
    so.cache_type = DType::kF32; // statistics of exact activations (quantized outputs stay as they were)
    LOWBIT_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Session> session, runtime::Session::open(o.model, so));
    const tokenizer::Tokenizer* tok = session->tokenizer();
    if (!tok)
        return make_error(ErrorCode::kBadInput, o.model + ": the model has no usable tokenizer (tokenizer.json or "
                                                          "GGUF tokenizer metadata missing)");
    LOWBIT_TRY(check_eval_options(*session, o.n_ctx, o.n_batch));
    std::vector<int32_t> tokens = tok->encode(text, /*add_special=*/true, /*parse_special=*/false);
    ImatrixReport report;
    report.n_tokens = static_cast<int64_t>(tokens.size());
    if (report.n_tokens < 2 * o.n_ctx)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("text file '{}' tokenizes to {} tokens; a context of {} needs at least {} "
                                      "(2 * ctx, as llama-imatrix); use a longer text or a smaller -c",
                                      o.text_file, report.n_tokens, o.n_ctx, 2 * o.n_ctx));
    const int64_t n_max = report.n_tokens / o.n_ctx;
    report.n_chunks = o.n_chunks < 0 ? n_max : std::min(o.n_chunks, n_max);
    const int32_t bos = tok->add_bos() ? tok->bos_id() : -1;

    Collector collector(o.process_output);
    session->transformer().set_linear_observer(
        [&collector](int64_t layer, model::LinearId id, const float* x, int64_t n, int64_t n_cols) {
            collector.observe(layer, id, x, n, n_cols);
        });
    ProgressBar bar("imatrix", report.n_chunks, o.progress && ProgressBar::stderr_is_terminal());
    std::vector<int32_t> chunk(static_cast<size_t>(o.n_ctx));
    Status st = ok_status();
    for (int64_t c = 0; c < report.n_chunks && st.ok(); ++c) {
        std::copy_n(tokens.begin() + c * o.n_ctx, o.n_ctx, chunk.begin());
        if (bos >= 0) chunk[0] = bos;
        st = eval_in_batches(*session, chunk, o.n_batch, [](int64_t, std::span<const float>) { return ok_status(); });
        bar.tick();
    }
    session->transformer().set_linear_observer({});
    LOWBIT_TRY(st);
    bar.finish();

    gguf::ImatrixData data;
    data.datasets = {o.text_file};
    data.chunk_count = report.n_chunks;
    data.chunk_size = o.n_ctx;
    data.entries = collector.entries();
    report.n_entries = static_cast<int64_t>(data.entries.size());
    if (data.entries.empty())
        return make_error(ErrorCode::kInternal, "imatrix: the model reported no linear-layer inputs");
    LOWBIT_TRY(gguf::write_imatrix(o.output, data));
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return report;
}

} // namespace lowbit::pipeline
