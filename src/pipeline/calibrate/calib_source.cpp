// SPDX-License-Identifier: MIT
// open_calibrated_source: contract in calib_source.h.
#include "pipeline/calibrate/calib_source.h"

#include "format/hf/hf_model.h"
#include "model/transformer.h"
#include "pipeline/calibrate/layer_view_store.h"

namespace lowbit::pipeline {

Result<CalibratedSource> open_calibrated_source(const std::string& input, const std::string& method,
                                                const CalibOptions& calib, int n_threads,
                                                const std::function<Status(const format::ModelConfig&)>& check) {
    if (!hf::is_hf_model_dir(input))
        return make_error(ErrorCode::kUnsupported, method +
                                                       " needs a Hugging Face model directory (config.json + "
                                                       "safetensors); '" +
                                                       input + "' is not one");
    LOWBIT_ASSIGN_OR_RETURN(format::ModelConfig config, hf::parse_hf_config(input));
    if (check) LOWBIT_TRY(check(config));
    if (config.max_position_embeddings > 0 && calib.seqlen > config.max_position_embeddings)
        return make_error(ErrorCode::kUsage, "--seqlen " + std::to_string(calib.seqlen) +
                                                 " is longer than the model context (" +
                                                 std::to_string(config.max_position_embeddings) + ")");
    CalibratedSource src;
    runtime::SessionOptions so;
    so.n_threads = n_threads;
    so.n_ctx = calib_session_ctx(calib); // the session only tokenizes / self-generates
    LOWBIT_ASSIGN_OR_RETURN(src.session, runtime::Session::open(input, so));
    LOWBIT_ASSIGN_OR_RETURN(src.samples, load_calib_samples(*src.session, calib));
    LOWBIT_ASSIGN_OR_RETURN(hf::HfModel model, hf::open_hf_model(input));
    src.config = model.config;
    src.store = std::move(model.store);
    return src;
}

Result<std::vector<float>> embed_samples(std::shared_ptr<const format::TensorStore> store,
                                         const format::ModelConfig& config, const CalibSamples& samples,
                                         const std::string& method) {
    if (samples.empty() || samples[0].empty())
        return make_error(ErrorCode::kUsage, method + " needs calibration samples");
    const int64_t seqlen = int64_t(samples[0].size()), hsz = config.hidden_size;
    for (const auto& s : samples)
        if (int64_t(s.size()) != seqlen) return make_error(ErrorCode::kUsage, "calibration samples differ in length");
    format::ModelConfig config1 = config;
    config1.n_layers = 1;
    std::vector<float> hidden(samples.size() * size_t(seqlen * hsz));
    auto view = std::make_shared<LayerViewStore>(store, 0);
    LOWBIT_ASSIGN_OR_RETURN(auto t, model::Transformer::create(view, config1, model::SourceFormat::kHf));
    for (size_t s = 0; s < samples.size(); ++s) t->embed(samples[s], hidden.data() + int64_t(s) * seqlen * hsz);
    return hidden;
}

} // namespace lowbit::pipeline
