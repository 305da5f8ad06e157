// SPDX-License-Identifier: MIT
// Session: loading (HF directory or GGUF file) and LanguageModel::eval over the transformer.
#include "runtime/session.h"

#include "core/log.h"
#include "format/gguf/gguf_file.h"
#include "format/gguf/gguf_model.h"
#include "format/hf/hf_model.h"
#include "format/hf/tokenizer_json.h"
#include "model/quantized/quant_loader.h"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>
#include <map>
#include <sys/stat.h>

namespace lowbit::runtime {
namespace {

bool is_directory(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::unique_ptr<tokenizer::Tokenizer> make_tokenizer(Result<format::VocabData> vocab, const std::string& path) {
    if (!vocab.ok()) {
        log_warn("{}: no tokenizer loaded: {}", path, vocab.error().message);
        return nullptr;
    }
    auto tok = tokenizer::Tokenizer::create(*vocab);
    if (!tok.ok()) {
        log_warn("{}: no tokenizer loaded: {}", path, tok.error().message);
        return nullptr;
    }
    return std::make_unique<tokenizer::Tokenizer>(std::move(tok).value());
}

} // namespace

const char* device_name(Device d) {
    switch (d) {
    case Device::kCpu:
        return "cpu";
    case Device::kCuda:
        return "cuda";
    case Device::kAuto:
        return "auto";
    }
    return "?";
}

Result<Device> parse_device(const std::string& name) {
    std::string n = name;
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
    for (Device d : {Device::kCpu, Device::kCuda, Device::kAuto})
        if (n == device_name(d)) return d;
    return make_error(ErrorCode::kUsage, fmt::format("--device '{}' is not one of cpu, cuda, auto", name));
}

Result<std::unique_ptr<Session>> Session::build(std::shared_ptr<const format::TensorStore> store,
                                                const format::ModelConfig& config, model::SourceFormat source,
                                                const SessionOptions& o) {
    std::unique_ptr<Session> s(new Session());
    std::map<DType, uint64_t> by_dtype;
    for (const auto& t : store->tensors()) {
        s->model_bytes_ += t.n_bytes;
        s->n_params_ += t.shape.n_elems();
        if (t.shape.n_dims == 2) by_dtype[t.dtype] += t.n_bytes;
    }
    for (const auto& [dtype, bytes] : by_dtype)
        if (bytes > by_dtype[s->main_dtype_]) s->main_dtype_ = dtype;
    LOWBIT_ASSIGN_OR_RETURN(s->model_, model::Transformer::create(std::move(store), config, source, o.backend));
    const int64_t max_pos = s->model_->config().max_position_embeddings;
    const int64_t n_ctx = o.n_ctx > 0 ? o.n_ctx : (max_pos > 0 ? std::min<int64_t>(max_pos, 4096) : 2048);
    model::KvCacheOptions co;
    co.n_ctx = n_ctx, co.n_seq = o.n_seq, co.type = o.cache_type;
    if (o.device != Device::kCpu) {
        kernel::cuda::GpuEngineOptions go;
        go.n_seq = o.n_seq, go.n_ctx = n_ctx, go.max_tokens = std::clamp<int64_t>(o.n_batch, 1, 2048),
        go.device = o.gpu_index;
        auto engine = o.cache_type != DType::kF16
                          ? Result<std::unique_ptr<kernel::cuda::LlamaGpu>>(make_error(
                                ErrorCode::kUnsupported, fmt::format("the CUDA engine keeps its KV cache in f16 "
                                                                     "(--cache-type {} runs on the CPU only)",
                                                                     dtype_name(o.cache_type))))
                          : model::make_gpu_engine(*s->model_, go);
        if (engine.ok()) {
            s->gpu_ = std::move(engine).value();
            co.host_rows = false;
            log_info("CUDA engine on {}: weights {:.1f} MiB, KV cache {:.1f} MiB", s->gpu_->device_name(),
                     double(s->gpu_->weight_bytes()) / double(1 << 20),
                     double(s->gpu_->cache_bytes()) / double(1 << 20));
        } else if (o.device == Device::kAuto) {
            log_info("--device auto: running on the CPU ({})", engine.error().message);
        } else {
            return engine.error();
        }
    }
    LOWBIT_ASSIGN_OR_RETURN(s->cache_, s->model_->make_cache(co));
    log_debug("KV cache: {} x {} positions of {}, {:.1f} MiB{}", co.n_seq, n_ctx, dtype_name(co.type),
              double(s->cache_.bytes()) / double(1 << 20), s->gpu_ ? " (on the GPU)" : "");
    s->pool_ = std::make_unique<ThreadPool>(o.n_threads);
    kernel::set_blas_threads(s->pool_->n_threads());
    s->n_batch_ = std::max<int64_t>(o.n_batch, 1);
    return s;
}

Result<std::unique_ptr<Session>> Session::from_store(std::shared_ptr<const format::TensorStore> store,
                                                     const format::ModelConfig& config, model::SourceFormat source,
                                                     const SessionOptions& options,
                                                     std::unique_ptr<tokenizer::Tokenizer> tok) {
    LOWBIT_ASSIGN_OR_RETURN(auto s, build(std::move(store), config, source, options));
    s->tokenizer_ = std::move(tok);
    s->path_ = "<memory>";
    return s;
}

Result<std::unique_ptr<Session>> Session::open(const std::string& path, const SessionOptions& o) {
    std::unique_ptr<Session> s;
    if (is_directory(path)) {
        if (!hf::is_hf_model_dir(path))
            return make_error(ErrorCode::kBadInput,
                              fmt::format("{}: not a model: a Hugging Face model directory needs config.json", path));
        auto hf_model = hf::open_hf_model(path);
        if (!hf_model.ok()) return hf_model.error().with_context(path);
        std::shared_ptr<const format::TensorStore> store = std::move(hf_model->store);
        // A quantization_config (bitsandbytes, hqq, lowbit_rtn) swaps in the quantized loader's store.
        auto wrapped = model::quantized::wrap_quantized_dir(std::move(store), path, hf_model->config);
        if (!wrapped.ok()) return wrapped.error().with_context(path);
        store = std::move(wrapped).value();
        auto built = build(std::move(store), hf_model->config, model::SourceFormat::kHf, o);
        if (!built.ok()) return built.error().with_context(path);
        s = std::move(built).value();
        if (o.load_tokenizer) s->tokenizer_ = make_tokenizer(hf::parse_hf_tokenizer(path, 0), path);
    } else {
        LOWBIT_ASSIGN_OR_RETURN(std::shared_ptr<gguf::File> file, gguf::File::open(path));
        auto config = gguf::config_from_gguf(*file);
        if (!config.ok()) return config.error().with_context(path);
        auto built = build(file, *config, model::SourceFormat::kGguf, o);
        if (!built.ok()) return built.error().with_context(path);
        s = std::move(built).value();
        if (o.load_tokenizer) s->tokenizer_ = make_tokenizer(gguf::vocab_from_gguf(*file), path);
    }
    s->path_ = path;
    // Every token id the tokenizer can produce must have an embedding row: checked here, not mid-generation.
    if (s->tokenizer_ && s->tokenizer_->n_vocab() > s->model_->config().vocab_size)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("{}: the tokenizer has {} tokens (ids 0..{}) but the model's token embedding has "
                                      "{} rows (vocab_size): ids {} and above cannot be embedded",
                                      path, s->tokenizer_->n_vocab(), s->tokenizer_->n_vocab() - 1,
                                      s->model_->config().vocab_size, s->model_->config().vocab_size));
    return s;
}

std::string Session::explain_non_finite() const {
    return model::find_non_finite_weight(model_->weights(), model_->arch(), model_->source());
}

void Session::truncate(int64_t n_past) {
    cache_.truncate(0, n_past);
}

Status Session::decode(const model::Batch& batch, std::vector<float>& logits) {
    LOWBIT_TRY(model_->validate_batch(batch, cache_));
    logits.resize(size_t(batch.n_logits() * model_->config().vocab_size));
    if (gpu_) return model::gpu_forward(*gpu_, batch, cache_, logits.data());
    model_->forward(batch, cache_, logits.data(), pool_.get());
    return ok_status();
}

Status Session::copy_prefix(int64_t src, int64_t dst, int64_t n) {
    LOWBIT_TRY(cache_.copy_prefix(src, dst, n));
    if (gpu_) return gpu_->copy_prefix(src, dst, n);
    return ok_status();
}

Status Session::eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits) {
    const int64_t n = int64_t(tokens.size()), n_vocab = model_->config().vocab_size;
    if (n == 0) return make_error(ErrorCode::kUsage, "eval: no tokens given");
    const int64_t n_past = cache_.seq_len(0);
    if (n_past + n > cache_.n_ctx())
        return make_error(ErrorCode::kUsage,
                          fmt::format("eval: {} tokens after {} cached ones exceed the context of {} positions "
                                      "(raise --ctx-size or truncate)",
                                      n, n_past, cache_.n_ctx()));
    for (int64_t i = 0; i < n; ++i)
        if (tokens[size_t(i)] < 0 || tokens[size_t(i)] >= n_vocab)
            return make_error(ErrorCode::kUsage, fmt::format("eval: token id {} at index {} is outside the "
                                                             "vocabulary [0, {})",
                                                             tokens[size_t(i)], i, n_vocab));
    logits.resize(size_t((all_logits ? n : 1) * n_vocab));
    if (gpu_) { // one batch on slot 0; the engine steps through it max_tokens (= n_batch) at a time
        model::Batch b;
        for (int64_t t = 0; t < n; ++t) b.add(tokens[size_t(t)], int32_t(n_past + t), 0, all_logits || t == n - 1);
        return model::gpu_forward(*gpu_, b, cache_, logits.data());
    }
    for (int64_t begin = 0; begin < n; begin += n_batch_) {
        const int64_t len = std::min(n_batch_, n - begin);
        // Without all_logits every chunk writes its last-token row to the same place; the final chunk's stays.
        float* out = all_logits ? logits.data() + begin * n_vocab : logits.data();
        model_->forward(tokens.subspan(size_t(begin), size_t(len)), n_past + begin, cache_, all_logits, out,
                        pool_.get()); // sets slot 0's length to n_past + begin + len
    }
    return ok_status();
}

} // namespace lowbit::runtime
