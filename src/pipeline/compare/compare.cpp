// SPDX-License-Identifier: MIT
// `lowbit compare` (see compare.h): quantize / KLD / bench jobs in one process, a result cache, report + SVG.
#include "pipeline/compare/compare.h"

#include "core/file.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "pipeline/bench/bench.h"
#include "pipeline/imatrix/imatrix.h"
#include "pipeline/perplexity/kl_divergence.h"
#include "pipeline/perplexity/logprob_file.h"
#include "pipeline/perplexity/perplexity.h"
#include "runtime/session.h"
#include "runtime/tokenizer/unicode.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>

namespace lowbit::pipeline {
namespace {

namespace fs = std::filesystem;

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// HF-style shorthands: name -> (method, bits, group size, calibrated).
struct HfAlias {
    const char* name;
    const char* method;
    int bits;
    int64_t group;
    bool calibrated;
};
constexpr HfAlias kHfAliases[] = {
    {"nf4", "nf4", 0, 0, false},     {"fp4", "fp4", 0, 0, false},    {"int8", "int8", 0, 0, false},
    {"rtn4", "rtn", 4, 128, false},  {"rtn3", "rtn", 3, 128, false}, {"hqq4", "hqq", 4, 64, false},
    {"hqq3", "hqq", 3, 64, false},   {"hqq2", "hqq", 2, 64, false},  {"gptq4", "gptq", 4, 128, true},
    {"gptq3", "gptq", 3, 128, true}, {"awq4", "awq", 4, 128, true},
};

std::string known_names() {
    std::string s;
    for (const std::string& m : quantize_method_names())
        if (is_gguf_method(m) && m != "mix") s += m + ", ";
    s += "any of those with +imatrix, ";
    for (const HfAlias& a : kHfAliases) s += std::string(a.name) + ", ";
    return s + "mix@BPW (e.g. mix@4.5), mix@METHOD (mix at another listed method's file size), mixgptq@BPW, "
               "mixgptq@METHOD (the same mixes with --gptq; need --calib)";
}

std::string slug(const std::string& name) {
    std::string s;
    for (char c : name)
        s += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '+' || c == '@')
                 ? c
                 : '_';
    return s;
}

Result<std::string> read_text(const std::string& path) {
    LOWBIT_ASSIGN_OR_RETURN(std::string text, read_file_to_string(path));
    if (text.empty()) return make_error(ErrorCode::kBadInput, "text file '" + path + "' is empty (nothing to score)");
    if (tokenizer::utf8_first_invalid(text) != std::string::npos)
        return make_error(ErrorCode::kBadInput, "text file '" + path + "' is not valid UTF-8");
    return text;
}

Status write_text(const std::string& path, const std::string& text) {
    LOWBIT_ASSIGN_OR_RETURN(auto w, AtomicWriter::create(path));
    LOWBIT_TRY(w->write(text));
    return w->commit();
}

uint64_t path_bytes(const std::string& p) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return fs::file_size(p, ec);
    uint64_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(p, ec))
        if (e.is_regular_file(ec)) n += e.file_size(ec);
    return n;
}

nlohmann::json row_json(const CompareRow& r) {
    return {{"method", r.method},   {"file_bytes", r.file_bytes},     {"file_mib", r.file_mib},     {"bpw", r.bpw},
            {"ppl", r.ppl},         {"ppl_err", r.ppl_err},           {"dppl_pct", r.dppl_pct},     {"kld", r.kld},
            {"kld_err", r.kld_err}, {"same_top_pct", r.same_top_pct}, {"quantize_s", r.quantize_s}, {"tg_ts", r.tg_ts},
            {"is_mix", r.is_mix}};
}

CompareRow row_from_json(const nlohmann::json& j) {
    CompareRow r;
    r.method = j.value("method", "");
    r.file_bytes = j.value("file_bytes", uint64_t{0});
    r.file_mib = j.value("file_mib", 0.0);
    r.bpw = j.value("bpw", 0.0);
    r.ppl = j.value("ppl", 0.0);
    r.ppl_err = j.value("ppl_err", 0.0);
    r.dppl_pct = j.value("dppl_pct", 0.0);
    r.kld = j.value("kld", 0.0);
    r.kld_err = j.value("kld_err", 0.0);
    r.same_top_pct = j.value("same_top_pct", 0.0);
    r.quantize_s = j.value("quantize_s", 0.0);
    r.tg_ts = j.value("tg_ts", 0.0);
    r.is_mix = j.value("is_mix", false);
    return r;
}

runtime::SessionOptions session_options(const CompareOptions& o) {
    runtime::SessionOptions so;
    so.n_threads = o.n_threads;
    so.n_ctx = o.n_ctx;
    so.n_batch = 512;
    return so;
}

// The source model's log-probs (DIR/base.kld) and PPL (DIR/base.json), computed once.
Result<double> ensure_base(const CompareOptions& o, const std::string& base_path, int64_t& n_tokens) {
    const std::string meta = o.out_dir + "/base.json";
    if (fs::exists(base_path) && fs::exists(meta)) {
        auto reader = LogProbReader::open(base_path);
        auto text = read_file_to_string(meta);
        if (reader.ok() && text.ok()) {
            const auto j = nlohmann::json::parse(*text, nullptr, false);
            if (!j.is_discarded() && reader->header().n_ctx == o.n_ctx && reader->header().n_chunk == o.n_chunks &&
                j.value("model", "") == o.model && j.value("eval_file", "") == o.eval_file) {
                n_tokens = j.value("n_scored", int64_t{0});
                return j.value("ppl", 0.0);
            }
        }
        log_warn("compare: '{}' was made with other settings; recomputing it", base_path);
    }
    LOWBIT_ASSIGN_OR_RETURN(auto session, runtime::Session::open(o.model, session_options(o)));
    const tokenizer::Tokenizer* tok = session->tokenizer();
    if (!tok) return make_error(ErrorCode::kBadInput, o.model + ": the model has no usable tokenizer");
    LOWBIT_ASSIGN_OR_RETURN(const std::string text, read_text(o.eval_file));
    const std::vector<int32_t> tokens = tok->encode(text, true, false);
    PerplexityOptions po;
    po.n_ctx = o.n_ctx;
    po.n_chunks = o.n_chunks;
    po.bos_id = tok->add_bos() ? tok->bos_id() : -1;
    const int64_t n_total = std::min(count_chunks(int64_t(tokens.size()), po), o.n_chunks);
    if (n_total < o.n_chunks)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("'{}' has {} chunks of {} tokens, --chunks asks for {}", o.eval_file,
                                      std::max<int64_t>(n_total, 0), o.n_ctx, o.n_chunks));
    LogProbFileHeader h;
    h.n_ctx = o.n_ctx;
    h.n_vocab = session->n_vocab();
    h.n_chunk = n_total;
    h.bos_id = po.bos_id;
    LOWBIT_ASSIGN_OR_RETURN(
        auto writer,
        LogProbWriter::create(base_path, h, std::span<const int32_t>(tokens).first(size_t(n_total * o.n_ctx))));
    LOWBIT_ASSIGN_OR_RETURN(const PerplexityResult r, compute_perplexity(*session, tokens, po, {}, writer.get()));
    LOWBIT_TRY(writer->commit());
    n_tokens = r.n_scored;
    const nlohmann::json j = {{"model", o.model},        {"eval_file", o.eval_file}, {"ppl", r.ppl},
                              {"ppl_err", r.ppl_stderr}, {"n_scored", r.n_scored},   {"seconds", r.seconds}};
    LOWBIT_TRY(write_text(meta, j.dump(1)));
    return r.ppl;
}

} // namespace

Result<std::vector<CompareMethod>> parse_compare_methods(const std::vector<std::string>& names,
                                                         const CompareOptions& o) {
    if (names.empty()) return make_error(ErrorCode::kUsage, "compare needs --methods m1,m2,...");
    std::vector<CompareMethod> out;
    const bool have_imatrix = !o.imatrix.empty() || !o.calib.empty();
    for (const std::string& given : names) {
        CompareMethod m;
        m.name = lower(given);
        for (const CompareMethod& prev : out)
            if (prev.name == m.name) return make_error(ErrorCode::kUsage, "--methods lists '" + m.name + "' twice");
        QuantizeJobOptions& q = m.quantize;
        const bool gptq_mix = m.name.rfind("mixgptq@", 0) == 0;
        if (m.name.rfind("mix@", 0) == 0 || gptq_mix) {
            const std::string target = m.name.substr(m.name.find('@') + 1);
            m.is_mix = true;
            m.needs_imatrix = true;
            q.method = "mix";
            if (gptq_mix) { // GPTQ onto each chosen grid: calibration samples as gptq4's
                if (o.calib.empty())
                    return make_error(ErrorCode::kUsage, "'" + given + "' needs calibration text: --calib FILE");
                q.mix_gptq = true;
                q.calib = o.calib;
                q.n_samples = 32;
                q.seqlen = 512;
            }
            size_t pos = 0;
            double bpw = 0;
            try {
                bpw = std::stod(target, &pos);
            } catch (...) {
                pos = 0;
            }
            if (pos > 0 && pos == target.size()) {
                if (!(bpw > 0)) return make_error(ErrorCode::kUsage, "'" + given + "': the bpw must be positive");
                q.target_bpw = bpw;
            } else {
                if (std::find(names.begin(), names.end(), target) == names.end() &&
                    std::none_of(names.begin(), names.end(), [&](const std::string& n) { return lower(n) == target; }))
                    return make_error(ErrorCode::kUsage, "'" + given + "': mix@METHOD needs METHOD ('" + target +
                                                             "') in --methods too (its file size is the target)");
                if (target.rfind("mix@", 0) == 0 || target.rfind("mixgptq@", 0) == 0)
                    return make_error(ErrorCode::kUsage, "'" + given + "': the size must come from a non-mix method");
                m.size_of = target;
            }
        } else {
            std::string base = m.name;
            const std::string suffix = "+imatrix";
            if (base.size() > suffix.size() && base.substr(base.size() - suffix.size()) == suffix) {
                base.resize(base.size() - suffix.size());
                m.needs_imatrix = true;
            }
            const HfAlias* alias = nullptr;
            for (const HfAlias& a : kHfAliases)
                if (base == a.name) alias = &a;
            if (alias) {
                if (m.needs_imatrix)
                    return make_error(ErrorCode::kUsage, "'" + given + "': +imatrix applies to GGUF methods only");
                q.method = alias->method;
                if (alias->bits) q.bits = alias->bits;
                if (alias->group && q.method != "awq") q.group_size = alias->group;
                if (alias->calibrated) {
                    if (o.calib.empty())
                        return make_error(ErrorCode::kUsage, "'" + given + "' needs calibration text: --calib FILE");
                    q.calib = o.calib;
                    q.n_samples = 32;
                    q.seqlen = 512;
                }
            } else if (is_gguf_method(base) && base != "mix") {
                q.method = base;
            } else {
                return make_error(ErrorCode::kUsage, "unknown method '" + given + "' (known: " + known_names() + ")");
            }
        }
        if (m.needs_imatrix && !have_imatrix)
            return make_error(ErrorCode::kUsage, "'" + given +
                                                     "' needs an importance matrix: --imatrix FILE or --calib FILE "
                                                     "(computed once)");
        out.push_back(std::move(m));
    }
    return out;
}

std::vector<CompareMethod> order_compare_methods(std::vector<CompareMethod> methods) {
    std::vector<CompareMethod> ordered, waiting;
    for (CompareMethod& m : methods) {
        const bool target_done =
            std::any_of(ordered.begin(), ordered.end(), [&](const CompareMethod& d) { return d.name == m.size_of; });
        if (!m.size_of.empty() && !target_done) {
            waiting.push_back(std::move(m));
            continue;
        }
        ordered.push_back(std::move(m));
        const std::string done = ordered.back().name;
        for (auto it = waiting.begin(); it != waiting.end();) {
            if (it->size_of == done) {
                ordered.push_back(std::move(*it));
                it = waiting.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (CompareMethod& m : waiting) ordered.push_back(std::move(m)); // a target not listed: parse refuses it
    return ordered;
}

std::vector<size_t> pareto_front(const std::vector<CompareRow>& rows) {
    std::vector<size_t> idx(rows.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
        return rows[a].bpw != rows[b].bpw ? rows[a].bpw < rows[b].bpw : rows[a].kld < rows[b].kld;
    });
    std::vector<size_t> front;
    double best = INFINITY;
    for (size_t i : idx)
        if (rows[i].kld < best) {
            front.push_back(i);
            best = rows[i].kld;
        }
    return front;
}

Result<CompareReport> run_compare(const CompareOptions& o) {
    if (o.model.empty()) return make_error(ErrorCode::kUsage, "compare needs a model (-m)");
    if (o.eval_file.empty()) return make_error(ErrorCode::kUsage, "compare needs an eval text (-f)");
    if (o.out_dir.empty()) return make_error(ErrorCode::kUsage, "compare needs an output directory (-o)");
    if (o.n_chunks < 1) return make_error(ErrorCode::kUsage, "--chunks must be >= 1");
    LOWBIT_ASSIGN_OR_RETURN(std::vector<CompareMethod> methods, parse_compare_methods(o.methods, o));
    // Inputs exist before any work starts.
    for (const std::string& p : {o.model, o.eval_file, o.calib, o.imatrix, o.mix_sensitivity})
        if (!p.empty() && !fs::exists(p)) return make_error(ErrorCode::kIo, "compare: '" + p + "' does not exist");
    std::error_code ec;
    fs::create_directories(o.out_dir + "/results", ec);
    fs::create_directories(o.out_dir + "/models", ec);
    if (ec) return make_error(ErrorCode::kIo, "cannot create '" + o.out_dir + "': " + ec.message());
    ThreadPool::set_default_threads(o.n_threads);

    methods = order_compare_methods(std::move(methods));
    const bool need_imatrix = std::any_of(methods.begin(), methods.end(), [](auto& m) { return m.needs_imatrix; });
    ProgressBar bar("compare", 1 + int64_t(need_imatrix) + 3 * int64_t(methods.size()), o.progress);
    CompareReport report;
    report.n_chunks = o.n_chunks;
    report.n_ctx = o.n_ctx;
    const std::string base_path = o.out_dir + "/base.kld";
    bar.set_suffix("source log-probs");
    LOWBIT_ASSIGN_OR_RETURN(report.base_ppl, ensure_base(o, base_path, report.n_tokens));
    bar.tick();
    std::string imatrix = o.imatrix;
    if (need_imatrix) {
        if (imatrix.empty()) {
            imatrix = o.out_dir + "/imatrix.gguf";
            if (!fs::exists(imatrix)) {
                bar.set_suffix("imatrix");
                ImatrixOptions io;
                io.model = o.model;
                io.text_file = o.calib;
                io.output = imatrix;
                io.n_chunks = o.imatrix_chunks;
                io.n_threads = o.n_threads;
                io.process_output = true; // mix weighs output.weight by its inputs too
                io.progress = false;
                LOWBIT_TRY(compute_imatrix(io));
            }
        }
        bar.tick();
    }
    LOWBIT_ASSIGN_OR_RETURN(const LogProbReader base, LogProbReader::open(base_path));
    std::map<std::string, CompareRow> done;
    for (CompareMethod& m : methods) {
        const std::string cache = o.out_dir + "/results/" + slug(m.name) + ".json";
        if (fs::exists(cache)) {
            auto text = read_file_to_string(cache);
            const auto j = text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
            if (!j.is_discarded() && j.is_object() && j.value("method", "") == m.name &&
                j.value("n_chunks", int64_t{0}) == o.n_chunks) {
                done[m.name] = row_from_json(j);
                bar.tick(3);
                continue;
            }
        }
        QuantizeJobOptions q = m.quantize;
        q.input = o.model;
        q.output = o.out_dir + "/models/" + slug(m.name) + (is_gguf_method(q.method) ? ".gguf" : "");
        q.n_threads = o.n_threads;
        q.progress = false;
        if (m.needs_imatrix) q.imatrix_path = imatrix;
        if (!m.size_of.empty()) q.target_size = done.at(m.size_of).file_bytes;
        if (m.is_mix) q.mix_sensitivity = o.mix_sensitivity;
        bar.set_suffix(m.name + ": quantize");
        LOWBIT_ASSIGN_OR_RETURN(const QuantizeJobReport qr, run_quantize(q));
        bar.tick();
        CompareRow row;
        row.method = m.name;
        row.is_mix = m.is_mix;
        row.quantize_s = qr.seconds;
        row.file_bytes = path_bytes(q.output);
        row.file_mib = double(row.file_bytes) / (1 << 20);
        row.bpw = qr.bpw();
        bar.set_suffix(m.name + ": KLD");
        {
            LOWBIT_ASSIGN_OR_RETURN(auto session, runtime::Session::open(q.output, session_options(o)));
            const tokenizer::Tokenizer* tok = session->tokenizer();
            KldOptions ko;
            ko.n_chunks = o.n_chunks;
            ko.bos_id = tok && tok->add_bos() ? tok->bos_id() : -1;
            LOWBIT_ASSIGN_OR_RETURN(const KldResult k, compute_kl_divergence(*session, base, ko));
            row.ppl = k.summary.ppl.value;
            row.ppl_err = k.summary.ppl.error;
            row.dppl_pct = 100.0 * (k.summary.ppl.value / k.summary.ppl_base.value - 1.0);
            row.kld = k.summary.kld.value;
            row.kld_err = k.summary.kld.error;
            row.same_top_pct = 100.0 * k.summary.same_top.value;
        }
        bar.tick();
        if (o.n_gen > 0) {
            bar.set_suffix(m.name + ": bench");
            BenchOptions bo;
            bo.model = q.output;
            bo.n_prompt = {};
            bo.n_gen = {o.n_gen};
            bo.n_threads = o.n_threads;
            bo.repetitions = o.repetitions;
            LOWBIT_ASSIGN_OR_RETURN(const BenchReport br, run_bench(bo));
            if (!br.results.empty()) row.tg_ts = br.results.front().avg_ts;
        }
        bar.tick();
        nlohmann::json j = row_json(row);
        j["n_chunks"] = o.n_chunks;
        LOWBIT_TRY(write_text(cache, j.dump(1)));
        done[m.name] = row;
    }
    bar.finish();
    for (const std::string& n : o.methods) report.rows.push_back(done.at(lower(n)));
    std::sort(report.rows.begin(), report.rows.end(),
              [](const CompareRow& a, const CompareRow& b) { return a.bpw < b.bpw; });
    LOWBIT_TRY(write_text(o.out_dir + "/report.md", compare_markdown(report, o)));
    LOWBIT_TRY(write_text(o.out_dir + "/report.json", compare_json(report, o)));
    LOWBIT_TRY(write_text(o.out_dir + "/pareto.svg", compare_svg(report)));
    return report;
}

std::string compare_markdown(const CompareReport& r, const CompareOptions& o) {
    std::string s =
        fmt::format("Model {}, eval {}, ctx {}, {} chunks ({} scored tokens); source PPL {:.4f}; KLD "
                    "against the source model. Sorted by bpw; * = on the Pareto front (no other method "
                    "is both smaller and has lower KLD).\n\n",
                    o.model, fs::path(o.eval_file).filename().string(), r.n_ctx, r.n_chunks, r.n_tokens, r.base_ppl);
    s += "| method | size MiB | bpw | PPL | ΔPPL % | mean KLD | same top-1 % | quantize s | tg t/s |\n";
    s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    const std::vector<size_t> front = pareto_front(r.rows);
    for (size_t i = 0; i < r.rows.size(); ++i) {
        const CompareRow& x = r.rows[i];
        const bool on = std::find(front.begin(), front.end(), i) != front.end();
        s += fmt::format("| {}{} | {:.2f} | {:.3f} | {:.4f} ± {:.4f} | {:+.2f} | {:.5f} ± {:.5f} | {:.2f} | {:.1f} | "
                         "{:.1f} |\n",
                         x.method, on ? " *" : "", x.file_mib, x.bpw, x.ppl, x.ppl_err, x.dppl_pct, x.kld, x.kld_err,
                         x.same_top_pct, x.quantize_s, x.tg_ts);
    }
    return s;
}

std::string compare_json(const CompareReport& r, const CompareOptions& o) {
    nlohmann::json rows = nlohmann::json::array();
    for (const CompareRow& x : r.rows) rows.push_back(row_json(x));
    nlohmann::json front = nlohmann::json::array();
    for (size_t i : pareto_front(r.rows)) front.push_back(r.rows[i].method);
    const nlohmann::json j = {{"model", o.model},       {"eval_file", o.eval_file}, {"n_ctx", r.n_ctx},
                              {"n_chunks", r.n_chunks}, {"n_tokens", r.n_tokens},   {"base_ppl", r.base_ppl},
                              {"rows", rows},           {"pareto_front", front}};
    return j.dump(1) + "\n";
}

namespace {

struct Box {
    double x0, y0, x1, y1;
    bool overlaps(const Box& b) const { return x0 < b.x1 && b.x0 < x1 && y0 < b.y1 && b.y0 < y1; }
};

std::string xml_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '<')
            o += "&lt;";
        else if (c == '>')
            o += "&gt;";
        else if (c == '&')
            o += "&amp;";
        else
            o += c;
    }
    return o;
}

} // namespace

std::string compare_svg(const CompareReport& r) {
    const double W = 900, H = 560, L = 80, R = 30, T = 50, B = 60;
    std::vector<const CompareRow*> pts;
    for (const CompareRow& x : r.rows)
        if (x.kld > 0 && x.bpw > 0) pts.push_back(&x);
    double xmin = 1e9, xmax = -1e9, ymin = 1e9, ymax = -1e9;
    for (const CompareRow* p : pts) {
        xmin = std::min(xmin, p->bpw);
        xmax = std::max(xmax, p->bpw);
        ymin = std::min(ymin, std::log10(p->kld));
        ymax = std::max(ymax, std::log10(p->kld));
    }
    if (pts.empty()) xmin = 0, xmax = 1, ymin = -3, ymax = 0;
    xmin = std::floor(xmin * 2 - 1) / 2;
    xmax = std::ceil(xmax * 2 + 1) / 2;
    ymin = std::floor(ymin);
    ymax = std::ceil(ymax);
    if (ymax - ymin < 1) ymax = ymin + 1;
    const auto X = [&](double v) { return L + (v - xmin) / (xmax - xmin) * (W - L - R); };
    const auto Y = [&](double kld) { return T + (ymax - std::log10(kld)) / (ymax - ymin) * (H - T - B); };
    std::string s = fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
                                "viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" font-size=\"11\">\n",
                                W, H, W, H);
    s += fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", W, H);
    s += fmt::format("<text x=\"{}\" y=\"22\" font-size=\"14\" text-anchor=\"middle\">Mean KLD vs the source model "
                     "against bits per weight (ctx {}, {} chunks, {} tokens)</text>\n",
                     W / 2, r.n_ctx, r.n_chunks, r.n_tokens);
    // Grid: decades with 2 and 5 minor lines; half-bpw vertical lines.
    for (double e = ymin; e <= ymax + 1e-9; e += 1) {
        for (double m : {1.0, 2.0, 5.0}) {
            const double v = m * std::pow(10.0, e);
            if (std::log10(v) > ymax + 1e-9) continue;
            const double y = Y(v);
            s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\"/>\n", L, y,
                             W - R, y, m == 1.0 ? "#bbb" : "#eee");
            s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", L - 6, y + 4,
                             fmt::format("{:g}", v));
        }
    }
    for (double v = xmin; v <= xmax + 1e-9; v += 0.5) {
        const double x = X(v);
        s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#eee\"/>\n", x, T, x,
                         H - B);
        s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:g}</text>\n", x, H - B + 16, v);
    }
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", L, T,
                     W - L - R, H - T - B);
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\">bits per weight (all tensor "
                     "bytes × 8 / parameters)</text>\n",
                     (L + W - R) / 2, H - 18);
    s += fmt::format("<text transform=\"translate(20,{}) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">mean "
                     "KL divergence (log scale, lower is better)</text>\n",
                     (T + H - B) / 2);
    // Pareto front of all methods, then the mixes as one line.
    std::vector<CompareRow> plotted;
    for (const CompareRow* p : pts) plotted.push_back(*p);
    std::string poly;
    for (size_t i : pareto_front(plotted)) poly += fmt::format("{:.1f},{:.1f} ", X(plotted[i].bpw), Y(plotted[i].kld));
    s += "<polyline points=\"" + poly +
         "\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"1.5\" "
         "stroke-dasharray=\"6,4\"/>\n";
    // Plain mixes (orange) and GPTQ mixes (purple) as two lines.
    const auto is_gptq_mix = [](const CompareRow* p) { return p->method.rfind("mixgptq@", 0) == 0; };
    const auto color = [&](const CompareRow* p, bool text) {
        if (!p->is_mix) return text ? "#174a7a" : "#1f77b4";
        if (is_gptq_mix(p)) return text ? "#6b3fa0" : "#9467bd";
        return text ? "#c05000" : "#ff7f0e";
    };
    bool any_gptq_mix = false;
    for (const bool gptq : {false, true}) {
        std::vector<const CompareRow*> mixes;
        for (const CompareRow* p : pts)
            if (p->is_mix && is_gptq_mix(p) == gptq) mixes.push_back(p);
        any_gptq_mix = any_gptq_mix || (gptq && !mixes.empty());
        std::sort(mixes.begin(), mixes.end(), [](auto* a, auto* b) { return a->bpw < b->bpw; });
        if (mixes.size() > 1) {
            std::string mp;
            for (const CompareRow* p : mixes) mp += fmt::format("{:.1f},{:.1f} ", X(p->bpw), Y(p->kld));
            s += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n", mp,
                             color(mixes.front(), false));
        }
    }
    // Points, then labels placed greedily where they overlap no point, no earlier label and stay inside the plot.
    std::vector<Box> taken;
    for (const CompareRow* p : pts) {
        const double x = X(p->bpw), y = Y(p->kld);
        s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" fill=\"{}\"/>\n", x, y, color(p, false));
        taken.push_back({x - 4, y - 4, x + 4, y + 4});
    }
    for (const CompareRow* p : pts) {
        const double x = X(p->bpw), y = Y(p->kld);
        const double w = 6.2 * double(p->method.size()), h = 12;
        const std::pair<double, double> offsets[] = {{7, -5},      {7, 13},      {-7 - w, -5},  {-7 - w, 13},
                                                     {-w / 2, -9}, {-w / 2, 19}, {7, -18},      {-7 - w, -18},
                                                     {7, 26},      {-7 - w, 26}, {-w / 2, -22}, {-w / 2, 32}};
        Box chosen{};
        bool placed = false;
        for (const auto& [dx, dy] : offsets) {
            const Box b{x + dx, y + dy - h + 2, x + dx + w, y + dy + 2};
            if (b.x0 < L || b.x1 > W - R || b.y0 < T || b.y1 > H - B) continue;
            if (std::any_of(taken.begin(), taken.end(), [&](const Box& t) { return t.overlaps(b); })) continue;
            chosen = b;
            placed = true;
            break;
        }
        if (!placed) chosen = {x + 7, y - 5 - h + 2, x + 7 + w, y - 5 + 2};
        taken.push_back(chosen);
        s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"{}\">{}</text>\n", chosen.x0, chosen.y1 - 2,
                         color(p, true), xml_escape(p->method));
    }
    // Legend (top right).
    const double lx = W - R - 200, ly = T + 12;
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"190\" height=\"{}\" fill=\"white\" stroke=\"#999\"/>\n", lx - 8,
                     ly - 10, any_gptq_mix ? 76 : 58);
    s += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"#1f77b4\"/><text x=\"{}\" y=\"{}\">method</text>\n",
                     lx, ly, lx + 10, ly + 4);
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#ff7f0e\" stroke-width=\"2\"/><circle "
                     "cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"#ff7f0e\"/><text x=\"{}\" y=\"{}\">mix to a budget</text>\n",
                     lx - 6, ly + 18, lx + 6, ly + 18, lx, ly + 18, lx + 10, ly + 22);
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#2ca02c\" stroke-width=\"1.5\" "
                     "stroke-dasharray=\"6,4\"/><text x=\"{}\" y=\"{}\">Pareto front</text>\n",
                     lx - 6, ly + 36, lx + 6, ly + 36, lx + 10, ly + 40);
    if (any_gptq_mix)
        s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#9467bd\" stroke-width=\"2\"/><circle "
                         "cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"#9467bd\"/><text x=\"{}\" y=\"{}\">mix + GPTQ "
                         "(mixgptq@)</text>\n",
                         lx - 6, ly + 54, lx + 6, ly + 54, lx, ly + 54, lx + 10, ly + 58);
    s += "</svg>\n";
    return s;
}

} // namespace lowbit::pipeline
