// SPDX-License-Identifier: MIT
// config.json parsing (defaults as transformers' LlamaConfig / Qwen2Config) and HF directory opening.
#include "format/hf/hf_model.h"

#include "core/file.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace lowbit::hf {
namespace {

using json = nlohmann::json;

struct ArchRow {
    const char* hf_name;
    const char* arch;
    bool default_attention_bias;
};
constexpr ArchRow kArchs[] = {
    {"LlamaForCausalLM", "llama", false},
    {"MistralForCausalLM", "llama", false},
    {"Qwen2ForCausalLM", "qwen2", true},
};

// nlohmann's messages quote the offending input; escape bytes that are not printable ASCII.
std::string printable(const std::string& s) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

Error bad(const std::string& label, const std::string& msg) {
    return make_error(ErrorCode::kBadInput, label + ": " + msg);
}

Result<int64_t> get_int(const json& j, const char* key, int64_t def, const std::string& label, bool required) {
    if (!j.contains(key) || j[key].is_null()) {
        if (required) return bad(label, std::string("missing integer field '") + key + "'");
        return def;
    }
    if (!j[key].is_number_integer()) return bad(label, std::string("field '") + key + "' is not an integer");
    return j[key].get<int64_t>();
}

Result<double> get_num(const json& j, const char* key, double def, const std::string& label) {
    if (!j.contains(key) || j[key].is_null()) return def;
    if (!j[key].is_number()) return bad(label, std::string("field '") + key + "' is not a number");
    return j[key].get<double>();
}

// bos/eos ids: an integer or a list of integers.
Result<std::vector<int64_t>> get_ids(const json& j, const char* key, const std::string& label) {
    std::vector<int64_t> ids;
    if (!j.contains(key) || j[key].is_null()) return ids;
    const json& v = j[key];
    if (v.is_number_integer()) {
        ids.push_back(v.get<int64_t>());
    } else if (v.is_array()) {
        for (const json& x : v) {
            if (!x.is_number_integer()) return bad(label, std::string("field '") + key + "' has a non-integer entry");
            ids.push_back(x.get<int64_t>());
        }
    } else {
        return bad(label, std::string("field '") + key + "' is neither an integer nor a list of integers");
    }
    return ids;
}

Status parse_rope_scaling(const json& j, format::RopeScaling& rs, const std::string& label) {
    if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return ok_status();
    const json& r = j["rope_scaling"];
    if (!r.is_object()) return bad(label, "'rope_scaling' is not an object");
    const char* tkey = r.contains("rope_type") ? "rope_type" : "type";
    if (!r.contains(tkey) || !r[tkey].is_string()) return bad(label, "'rope_scaling' has no 'rope_type' string");
    rs.type = r[tkey].get<std::string>();
    if (rs.type == "default") {
        rs.type.clear();
        return ok_status();
    }
    if (rs.type != "llama3" && rs.type != "linear")
        return make_error(ErrorCode::kUnsupported,
                          label + ": rope_scaling type '" + rs.type + "' is not supported (supported: llama3, linear)");
    LOWBIT_ASSIGN_OR_RETURN(double factor, get_num(r, "factor", 1.0, label));
    if (!(factor > 0) || !std::isfinite(factor))
        return bad(label, "rope_scaling " + rs.type + " has factor " + printable(r["factor"].dump()) +
                              ", expected a positive number");
    rs.factor = static_cast<float>(factor);
    if (rs.type == "llama3") {
        LOWBIT_ASSIGN_OR_RETURN(double lo, get_num(r, "low_freq_factor", 1.0, label));
        LOWBIT_ASSIGN_OR_RETURN(double hi, get_num(r, "high_freq_factor", 4.0, label));
        LOWBIT_ASSIGN_OR_RETURN(rs.original_max_position_embeddings,
                                get_int(r, "original_max_position_embeddings", 8192, label, false));
        rs.low_freq_factor = static_cast<float>(lo);
        rs.high_freq_factor = static_cast<float>(hi);
        if (!(rs.factor > 0) || !(rs.low_freq_factor > 0) || !(rs.high_freq_factor > rs.low_freq_factor) ||
            rs.original_max_position_embeddings <= 0)
            return bad(label, "rope_scaling llama3 needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
                              "original_max_position_embeddings > 0");
    }
    return ok_status();
}

Result<json> parse_json(const std::string& text, const std::string& label) {
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        return bad(label, "not valid JSON: " + printable(e.what()));
    }
}

} // namespace

namespace {
Result<format::ModelConfig> parse_hf_config_json_impl(const std::string& config_json,
                                                      const std::string& generation_config_json,
                                                      const std::string& label);
} // namespace

// A field of an unexpected JSON type makes nlohmann throw (json::value, get): a kBadInput, never an escape.
Result<format::ModelConfig> parse_hf_config_json(const std::string& config_json,
                                                 const std::string& generation_config_json, const std::string& label) {
    try {
        return parse_hf_config_json_impl(config_json, generation_config_json, label);
    } catch (const json::exception& e) {
        return bad(label, std::string("a field has an unexpected type: ") + printable(e.what()));
    }
}

namespace {
Result<format::ModelConfig> parse_hf_config_json_impl(const std::string& config_json,
                                                      const std::string& generation_config_json,
                                                      const std::string& label) {
    LOWBIT_ASSIGN_OR_RETURN(json j, parse_json(config_json, label));
    if (!j.is_object()) return bad(label, "not a JSON object");
    format::ModelConfig c;
    std::string supported;
    for (const auto& a : kArchs) supported += std::string(supported.empty() ? "" : ", ") + a.hf_name;
    if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
        !j["architectures"][0].is_string())
        return bad(label, "missing 'architectures' list (supported: " + supported + ")");
    c.hf_architecture = j["architectures"][0].get<std::string>();
    const ArchRow* row = nullptr;
    for (const auto& a : kArchs)
        if (c.hf_architecture == a.hf_name) row = &a;
    if (!row)
        return make_error(ErrorCode::kUnsupported,
                          "architecture '" + c.hf_architecture + "' is not supported (supported: " + supported + ")");
    c.arch = row->arch;
    LOWBIT_ASSIGN_OR_RETURN(c.vocab_size, get_int(j, "vocab_size", 0, label, true));
    LOWBIT_ASSIGN_OR_RETURN(c.hidden_size, get_int(j, "hidden_size", 0, label, true));
    LOWBIT_ASSIGN_OR_RETURN(c.intermediate_size, get_int(j, "intermediate_size", 0, label, true));
    LOWBIT_ASSIGN_OR_RETURN(c.n_layers, get_int(j, "num_hidden_layers", 0, label, true));
    LOWBIT_ASSIGN_OR_RETURN(c.n_heads, get_int(j, "num_attention_heads", 0, label, true));
    LOWBIT_ASSIGN_OR_RETURN(c.n_kv_heads, get_int(j, "num_key_value_heads", c.n_heads, label, false));
    if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.intermediate_size <= 0 || c.n_layers <= 0 || c.n_heads <= 0 ||
        c.n_kv_heads <= 0)
        return bad(label, "vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads and "
                          "num_key_value_heads must be positive");
    if (c.n_heads % c.n_kv_heads != 0)
        return bad(label, "num_attention_heads (" + std::to_string(c.n_heads) +
                              ") is not a multiple of num_key_value_heads (" + std::to_string(c.n_kv_heads) + ")");
    if (!j.contains("head_dim") && c.hidden_size % c.n_heads != 0)
        return bad(label, "hidden_size (" + std::to_string(c.hidden_size) +
                              ") is not a multiple of num_attention_heads (" + std::to_string(c.n_heads) +
                              ") and no head_dim is given");
    LOWBIT_ASSIGN_OR_RETURN(c.head_dim, get_int(j, "head_dim", c.hidden_size / c.n_heads, label, false));
    if (c.head_dim <= 0 || c.head_dim % 2 != 0) return bad(label, "head_dim must be positive and even");
    LOWBIT_ASSIGN_OR_RETURN(c.max_position_embeddings, get_int(j, "max_position_embeddings", 2048, label, false));
    LOWBIT_ASSIGN_OR_RETURN(double eps, get_num(j, "rms_norm_eps", 1e-6, label));
    LOWBIT_ASSIGN_OR_RETURN(double theta, get_num(j, "rope_theta", 10000.0, label));
    c.rms_norm_eps = static_cast<float>(eps);
    c.rope_theta = static_cast<float>(theta);
    LOWBIT_TRY(parse_rope_scaling(j, c.rope_scaling, label));
    c.tie_word_embeddings = j.value("tie_word_embeddings", false) == true;
    c.attention_bias = row->default_attention_bias;
    if (j.contains("attention_bias") && j["attention_bias"].is_boolean())
        c.attention_bias = j["attention_bias"].get<bool>();
    if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torch_dtype = j["torch_dtype"].get<std::string>();
    LOWBIT_ASSIGN_OR_RETURN(c.bos_token_ids, get_ids(j, "bos_token_id", label));
    LOWBIT_ASSIGN_OR_RETURN(c.eos_token_ids, get_ids(j, "eos_token_id", label));
    if (!generation_config_json.empty()) {
        const std::string glabel = "generation_config.json";
        LOWBIT_ASSIGN_OR_RETURN(json g, parse_json(generation_config_json, glabel));
        if (!g.is_object()) return bad(glabel, "not a JSON object");
        LOWBIT_ASSIGN_OR_RETURN(auto bos, get_ids(g, "bos_token_id", glabel));
        LOWBIT_ASSIGN_OR_RETURN(auto eos, get_ids(g, "eos_token_id", glabel));
        if (!bos.empty()) c.bos_token_ids = bos;
        if (!eos.empty()) c.eos_token_ids = eos;
    }
    LOWBIT_TRY(format::check_model_config(c, label, format::ConfigSource::kHfConfig));
    return c;
}
} // namespace

Result<format::ModelConfig> parse_hf_config(const std::string& dir) {
    const std::string cpath = dir + "/config.json";
    if (!file_exists(dir)) // kIo (exit 1), like every command's open failure
        return make_error(ErrorCode::kIo, "cannot open '" + dir + "': no such file or directory");
    if (!file_exists(cpath))
        return make_error(ErrorCode::kBadInput, "'" + dir + "' is not a Hugging Face model folder (no config.json)");
    LOWBIT_ASSIGN_OR_RETURN(std::string text, read_file_to_string(cpath, 16u << 20));
    std::string gen;
    if (file_exists(dir + "/generation_config.json")) {
        LOWBIT_ASSIGN_OR_RETURN(gen, read_file_to_string(dir + "/generation_config.json", 16u << 20));
    }
    return parse_hf_config_json(text, gen, cpath);
}

Result<HfModel> open_hf_model(const std::string& dir) {
    HfModel m;
    m.dir = dir;
    LOWBIT_ASSIGN_OR_RETURN(m.config, parse_hf_config(dir));
    LOWBIT_ASSIGN_OR_RETURN(m.store, safetensors::Store::open(dir));
    return m;
}

bool is_hf_model_dir(const std::string& dir) {
    return is_directory(dir) && file_exists(dir + "/config.json");
}

} // namespace lowbit::hf
