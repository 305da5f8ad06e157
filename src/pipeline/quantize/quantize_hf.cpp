// SPDX-License-Identifier: MIT
// HF-style half of `lowbit quantize`: HF directory or GGUF in -> an HF-style directory out:
//   config.json (input config + quantization_config, hf_method.h), generation_config.json, tokenizer files,
//   model.safetensors (or model-0000i-of-0000n.safetensors + index above 2 GiB), all written atomically.
// Decoder-layer Linear weights go through the method's algorithm row (records "<module>.<suffix>");
// every other tensor keeps its source dtype (bf16 when the source is GGUF block-quantized).
#include "core/file.h"
#include "core/half.h"
#include "core/log.h"
#include "core/progress.h"
#include "format/safetensors/safetensors_writer.h"
#include "pipeline/quantize/hf_checkpoint_writer.h"
#include "pipeline/quantize/hf_method.h"
#include "pipeline/quantize/hf_source.h"
#include "pipeline/quantize/quantize.h"
#include "quantize/hqq/hqq_algo.h"
#include "scheme/nf4/nf4.h"

#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <set>

namespace lowbit::pipeline {
namespace {

namespace fs = std::filesystem;
using hfq::HfMethod;
using hfq::Source;
using hfq::SourceTensor;

constexpr uint64_t kMaxShardBytes = 2ull << 30; // 2 GiB, as transformers' default max_shard_size for this size

// The torch dtype the source's kept tensors have ("bfloat16" unless the config or the embeddings say otherwise).
std::string source_torch_dtype(const Source& src) {
    if (!src.is_gguf && !src.config.torch_dtype.empty()) return src.config.torch_dtype;
    for (const SourceTensor& t : src.tensors)
        if (t.name == "model.embed_tokens.weight") {
            if (t.dtype == DType::kF16) return "float16";
            if (t.dtype == DType::kF32) return "float32";
        }
    return "bfloat16";
}

// Everything the writer points at lives here until the files are written.
struct Outputs {
    std::deque<scheme::TensorRecord> records;
    std::deque<std::vector<uint8_t>> buffers;
    std::vector<safetensors::TensorToWrite> tensors;
    std::map<std::string, QuantizeTypeRow> rows;

    void count(const std::string& type, int64_t n_elems, uint64_t n_bytes, bool new_tensor) {
        QuantizeTypeRow& r = rows[type];
        r.type = type;
        r.n_tensors += new_tensor ? 1 : 0;
        r.n_elems += n_elems;
        r.n_bytes += n_bytes;
    }
};

// NF4/FP4 quant state records the original dtype ("dtype" in the JSON): the source's, not the scheme default.
Result<std::vector<scheme::TensorRecord>> set_quant_state_dtype(std::vector<scheme::TensorRecord> records,
                                                                const std::string& dtype) {
    LOWBIT_ASSIGN_OR_RETURN(scheme::nf4::Nf4Tensor t, scheme::nf4::from_records(records));
    t.params.torch_dtype = dtype;
    return scheme::nf4::to_records(t);
}

// hqq: the stored f32/f16/bf16 bytes go to the solver as they are (the CUDA solver sends 2-byte weights).
Result<quantize::QuantizeOutput> quantize_hqq_linear(const Source& src, const SourceTensor& t, const HfMethod& m,
                                                     quantize::hqq::HqqDevice device) {
    std::vector<float> f;
    const void* data = nullptr;
    DType dtype = DType::kF32;
    if (hfq::copies_verbatim(t) && t.dtype != DType::kF64) {
        LOWBIT_ASSIGN_OR_RETURN(TensorView v, src.store->view(t.store_name));
        data = v.data;
        dtype = v.dtype;
    } else {
        LOWBIT_ASSIGN_OR_RETURN(f, hfq::read_f32(src, t));
        data = f.data();
    }
    return quantize::hqq::quantize_hqq_weights(data, dtype, t.shape.n_rows(), t.shape.n_cols(), m.params, device);
}

Status quantize_linear(const Source& src, const SourceTensor& t, const HfMethod& m, quantize::hqq::HqqDevice device,
                       Outputs& out) {
    Result<quantize::QuantizeOutput> q = Error{};
    if (m.method == "hqq") {
        q = quantize_hqq_linear(src, t, m, device);
    } else {
        const quantize::AlgoRow* algo = quantize::find_algo(m.method);
        LOWBIT_ASSIGN_OR_RETURN(std::vector<float> w, hfq::read_f32(src, t));
        quantize::QuantizeRequest req;
        req.weights = w.data();
        req.n_rows = t.shape.n_rows();
        req.n_cols = t.shape.n_cols();
        req.params = m.params;
        q = algo->quantize(req);
    }
    if (!q.ok()) return Error{q.error().code, "quantizing '" + t.name + "': " + q.error().message};
    std::vector<scheme::TensorRecord> records = std::move(q->records);
    if (m.method == "nf4" || m.method == "fp4") {
        LOWBIT_ASSIGN_OR_RETURN(records, set_quant_state_dtype(std::move(records), m.compute_dtype));
    }
    const std::string module = t.name.substr(0, t.name.size() - std::string_view(".weight").size());
    uint64_t n_bytes = 0;
    for (scheme::TensorRecord& r : records) {
        out.records.push_back(std::move(r));
        const scheme::TensorRecord& kept = out.records.back();
        out.tensors.push_back({module + "." + kept.suffix, kept.dtype, kept.shape, kept.bytes.data(), {}});
        n_bytes += kept.bytes.size();
    }
    out.count(m.type_label, t.shape.n_elems(), n_bytes, true);
    return ok_status();
}

Status keep_tensor(const Source& src, const SourceTensor& t, Outputs& out) {
    if (hfq::copies_verbatim(t)) {
        LOWBIT_ASSIGN_OR_RETURN(TensorView v, src.store->view(t.store_name));
        out.tensors.push_back({t.name, t.dtype, t.shape, v.data, {}});
        out.count(std::string(dtype_name(t.dtype)), t.shape.n_elems(), v.n_bytes(), true);
        return ok_status();
    }
    // Block-quantized GGUF tensors become bf16; permuted plain tensors keep their type (f64 -> f32).
    const DType to = dtype_is_quantized(t.dtype) ? DType::kBF16 : t.dtype == DType::kF64 ? DType::kF32 : t.dtype;
    LOWBIT_ASSIGN_OR_RETURN(std::vector<float> f, hfq::read_f32(src, t));
    std::vector<uint8_t>& buf = out.buffers.emplace_back(f.size() * static_cast<size_t>(dtype_block_bytes(to)));
    for (size_t i = 0; i < f.size(); ++i) {
        if (to == DType::kF32) {
            std::memcpy(buf.data() + 4 * i, &f[i], 4);
        } else {
            const uint16_t h = to == DType::kF16 ? f32_to_f16(f[i]) : f32_to_bf16(f[i]);
            std::memcpy(buf.data() + 2 * i, &h, 2);
        }
    }
    out.tensors.push_back({t.name, to, t.shape, buf.data(), {}});
    out.count(std::string(dtype_name(to)), t.shape.n_elems(), buf.size(), true);
    return ok_status();
}

Status write_text(const std::string& path, const std::string& text) {
    LOWBIT_ASSIGN_OR_RETURN(auto w, AtomicWriter::create(path));
    LOWBIT_TRY(w->write(text));
    return w->commit();
}

// config.json = the input config + quantization_config; generation_config.json copied or derived.
Status write_configs(const Source& src, const HfMethod& m, const std::string& dir) {
    nlohmann::ordered_json cfg;
    try {
        cfg = nlohmann::ordered_json::parse(src.config_json);
    } catch (const nlohmann::json::exception& e) {
        return make_error(ErrorCode::kBadInput, std::string("config.json of the input is not valid JSON: ") + e.what());
    }
    cfg["quantization_config"] = hfq::quantization_config(m);
    LOWBIT_TRY(write_text(dir + "/config.json", cfg.dump(2) + "\n"));
    if (!src.dir.empty() && file_exists(src.dir + "/generation_config.json")) {
        LOWBIT_ASSIGN_OR_RETURN(std::string g, read_file_to_string(src.dir + "/generation_config.json"));
        return write_text(dir + "/generation_config.json", g);
    }
    nlohmann::ordered_json g = nlohmann::ordered_json::object();
    const auto& c = src.config;
    if (!c.bos_token_ids.empty()) g["bos_token_id"] = c.bos_token_ids[0];
    if (c.eos_token_ids.size() == 1) g["eos_token_id"] = c.eos_token_ids[0];
    if (c.eos_token_ids.size() > 1) g["eos_token_id"] = c.eos_token_ids;
    return write_text(dir + "/generation_config.json", g.dump(2) + "\n");
}

Result<std::vector<std::string>> copy_tokenizer_files(const Source& src, const std::string& dir) {
    std::vector<std::string> copied;
    if (src.dir.empty()) {
        log_warn("quantize: a GGUF input has no tokenizer.json to copy; '{}' gets none", dir);
        return copied;
    }
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"}) {
        const std::string from = src.dir + "/" + name;
        if (!file_exists(from)) continue;
        LOWBIT_ASSIGN_OR_RETURN(std::string bytes, read_file_to_string(from));
        LOWBIT_TRY(write_text(dir + "/" + name, bytes));
        copied.push_back(dir + "/" + name);
    }
    return copied;
}

// --device for hqq: auto/cpu/cuda resolved once per run and logged (no silent fallback when cuda is asked).
Result<quantize::hqq::HqqDevice> resolve_hqq_device(const QuantizeJobOptions& o) {
    using quantize::hqq::HqqDevice;
    LOWBIT_ASSIGN_OR_RETURN(HqqDevice asked, quantize::hqq::parse_hqq_device(o.device));
    if (o.method != "hqq") return HqqDevice::kCpu;
    LOWBIT_ASSIGN_OR_RETURN(HqqDevice dev, quantize::hqq::resolve_hqq_device(asked));
    if (dev == HqqDevice::kCuda) {
        log_info("quantize: hqq solver on cuda: {}", quantize::hqq::hqq_cuda_device_label());
    } else if (asked == HqqDevice::kAuto) {
        log_info("quantize: hqq solver on cpu ({})", quantize::hqq::hqq_cuda_available().error().message);
    } else {
        log_info("quantize: hqq solver on cpu (--device cpu)");
    }
    return dev;
}

// The staging directory the output is written into (moved into place at the end, see stage_output_dir).
Result<std::unique_ptr<StagedDir>> prepare_output_dir(const QuantizeJobOptions& o) {
    std::error_code ec;
    if (fs::exists(o.output, ec) && !fs::is_directory(o.output, ec))
        return make_error(ErrorCode::kUsage, "output '" + o.output + "' exists and is not a directory (method '" +
                                                 o.method + "' writes a safetensors directory)");
    if (fs::exists(o.output, ec) && fs::equivalent(o.output, o.input, ec))
        return make_error(ErrorCode::kUsage, "output directory '" + o.output + "' is the input model; choose another");
    return stage_output_dir(o.output);
}

} // namespace

Result<QuantizeJobReport> quantize_to_hf(const QuantizeJobOptions& o) {
    const auto t0 = std::chrono::steady_clock::now();
    LOWBIT_ASSIGN_OR_RETURN(quantize::hqq::HqqDevice hqq_device, resolve_hqq_device(o));
    LOWBIT_ASSIGN_OR_RETURN(Source src, hfq::open_source(o.input));
    LOWBIT_ASSIGN_OR_RETURN(HfMethod m, hfq::resolve_method(o, source_torch_dtype(src)));
    if (src.config_json.find("\"quantization_config\"") != std::string::npos)
        return make_error(ErrorCode::kUnsupported,
                          "'" + o.input + "' is already quantized (config.json has quantization_config)");
    if (src.tensors.empty())
        return make_error(ErrorCode::kBadInput, "'" + o.input +
                                                    "' has no tensors (a vocabulary-only GGUF?): there are no weights "
                                                    "to quantize, expected a model with its tensors");
    for (const SourceTensor& t : src.tensors)
        if (hfq::is_decoder_linear(t)) LOWBIT_TRY(hfq::check_linear(m, t.name, t.shape));
    LOWBIT_ASSIGN_OR_RETURN(std::unique_ptr<StagedDir> staged, prepare_output_dir(o));
    const std::string& dir = staged->path();

    QuantizeJobReport report;
    report.method = m.method;
    report.output = o.output;
    Outputs out;
    ProgressBar bar("quantize", static_cast<int64_t>(src.tensors.size()),
                    o.progress && ProgressBar::stderr_is_terminal());
    for (const SourceTensor& t : src.tensors) {
        bar.set_suffix(t.name);
        LOWBIT_TRY(hfq::is_decoder_linear(t) ? quantize_linear(src, t, m, hqq_device, out) : keep_tensor(src, t, out));
        report.n_params += t.shape.n_elems();
        bar.tick();
    }
    bar.finish();

    safetensors::WriteOptions wo;
    wo.metadata = {{"format", "pt"}, {"lowbit.method", m.method}};
    wo.max_shard_bytes = kMaxShardBytes;
    LOWBIT_ASSIGN_OR_RETURN(std::vector<std::string> written,
                            safetensors::write_safetensors(dir + "/model.safetensors", out.tensors, wo));
    LOWBIT_TRY(write_configs(src, m, dir));
    LOWBIT_ASSIGN_OR_RETURN(std::vector<std::string> tok, copy_tokenizer_files(src, dir));

    written.push_back(dir + "/config.json");
    written.push_back(dir + "/generation_config.json");
    written.insert(written.end(), tok.begin(), tok.end());
    std::error_code ec;
    for (const auto& p : written) report.file_bytes += fs::file_size(p, ec);
    LOWBIT_TRY(staged->commit());
    for (auto& [type, row] : out.rows) {
        report.n_bytes += row.n_bytes;
        report.rows.push_back(row);
    }
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return report;
}

} // namespace lowbit::pipeline
