// SPDX-License-Identifier: MIT
// GGUF half of `lowbit quantize`: HF folder or GGUF in -> llama.cpp's tensor-type mix (kquant/mix.h) -> rows
// quantized in parallel (optionally weighted by a llama.cpp imatrix) -> GGUF out, tensor by tensor in
// llama.cpp's tensor order, so the bytes equal llama-quantize's for the same input.
#include "core/checked.h"
#include "core/file.h"
#include "core/finite.h"
#include "core/log.h"
#include "core/progress.h"
#include "format/gguf/imatrix_file.h"
#include "kernel/cpu/quant/quant_rows.h"
#include "pipeline/imatrix/imatrix.h"
#include "pipeline/quantize/gguf_source.h"
#include "pipeline/quantize/mix_budget.h"
#include "pipeline/quantize/quantize.h"
#include "quantize/kquant/imatrix.h"
#include "scheme/scheme_list.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <unistd.h>

namespace lowbit::pipeline {
namespace {

namespace kq = quantize::kquant;

bool is_embd_or_output(const std::string& name) {
    return name == "token_embd.weight" || name == "output.weight";
}

// Importance per tensor index (empty = none), after llama-quantize's checks, all before any byte is written.
Result<std::vector<std::vector<float>>> match_imatrix(const gguf::ImatrixData& im, const std::string& path,
                                                      const GgufQuantSource& src, const kq::MixPlan& plan) {
    const auto& ts = src.tensors();
    std::vector<std::vector<float>> out(ts.size());
    int n_matched = 0, n_needing = 0;
    std::string first_missing;
    for (size_t i = 0; i < ts.size(); ++i) {
        if (plan.types[i] == ts[i].dtype || !dtype_is_quantized(plan.types[i])) continue; // left as is / float
        ++n_needing;
        const auto it = im.entries.find(ts[i].name);
        if (it == im.entries.end()) {
            if (!is_embd_or_output(ts[i].name) && first_missing.empty()) first_missing = ts[i].name;
            continue;
        }
        LOWBIT_ASSIGN_OR_RETURN(std::vector<float> imp,
                                kq::importance_from_imatrix(ts[i].name, it->second.in_sum2, it->second.counts));
        const int64_t ne0 = ts[i].ne[0];
        int64_t n_mat = 1;
        for (size_t d = 2; d < ts[i].ne.size(); ++d) n_mat *= ts[i].ne[d];
        if (static_cast<int64_t>(imp.size()) != ne0 * n_mat) {
            if (ts[i].name == "token_embd.weight") { // llama-quantize ignores a mismatch here too
                log_warn("imatrix: '{}' has {} values, tensor 'token_embd.weight' rows have {}; ignoring it", path,
                         imp.size(), ne0);
                continue;
            }
            return make_error(ErrorCode::kBadInput,
                              fmt::format("imatrix '{}': entry for tensor '{}' has {} values but the tensor's rows "
                                          "have {} (an imatrix of another model?)",
                                          path, ts[i].name, imp.size(), ne0 * n_mat));
        }
        out[i] = std::move(imp);
        ++n_matched;
    }
    if (n_needing > 0 && n_matched == 0)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("imatrix '{}' has no entry for any tensor of this model ({} entries, e.g. "
                                      "'{}'; was it computed for another model?)",
                                      path, im.entries.size(), im.entries.begin()->first));
    if (!first_missing.empty())
        return make_error(ErrorCode::kBadInput,
                          fmt::format("imatrix '{}' has no entry for tensor '{}' (computed for another model, or "
                                      "with a different architecture?)",
                                      path, first_missing));
    return out;
}

Status check_required_imatrix(const GgufQuantSource& src, const kq::MixPlan& plan,
                              const std::vector<std::vector<float>>& imp, const std::string& method) {
    if (!plan.requires_imatrix) return ok_status();
    if (imp.empty())
        return make_error(ErrorCode::kUsage, "method '" + method +
                                                 "' needs an importance matrix (--imatrix FILE, from `lowbit "
                                                 "imatrix`), as llama-quantize does for this very low-bit mix");
    const auto& ts = src.tensors();
    for (size_t i = 0; i < ts.size(); ++i)
        if (plan.types[i] == DType::kQ2_K && ts[i].name != "token_embd.weight" && imp[i].empty())
            return make_error(ErrorCode::kBadInput, "tensor '" + ts[i].name + "' is " + method +
                                                        "'s Q2_K and needs an imatrix entry, the imatrix has none");
    return ok_status();
}

// Per-thread buffers of the streamed path, kept across tensors (grown, never shrunk): a tile of rows as f32 and
// its quantized bytes. Bounded by kTileElems values per thread (or one row, when a row is longer).
struct StreamBuffers {
    static constexpr int64_t kTileElems = int64_t{1} << 19;
    std::vector<std::vector<float>> f32;
    std::vector<std::vector<uint8_t>> out;
};

// Tensor i of a GGUF input, streamed: tiles of rows claimed by the pool's threads, each decoded (with the
// non-finite check), quantized and written in place (`sink`), its input pages released. Bytes as the
// whole-tensor path's; a NaN/Inf is reported at the lowest index, as check_finite_weights would.
Status produce_streamed(const GgufQuantSource& src, size_t i, DType type, const float* importance, StreamBuffers& bufs,
                        const gguf::PositionalSink& sink) {
    const kq::MixTensor& t = src.tensors()[i];
    if (t.ne.empty() || t.ne[0] <= 0) return make_error(ErrorCode::kInternal, "tensor '" + t.name + "' has no rows");
    const int64_t n_per_row = t.ne[0];
    std::optional<uint64_t> n_elems = uint64_t{1};
    for (const int64_t d : t.ne)
        n_elems = d > 0 && n_elems ? checked_mul(*n_elems, static_cast<uint64_t>(d)) : std::nullopt;
    if (!n_elems || *n_elems > static_cast<uint64_t>(INT64_MAX))
        return make_error(ErrorCode::kBadInput, "tensor '" + t.name + "': its size overflows");
    const int64_t n_rows = static_cast<int64_t>(*n_elems) / n_per_row;
    const scheme::SchemeTraits* s = type == DType::kF32 ? nullptr : scheme::find_scheme(type);
    if (type != DType::kF32 && (!s || !s->quantize_row))
        return make_error(ErrorCode::kUnsupported, fmt::format("lowbit cannot quantize to {}", dtype_name(type)));
    const std::optional<uint64_t> row_bytes = dtype_row_bytes(type, static_cast<uint64_t>(n_per_row));
    if (!row_bytes)
        return make_error(ErrorCode::kUsage, fmt::format("rows of {} values cannot be stored as {} (block of {})",
                                                         n_per_row, dtype_name(type), dtype_block_elems(type)));
    kernel::cpu::quant::QuantizeRowFn fn = nullptr;
    if (s) {
        fn =
            importance ? nullptr : kernel::cpu::quant::find_quantize_row_plain(type, kernel::cpu::qdot::active_level());
        if (!fn) fn = s->quantize_row;
    }
    const int64_t tile = std::max<int64_t>(1, StreamBuffers::kTileElems / n_per_row);
    const std::optional<uint64_t> f32_elems =
        checked_mul(static_cast<uint64_t>(std::min(tile, n_rows)), static_cast<uint64_t>(n_per_row));
    const std::optional<uint64_t> out_bytes = checked_mul(static_cast<uint64_t>(std::min(tile, n_rows)), *row_bytes);
    if (!f32_elems || !out_bytes || *f32_elems > (uint64_t{1} << 40) / sizeof(float) ||
        *out_bytes > (uint64_t{1} << 40))
        return make_error(ErrorCode::kBadInput,
                          fmt::format("tensor '{}': rows of {} values are too long to quantize", t.name, n_per_row));
    ThreadPool& pool = ThreadPool::global();
    bufs.f32.resize(static_cast<size_t>(pool.n_threads()));
    bufs.out.resize(static_cast<size_t>(pool.n_threads()));
    std::atomic<int64_t> first_bad{INT64_MAX};
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    std::optional<Error> error;
    auto fail = [&](Error e) {
        const std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::move(e);
        failed = true;
    };
    pool.parallel_for_tiles(
        n_rows,
        [&](int64_t r0, int64_t r1, int th) {
            if (failed) return;
            const int64_t n = (r1 - r0) * n_per_row;
            std::vector<float>& x = bufs.f32[static_cast<size_t>(th)];
            if (x.size() < static_cast<size_t>(n)) x.resize(static_cast<size_t>(n));
            const Result<int64_t> bad = src.read_rows_f32(i, r0, r1, x.data());
            if (!bad.ok()) return fail(bad.error());
            if (*bad < n) { // keep the lowest bad index over all tiles
                int64_t cur = first_bad.load();
                const int64_t idx = r0 * n_per_row + *bad;
                while (idx < cur && !first_bad.compare_exchange_weak(cur, idx)) {
                }
                return;
            }
            const uint64_t off = static_cast<uint64_t>(r0) * *row_bytes;
            Status st = ok_status();
            if (!fn) {
                st = sink(off, x.data(), static_cast<uint64_t>(n) * sizeof(float));
            } else {
                std::vector<uint8_t>& q = bufs.out[static_cast<size_t>(th)];
                const uint64_t nb = static_cast<uint64_t>(r1 - r0) * *row_bytes;
                if (q.size() < nb) q.resize(static_cast<size_t>(nb));
                for (int64_t r = 0; r < r1 - r0; ++r)
                    fn(x.data() + r * n_per_row, q.data() + static_cast<uint64_t>(r) * *row_bytes, n_per_row,
                       importance);
                st = sink(off, q.data(), nb);
            }
            if (!st.ok()) return fail(st.error());
            src.release_rows(i, r0, r1);
        },
        tile);
    src.release_rows(i, 0, n_rows); // the pages tiles shared at their edges
    if (error) return *error;
    if (const int64_t idx = first_bad.load(); idx != INT64_MAX) {
        std::vector<float> row(static_cast<size_t>(n_per_row));
        LOWBIT_TRY(src.read_rows_f32(i, idx / n_per_row, idx / n_per_row + 1, row.data()));
        return non_finite_error(t.name, idx, n_per_row, row[static_cast<size_t>(idx % n_per_row)]);
    }
    return ok_status();
}

// Writes tensor i: precomputed bytes, copied as is (same type), as f32, or quantized row-parallel from f32.
gguf::TensorProducer make_producer(const GgufQuantSource& src, size_t i, DType type, const float* importance,
                                   const std::vector<uint8_t>* precomputed, ProgressBar* bar) {
    return [&src, i, type, importance, precomputed, bar](const gguf::ByteSink& sink) -> Status {
        const kq::MixTensor& t = src.tensors()[i];
        if (bar) bar->set_suffix(t.name);
        if (precomputed) {
            LOWBIT_TRY(sink(precomputed->data(), precomputed->size()));
        } else if (type == t.dtype && !src.raw_bytes(i).empty()) {
            const auto raw = src.raw_bytes(i);
            if (!dtype_is_quantized(t.dtype)) { // a float tensor copied as is: its values must be finite too
                std::vector<float> x;
                LOWBIT_TRY(src.read_f32(i, x));
                LOWBIT_TRY(check_finite_weights(x.data(), int64_t(x.size()), t.ne[0], t.name));
            }
            LOWBIT_TRY(sink(raw.data(), raw.size()));
        } else {
            std::vector<float> x;
            LOWBIT_TRY(src.read_f32(i, x));
            LOWBIT_TRY(check_finite_weights(x.data(), int64_t(x.size()), t.ne[0], t.name));
            const int64_t n_per_row = t.ne[0];
            const int64_t n_rows = n_per_row ? static_cast<int64_t>(x.size()) / n_per_row : 0;
            if (type == DType::kF32) {
                LOWBIT_TRY(sink(x.data(), x.size() * sizeof(float)));
            } else {
                const uint64_t row_bytes = *dtype_row_bytes(type, static_cast<uint64_t>(n_per_row));
                std::vector<uint8_t> out(static_cast<size_t>(row_bytes * static_cast<uint64_t>(n_rows)));
                LOWBIT_TRY(kq::quantize_rows(type, x.data(), n_rows, n_per_row, importance, out.data()));
                LOWBIT_TRY(sink(out.data(), out.size()));
            }
        }
        if (bar) bar->tick();
        return ok_status();
    };
}

// Whether tensor i takes the streamed path: a source read by rows, computed bytes (not copied, not precomputed).
bool streams(const GgufQuantSource& src, size_t i, DType type, const std::vector<uint8_t>* precomputed) {
    if (precomputed || !src.has_rows()) return false;
    return !(type == src.tensors()[i].dtype && !src.raw_bytes(i).empty());
}

Shape row_major(const std::vector<int64_t>& ne) {
    Shape s;
    for (auto it = ne.rbegin(); it != ne.rend(); ++it) s[s.n_dims++] = *it;
    return s;
}

// Bytes of the GGUF header (KVs + tensor infos + padding) `w` would write with these tensors: the tensor types
// only change fixed-size fields, so this is the header of any type assignment.
Result<uint64_t> header_bytes(const gguf::Writer& metadata, const GgufQuantSource& src, const kq::MixPlan& plan) {
    gguf::Writer scratch = metadata;
    const auto& ts = src.tensors();
    for (size_t i = 0; i < ts.size(); ++i)
        LOWBIT_TRY(scratch.add_tensor_producer(ts[i].name, plan.types[i], row_major(ts[i].ne),
                                               [](const gguf::ByteSink&) -> Status { return ok_status(); }));
    uint64_t n = 0;
    const Status st = scratch.write_to([&n](const void*, uint64_t k) -> Status {
        n = k;
        return make_error(ErrorCode::kInternal, "header measured");
    });
    if (n == 0) {
        if (!st.ok()) return st.error();
        return make_error(ErrorCode::kInternal, "GGUF header size unknown");
    }
    return n;
}

// mix --calib FILE: llama-imatrix's statistics (output.weight included) in a temporary file beside the output.
Result<std::string> imatrix_from_calib(const QuantizeJobOptions& o) {
    ImatrixOptions io;
    io.model = o.input;
    io.text_file = o.calib;
    io.output = fmt::format("{}.imatrix.tmp.{}", o.output, ::getpid());
    io.n_chunks = o.imatrix_chunks;
    io.n_threads = o.n_threads;
    io.process_output = true;
    io.progress = o.progress;
    LOWBIT_ASSIGN_OR_RETURN(const ImatrixReport r, compute_imatrix(io));
    log_info("mix: imatrix of {} chunks of {} in {:.1f} s", r.n_chunks, o.calib, r.seconds);
    return io.output;
}

// --tensor-type PATTERN=TYPE: overrides applied to the plan, in order, first match wins.
Status apply_tensor_types(const std::vector<std::string>& specs, const GgufQuantSource& src, kq::MixPlan& plan) {
    std::vector<std::pair<std::regex, DType>> rules;
    for (const std::string& spec : specs) {
        const size_t eq = spec.rfind('=');
        const std::optional<DType> t = eq == std::string::npos ? std::nullopt : dtype_from_name(spec.substr(eq + 1));
        if (eq == std::string::npos || eq == 0 || !t)
            return make_error(ErrorCode::kUsage,
                              "--tensor-type '" + spec + "': expected PATTERN=TYPE, e.g. attn_v=q8_0 or ffn_down=q6_k");
        try {
            rules.emplace_back(std::regex(spec.substr(0, eq)), *t);
        } catch (const std::regex_error& e) {
            return make_error(ErrorCode::kUsage, "--tensor-type '" + spec + "': bad pattern: " + e.what());
        }
    }
    const auto& ts = src.tensors();
    int n_matched = 0;
    for (size_t i = 0; i < ts.size(); ++i) {
        if (!kq::allows_quantization(ts[i])) continue;
        for (const auto& [re, type] : rules) {
            if (!std::regex_search(ts[i].name, re)) continue;
            if (ts[i].ne.empty() || ts[i].ne[0] % dtype_block_elems(type) != 0)
                return make_error(
                    ErrorCode::kUnsupported,
                    fmt::format("--tensor-type: tensor '{}' has rows of {} values, not a multiple of {}'s "
                                "block of {}",
                                ts[i].name, ts[i].ne.empty() ? 0 : ts[i].ne[0], dtype_name(type),
                                dtype_block_elems(type)));
            plan.types[i] = type;
            ++n_matched;
            break;
        }
    }
    if (!rules.empty() && n_matched == 0)
        return make_error(ErrorCode::kUsage, "--tensor-type: no quantized tensor matches any pattern");
    return ok_status();
}

} // namespace

Result<QuantizeJobReport> quantize_to_gguf(const QuantizeJobOptions& o, const GgufPrecompute& precompute) {
    const auto t0 = std::chrono::steady_clock::now();
    const bool mix = o.method == "mix";
    // mix: the Q4_K_M rules only say which tensors are quantized (for the imatrix match); the budget decides.
    std::optional<kq::FileType> ft = mix ? kq::FileType::kQ4_K_M : kq::file_type_from_name(o.method);
    if (!ft) return make_error(ErrorCode::kUsage, "unknown GGUF method '" + o.method + "'");
    std::vector<DType> mix_types;
    if (mix && !o.mix_types.empty()) {
        LOWBIT_ASSIGN_OR_RETURN(mix_types, parse_mix_types(o.mix_types));
    }
    std::optional<MixSensitivity> sensitivity;
    if (mix && !o.mix_sensitivity.empty()) {
        LOWBIT_ASSIGN_OR_RETURN(sensitivity, read_mix_sensitivity(o.mix_sensitivity));
    }
    std::optional<gguf::ImatrixData> im;
    std::string imatrix_path = o.imatrix_path;
    if (mix && !o.calib.empty() && o.imatrix_path.empty()) { // mix --gptq may have both: --imatrix wins here
        LOWBIT_ASSIGN_OR_RETURN(imatrix_path, imatrix_from_calib(o));
    }
    if (!imatrix_path.empty()) {
        auto d = gguf::read_imatrix(imatrix_path);
        if (imatrix_path != o.imatrix_path) std::remove(imatrix_path.c_str());
        if (!d.ok()) return d.error();
        im = std::move(*d);
    }
    LOWBIT_ASSIGN_OR_RETURN(std::unique_ptr<GgufQuantSource> src, open_gguf_quant_source(o.input));
    if (const std::string warning = src->requantize_warning(o.method); !warning.empty()) log_warn("{}", warning);
    const auto& ts = src->tensors();
    if (ts.empty())
        return make_error(
            ErrorCode::kBadInput,
            fmt::format("'{}' has no tensors (a vocabulary-only GGUF?): there are no weights to quantize, "
                        "expected a model with its tensors",
                        o.input));
    kq::MixOptions mo;
    mo.has_imatrix = im.has_value();
    LOWBIT_ASSIGN_OR_RETURN(kq::MixPlan plan, kq::plan_mix(ts, src->hparams(), *ft, mo));
    if (mix && !o.tensor_types.empty())
        return make_error(ErrorCode::kUsage, "--tensor-type does not apply to mix (the budget chooses every type)");
    LOWBIT_TRY(apply_tensor_types(o.tensor_types, *src, plan));
    std::vector<std::vector<float>> importance;
    if (im) {
        LOWBIT_ASSIGN_OR_RETURN(importance, match_imatrix(*im, imatrix_path, *src, plan));
    }
    LOWBIT_TRY(check_required_imatrix(*src, plan, importance, o.method));
    if (plan.n_fallback > 0)
        log_warn("quantize: {} tensor(s) have rows that are not a multiple of 256 and use a fallback type",
                 plan.n_fallback);

    gguf::Writer w;
    LOWBIT_TRY(src->set_metadata(w));
    // As llama-quantize (gguf_set_val re-adds a key at the end): quantization_version, then file_type, last.
    w.remove("general.quantization_version");
    w.remove("general.file_type");
    LOWBIT_TRY(w.set("general.quantization_version", gguf::Value::u32(2)));
    LOWBIT_TRY(w.set("general.file_type", gguf::Value::u32(static_cast<uint32_t>(*ft))));
    if (im) {
        int32_t n_used = 0;
        for (const auto& v : importance) n_used += !v.empty();
        LOWBIT_TRY(
            w.set("quantize.imatrix.file", gguf::Value::string(o.imatrix_path.empty() ? o.calib : o.imatrix_path)));
        if (!im->datasets.empty())
            LOWBIT_TRY(w.set("quantize.imatrix.dataset", gguf::Value::string(im->datasets.front())));
        LOWBIT_TRY(w.set("quantize.imatrix.entries_count", gguf::Value::i32(n_used)));
        LOWBIT_TRY(w.set("quantize.imatrix.chunks_count", gguf::Value::i32(static_cast<int32_t>(im->chunk_count))));
    }

    QuantizeJobReport report;
    if (mix) {
        MixBudgetRequest req;
        req.target_bpw = o.target_bpw;
        req.target_file_bytes = o.target_size;
        req.types = mix_types;
        req.alignment = w.alignment();
        req.sensitivity = sensitivity ? &*sensitivity : nullptr;
        LOWBIT_ASSIGN_OR_RETURN(req.header_bytes, header_bytes(w, *src, plan));
        LOWBIT_ASSIGN_OR_RETURN(MixBudgetResult mr, plan_budget_mix(*src, importance, req, o.progress));
        plan = std::move(mr.plan);
        LOWBIT_TRY(w.set("general.file_type", gguf::Value::u32(static_cast<uint32_t>(mix_file_type(*src, plan)))));
        report.allocation = std::move(mr.summary);
        if (!o.mix_report.empty()) {
            LOWBIT_ASSIGN_OR_RETURN(auto jw, AtomicWriter::create(o.mix_report));
            LOWBIT_TRY(jw->write(mr.json));
            LOWBIT_TRY(jw->commit());
        }
    }
    // Precomputed bytes (GPTQ onto GGUF grids) for the final plan: after the budget has chosen the mix's types.
    std::map<std::string, std::vector<uint8_t>> pre;
    if (precompute) {
        std::vector<GgufPlannedTensor> planned;
        for (size_t i = 0; i < ts.size(); ++i) planned.push_back({ts[i].name, plan.types[i], ts[i].ne});
        LOWBIT_ASSIGN_OR_RETURN(pre, precompute(planned));
    }
    report.method = o.method;
    report.output = o.output;
    ProgressBar bar("quantize", static_cast<int64_t>(ts.size()), o.progress && ProgressBar::stderr_is_terminal());
    std::map<std::string, QuantizeTypeRow> rows;
    StreamBuffers stream_bufs;
    for (size_t i : kq::llama_tensor_order(ts)) {
        const DType type = plan.types[i];
        const Shape shape = row_major(ts[i].ne);
        const float* imp = importance.empty() || importance[i].empty() ? nullptr : importance[i].data();
        const auto it = pre.find(ts[i].name);
        const std::vector<uint8_t>* bytes = it == pre.end() ? nullptr : &it->second;
        if (bytes) {
            const std::optional<uint64_t> row_bytes = dtype_row_bytes(type, static_cast<uint64_t>(ts[i].ne[0]));
            const uint64_t n_rows = ts[i].ne[0] ? static_cast<uint64_t>(shape.n_elems() / ts[i].ne[0]) : 0;
            if (!row_bytes || bytes->size() != *row_bytes * n_rows)
                return make_error(ErrorCode::kInternal,
                                  fmt::format("precomputed tensor '{}' has {} bytes, its type {} needs {}", ts[i].name,
                                              bytes->size(), dtype_name(type), row_bytes.value_or(0) * n_rows));
        }
        if (streams(*src, i, type, bytes)) {
            const GgufQuantSource* s = src.get();
            ProgressBar* b = &bar;
            gguf::PositionalProducer produce = [s, i, type, imp, &stream_bufs,
                                                b](const gguf::PositionalSink& sink) -> Status {
                b->set_suffix(s->tensors()[i].name);
                const Status st = produce_streamed(*s, i, type, imp, stream_bufs, sink);
                if (st.ok()) b->tick();
                return st;
            };
            LOWBIT_TRY(w.add_tensor_positional(ts[i].name, type, shape, std::move(produce)));
        } else {
            LOWBIT_TRY(w.add_tensor_producer(ts[i].name, type, shape, make_producer(*src, i, type, imp, bytes, &bar)));
        }
        QuantizeTypeRow& row = rows[std::string(dtype_name(type))];
        row.type = dtype_name(type);
        row.n_tensors += 1;
        row.n_elems += shape.n_elems();
        row.n_bytes += w.tensor_bytes(w.n_tensors() - 1);
        report.n_params += shape.n_elems();
        report.n_bytes += w.tensor_bytes(w.n_tensors() - 1);
    }
    LOWBIT_TRY(w.write(o.output));
    bar.finish();
    for (auto& [name, row] : rows) report.rows.push_back(row);
    std::error_code ec;
    report.file_bytes = std::filesystem::file_size(o.output, ec);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return report;
}

} // namespace lowbit::pipeline
