// SPDX-License-Identifier: MIT
// `lowbit perplexity -m MODEL -f TEXT [-c 512] [--chunks N] [-b N] [--stride S] [--json]
//                    [--kl-divergence-base FILE [--kl-divergence]]`
// Perplexity with llama.cpp's llama-perplexity protocol (default) or Hugging Face's strided protocol (--stride),
// see pipeline/perplexity/perplexity.h. Output on stdout: "[1]12.3456,[2]..." as chunks finish, then
// "Final estimate: PPL = x +/- y"; with --json only one JSON object. A progress bar goes to stderr on a terminal.
// KL divergence, as llama.cpp: with --kl-divergence-base FILE alone, the run also stores the model's
// log-probabilities (and the token stream) in FILE; with --kl-divergence too, it reads FILE instead and
// compares this model against it (-f is then optional: when given, its tokens must match the stored ones).
// Errors: empty text or fewer than 2*ctx tokens: exit 3; text that is not UTF-8: exit 3; bad flags: exit 2.
#include "cli/commands.h"
#include "core/file.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "pipeline/perplexity/kl_divergence.h"
#include "pipeline/perplexity/perplexity.h"
#include "runtime/session.h"
#include "runtime/tokenizer/unicode.h"

#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <string>

namespace lowbit::cli {
namespace {

struct PerplexityArgs {
    std::string model, file, kld_base;
    int64_t n_ctx = 512, n_batch = 512, n_chunks = -1, stride = 0;
    int n_threads = 0;
    std::string cache_type;
    DeviceArgs device;
    bool json = false, kld = false;
};

void out(const std::string& s) {
    std::fputs(s.c_str(), stdout);
    std::fflush(stdout);
}

Result<std::string> read_text(const std::string& path) {
    LOWBIT_ASSIGN_OR_RETURN(std::string text, read_file_to_string(path));
    if (text.empty()) return make_error(ErrorCode::kBadInput, "text file '" + path + "' is empty (nothing to score)");
    LOWBIT_TRY(tokenizer::check_utf8_text(text, "text file '" + path + "'"));
    return text;
}

struct Loaded {
    std::unique_ptr<runtime::Session> session;
    const tokenizer::Tokenizer* tok = nullptr;
    int32_t bos_id = -1; // written over each chunk's first token (when the vocabulary adds BOS)
};

Result<Loaded> load(const PerplexityArgs& a, int64_t n_ctx) {
    ThreadPool::set_default_threads(a.n_threads);
    runtime::SessionOptions so;
    so.n_threads = a.n_threads;
    so.n_ctx = n_ctx;
    so.n_batch = a.n_batch;
    LOWBIT_ASSIGN_OR_RETURN(so.cache_type, cache_type_of(a.cache_type));
    LOWBIT_ASSIGN_OR_RETURN(so.device, device_of(a.device));
    Loaded l;
    LOWBIT_ASSIGN_OR_RETURN(l.session, runtime::Session::open(a.model, so));
    l.tok = l.session->tokenizer();
    if (const int64_t n_train = l.session->config().max_position_embeddings;
        n_train > 0 && l.session->n_ctx() > n_train)
        log_warn("context {} is larger than the {} positions the model was trained on; expect worse results",
                 l.session->n_ctx(), n_train);
    if (!l.tok)
        return make_error(ErrorCode::kBadInput, a.model + ": the model has no usable tokenizer (tokenizer.json or "
                                                          "GGUF tokenizer metadata missing)");
    l.bos_id = l.tok->add_bos() ? l.tok->bos_id() : -1;
    return l;
}

Result<std::vector<int32_t>> tokenize_file(const tokenizer::Tokenizer& tok, const std::string& path) {
    LOWBIT_ASSIGN_OR_RETURN(const std::string text, read_text(path));
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<int32_t> tokens = tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
    std::fprintf(stderr, "tokenized %zu bytes into %zu tokens in %.0f ms\n", text.size(), tokens.size(),
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    return tokens;
}

Status run_ppl(const PerplexityArgs& a) {
    if (a.file.empty()) return make_error(ErrorCode::kUsage, "perplexity needs -f TEXT");
    if (a.n_ctx < 3) return make_error(ErrorCode::kUsage, "-c/--ctx-size must be >= 3, got " + std::to_string(a.n_ctx));
    if (a.stride > 0 && !a.kld_base.empty())
        return make_error(ErrorCode::kUsage, "--kl-divergence-base uses the chunked protocol; drop --stride");
    LOWBIT_ASSIGN_OR_RETURN(Loaded l, load(a, a.n_ctx));
    LOWBIT_ASSIGN_OR_RETURN(const std::vector<int32_t> tokens, tokenize_file(*l.tok, a.file));
    pipeline::PerplexityOptions o;
    o.n_ctx = a.n_ctx;
    o.n_batch = a.n_batch;
    o.n_chunks = a.n_chunks;
    o.stride = a.stride;
    o.bos_id = l.bos_id;
    std::unique_ptr<pipeline::LogProbWriter> writer;
    const int64_t n_total =
        std::min(pipeline::count_chunks(int64_t(tokens.size()), o), a.n_chunks >= 0 ? a.n_chunks : INT64_MAX);
    if (!a.kld_base.empty() && n_total >= 1 && int64_t(tokens.size()) >= 2 * a.n_ctx) {
        pipeline::LogProbFileHeader h;
        h.n_ctx = a.n_ctx;
        h.n_vocab = l.session->n_vocab();
        h.n_chunk = n_total;
        h.bos_id = l.bos_id;
        LOWBIT_ASSIGN_OR_RETURN(
            writer, pipeline::LogProbWriter::create(a.kld_base, h,
                                                    std::span<const int32_t>(tokens).first(size_t(n_total * a.n_ctx))));
    }
    ProgressBar bar("perplexity", std::max<int64_t>(n_total, 0));
    auto on_chunk = [&](const pipeline::ChunkReport& c) {
        if (!a.json) out(fmt::format("[{}]{:.4f},", c.index + 1, c.running_ppl));
        bar.set_suffix(fmt::format(" PPL {:.4f}", c.running_ppl));
        bar.tick();
    };
    LOWBIT_ASSIGN_OR_RETURN(const auto r, pipeline::compute_perplexity(*l.session, tokens, o, on_chunk, writer.get()));
    bar.finish();
    if (writer) {
        LOWBIT_TRY(writer->commit());
        std::fprintf(stderr, "saved log-probabilities of %lld chunks to %s\n", static_cast<long long>(r.n_chunks),
                     a.kld_base.c_str());
    }
    if (a.json) {
        nlohmann::json j = {{"ppl", r.ppl},           {"stderr", r.ppl_stderr},
                            {"n_tokens", r.n_scored}, {"n_text_tokens", r.n_tokens},
                            {"n_chunks", r.n_chunks}, {"ctx", r.n_ctx},
                            {"stride", r.stride},     {"protocol", r.stride > 0 ? "stride" : "chunks"},
                            {"seconds", r.seconds}};
        out(j.dump(2) + "\n");
    } else {
        out(fmt::format("\nFinal estimate: PPL = {:.4f} +/- {:.5f}\n", r.ppl, r.ppl_stderr));
    }
    std::fprintf(stderr, "scored %lld tokens in %lld chunks of %lld in %.2f s\n", static_cast<long long>(r.n_scored),
                 static_cast<long long>(r.n_chunks), static_cast<long long>(r.n_ctx), r.seconds);
    return ok_status();
}

std::string pm(const pipeline::ValueWithError& v, const char* f) {
    return fmt::format(fmt::runtime(f), v.value, v.error);
}

std::string kld_report(const pipeline::KldSummary& s) {
    std::string t;
    t += "====== Perplexity statistics ======\n";
    t += "Mean PPL(Q)                   : " + pm(s.ppl, "{:10.6f} ± {:10.6f}") + "\n";
    t += "Mean PPL(base)                : " + pm(s.ppl_base, "{:10.6f} ± {:10.6f}") + "\n";
    t += fmt::format("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2f}%\n", 100.0 * s.cor_ln_ppl);
    t += "Mean ln(PPL(Q)/PPL(base))     : " + pm(s.ln_ppl_ratio, "{:10.6f} ± {:10.6f}") + "\n";
    t += "Mean PPL(Q)/PPL(base)         : " + pm(s.ppl_ratio, "{:10.6f} ± {:10.6f}") + "\n";
    t += "Mean PPL(Q)-PPL(base)         : " + pm(s.ppl_diff, "{:10.6f} ± {:10.6f}") + "\n\n";
    const auto& k = s.kld_quantiles;
    t += "====== KL divergence statistics ======\n";
    t += "Mean    KLD: " + pm(s.kld, "{:10.6f} ± {:10.6f}") + "\n";
    t += fmt::format("Maximum KLD: {:10.6f}\n99.9%   KLD: {:10.6f}\n99.0%   KLD: {:10.6f}\n95.0%   KLD: {:10.6f}\n"
                     "90.0%   KLD: {:10.6f}\nMedian  KLD: {:10.6f}\n10.0%   KLD: {:10.6f}\n 5.0%   KLD: {:10.6f}\n"
                     " 1.0%   KLD: {:10.6f}\n 0.1%   KLD: {:10.6f}\nMinimum KLD: {:10.6f}\n\n",
                     k.max, k.p999, k.p99, k.p95, k.p90, k.median, k.p10, k.p5, k.p1, k.p01, k.min);
    const auto& d = s.p_diff_quantiles;
    t += "====== Token probability statistics ======\n";
    t += fmt::format("Mean    Δp: {:6.3f} ± {:5.3f} %\n", 100 * s.p_diff.value, 100 * s.p_diff.error);
    t += fmt::format("Maximum Δp: {:6.3f}%\n99.9%   Δp: {:6.3f}%\n99.0%   Δp: {:6.3f}%\n95.0%   Δp: {:6.3f}%\n"
                     "90.0%   Δp: {:6.3f}%\n75.0%   Δp: {:6.3f}%\nMedian  Δp: {:6.3f}%\n25.0%   Δp: {:6.3f}%\n"
                     "10.0%   Δp: {:6.3f}%\n 5.0%   Δp: {:6.3f}%\n 1.0%   Δp: {:6.3f}%\n 0.1%   Δp: {:6.3f}%\n"
                     "Minimum Δp: {:6.3f}%\n",
                     100 * d.max, 100 * d.p999, 100 * d.p99, 100 * d.p95, 100 * d.p90, 100 * d.p75, 100 * d.median,
                     100 * d.p25, 100 * d.p10, 100 * d.p5, 100 * d.p1, 100 * d.p01, 100 * d.min);
    t += fmt::format("RMS Δp    : {:6.3f} ± {:5.3f} %\n", 100 * s.p_diff_rms.value, 100 * s.p_diff_rms.error);
    t += fmt::format("Same top p: {:6.3f} ± {:5.3f} %\n", 100 * s.same_top.value, 100 * s.same_top.error);
    return t;
}

nlohmann::json ve(const pipeline::ValueWithError& v, double scale = 1) {
    return {{"value", scale * v.value}, {"error", scale * v.error}};
}

nlohmann::json quantiles_json(const pipeline::Quantiles& q, double scale) {
    return {{"max", scale * q.max}, {"p99.9", scale * q.p999}, {"p99", scale * q.p99},       {"p95", scale * q.p95},
            {"p90", scale * q.p90}, {"p75", scale * q.p75},    {"median", scale * q.median}, {"p25", scale * q.p25},
            {"p10", scale * q.p10}, {"p5", scale * q.p5},      {"p1", scale * q.p1},         {"p0.1", scale * q.p01},
            {"min", scale * q.min}};
}

Status run_kld(const PerplexityArgs& a, bool ctx_given) {
    if (a.kld_base.empty())
        return make_error(ErrorCode::kUsage, "--kl-divergence needs --kl-divergence-base FILE (written by a run of "
                                             "'lowbit perplexity --kl-divergence-base FILE' on the base model)");
    if (a.stride > 0) return make_error(ErrorCode::kUsage, "--kl-divergence uses the chunked protocol; drop --stride");
    LOWBIT_ASSIGN_OR_RETURN(const auto base, pipeline::LogProbReader::open(a.kld_base));
    const auto& h = base.header();
    if (ctx_given && a.n_ctx != h.n_ctx)
        return make_error(ErrorCode::kUsage, fmt::format("-c {} differs from the context {} stored in '{}' (omit -c)",
                                                         a.n_ctx, h.n_ctx, a.kld_base));
    LOWBIT_ASSIGN_OR_RETURN(Loaded l, load(a, h.n_ctx));
    if (!a.file.empty()) {
        LOWBIT_ASSIGN_OR_RETURN(const std::vector<int32_t> tokens, tokenize_file(*l.tok, a.file));
        LOWBIT_TRY(pipeline::check_base_tokens(base, tokens));
    }
    pipeline::KldOptions o;
    o.n_batch = a.n_batch;
    o.n_chunks = a.n_chunks;
    o.bos_id = l.bos_id;
    const int64_t n_total = a.n_chunks >= 0 ? std::min(a.n_chunks, h.n_chunk) : h.n_chunk;
    ProgressBar bar("kl-divergence", n_total);
    if (!a.json)
        out("chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS"
            "            Same top p\n");
    auto on_chunk = [&](const pipeline::KldChunkReport& c) {
        const auto& s = c.running;
        if (!a.json)
            out(fmt::format("{:4d}    {:9.4f} ± {:9.4f}    {:10.5f} ± {:10.5f}    {:10.5f} ± {:10.5f}    {:6.3f} ± "
                            "{:6.3f} %    {:6.3f} ± {:6.3f} %\n",
                            c.index + 1, s.ppl.value, s.ppl.error, s.ln_ppl_ratio.value, s.ln_ppl_ratio.error,
                            s.kld.value, s.kld.error, 100 * s.p_diff_rms.value, 100 * s.p_diff_rms.error,
                            100 * s.same_top.value, 100 * s.same_top.error));
        bar.set_suffix(fmt::format(" KLD {:.5f}", s.kld.value));
        bar.tick();
    };
    LOWBIT_ASSIGN_OR_RETURN(const auto r, pipeline::compute_kl_divergence(*l.session, base, o, on_chunk));
    bar.finish();
    const auto& s = r.summary;
    if (a.json) {
        nlohmann::json j = {{"ppl", ve(s.ppl)},
                            {"ppl_base", ve(s.ppl_base)},
                            {"cor_ln_ppl", s.cor_ln_ppl},
                            {"ln_ppl_ratio", ve(s.ln_ppl_ratio)},
                            {"ppl_ratio", ve(s.ppl_ratio)},
                            {"ppl_diff", ve(s.ppl_diff)},
                            {"kld", ve(s.kld)},
                            {"kld_quantiles", quantiles_json(s.kld_quantiles, 1)},
                            {"delta_p_pct", ve(s.p_diff, 100)},
                            {"delta_p_quantiles_pct", quantiles_json(s.p_diff_quantiles, 100)},
                            {"rms_delta_p_pct", ve(s.p_diff_rms, 100)},
                            {"same_top_p_pct", ve(s.same_top, 100)},
                            {"n_tokens", s.n_tokens},
                            {"n_chunks", r.n_chunks},
                            {"ctx", r.n_ctx},
                            {"seconds", r.seconds}};
        out(j.dump(2) + "\n");
    } else {
        if (s.n_tokens < 100)
            std::fprintf(stderr, "warning: only %lld scored tokens; llama.cpp prints no statistics below 100\n",
                         static_cast<long long>(s.n_tokens));
        out("\n" + kld_report(s));
    }
    return ok_status();
}

} // namespace

CommandAction setup_perplexity(CLI::App& sub) {
    auto a = std::make_shared<PerplexityArgs>();
    sub.add_option("-m,--model", a->model, "Hugging Face model folder or .gguf file")->required();
    sub.add_option("-f,--file", a->file, "Text file to score (e.g. wikitext-2 wiki.test.raw)");
    CLI::Option* ctx =
        sub.add_option("-c,--ctx-size", a->n_ctx, "Tokens per chunk (window with --stride)")->capture_default_str();
    sub.add_option("--chunks", a->n_chunks, "Score at most this many chunks (-1: all)")
        ->capture_default_str()
        ->check(CLI::Range(int64_t(-1), int64_t(1) << 40));
    sub.add_option("-b,--batch-size", a->n_batch, "Tokens per forward pass")
        ->capture_default_str()
        ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
    sub.add_option("--stride", a->stride,
                   "Hugging Face sliding-window protocol: windows of -c tokens every S tokens (0: llama.cpp chunks)")
        ->capture_default_str()
        ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
    sub.add_flag("--json", a->json, "Print one JSON summary object on stdout instead of the text report");
    sub.add_option("--kl-divergence-base", a->kld_base,
                   "File of base-model log-probabilities: written by a plain run, read with --kl-divergence");
    sub.add_flag("--kl-divergence", a->kld, "Compare this model with --kl-divergence-base FILE (KLD, top-1, Δp)");
    add_threads_flag(sub, a->n_threads);
    add_cache_type_flag(sub, a->cache_type);
    add_device_flag(sub, a->device);
    return [a, ctx] { return a->kld ? run_kld(*a, ctx->count() > 0) : run_ppl(*a); };
}

} // namespace lowbit::cli
