// SPDX-License-Identifier: MIT
// tokenizer.json parsing for BPE vocabularies (byte-level "gpt2" and byte-fallback "llama" kinds).
#include "format/hf/tokenizer_json.h"

#include "core/file.h"
#include "core/log.h"
#include "format/pre_tokenizers.h"

#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

namespace lowbit::hf {
namespace {

using json = nlohmann::json;
using format::TokenType;

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

Error bad(const std::string& msg) {
    return make_error(ErrorCode::kBadInput, "tokenizer.json: " + msg);
}

// Visits a pre-tokenizer / normalizer / post-processor node and its Sequence children.
template <class F> void visit(const json& node, const char* list_key, F&& f) {
    if (!node.is_object()) return;
    f(node);
    if (node.contains(list_key) && node[list_key].is_array())
        for (const json& c : node[list_key]) visit(c, list_key, f);
}

// The GPT-2 regex that Hugging Face's ByteLevel pre-tokenizer applies when use_regex is true.
constexpr const char* kByteLevelRegex =
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";

// "pre" name and whether the pre-tokenizer is byte-level. The splitting steps of the pre_tokenizer (Split
// regexes, Digits, ByteLevel's own regex), in order, are looked up in the pre-tokenizer table; when the model
// says ignore_merges, the first row with that flag is preferred among rows with the same regexes.
std::string detect_pre(const json& root, const json& model, bool& byte_level) {
    byte_level = false;
    if (!root.contains("pre_tokenizer") || root["pre_tokenizer"].is_null()) return "default";
    std::vector<std::string> steps;
    bool unknown_step = false;
    visit(root["pre_tokenizer"], "pretokenizers", [&](const json& n) {
        const std::string type = n.value("type", "");
        if (type == "ByteLevel") {
            byte_level = true;
            if (n.value("use_regex", true)) steps.push_back(kByteLevelRegex);
        } else if (type == "Split" && n.contains("pattern") && n["pattern"].is_object()) {
            const json& p = n["pattern"];
            if (p.contains("Regex") && p["Regex"].is_string())
                steps.push_back(p["Regex"].get<std::string>());
            else
                unknown_step = true; // a literal String pattern: no row spells one
        } else if (type == "Digits") {
            steps.push_back(n.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+");
        } else if (type != "Sequence") {
            unknown_step = true;
        }
    });
    const format::PreTokenizerRow* row = unknown_step ? nullptr : format::find_pre_tokenizer_by_regexes(steps);
    if (row && model.contains("ignore_merges") && model["ignore_merges"].is_boolean()) {
        const bool ignore_merges = model["ignore_merges"].get<bool>();
        for (const format::PreTokenizerRow& r : format::pre_tokenizer_rows()) {
            if (r.regexes == row->regexes && r.ignore_merges == ignore_merges) {
                row = &r;
                break;
            }
        }
    }
    if (!row) {
        log_warn("tokenizer.json: unknown pre-tokenizer; using tokenizer.ggml.pre = \"default\"");
        return "default";
    }
    return row->names[0];
}

// A token name from tokenizer_config.json: a string or {"content": ...}.
std::string token_name(const json& cfg, const char* key) {
    if (!cfg.contains(key)) return "";
    const json& v = cfg[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return "";
}

bool is_byte_token(const std::string& t) {
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
    return t.size() == 6 && t[0] == '<' && t[1] == '0' && t[2] == 'x' && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

// Fills tokens/types from model.vocab + added_tokens.
Status fill_tokens(const json& root, const json& model, int64_t n_vocab_min, format::VocabData& v) {
    if (!model.contains("vocab") || !model["vocab"].is_object()) return bad("model has no 'vocab' object");
    std::map<int64_t, std::string> by_id;
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
        if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > (1 << 24))
            return bad("vocab entry '" + it.key() + "' has an invalid id");
        if (!by_id.emplace(it->get<int64_t>(), it.key()).second)
            return bad("id " + std::to_string(it->get<int64_t>()) + " is used by two vocab entries");
    }
    std::map<int64_t, bool> added; // id -> special
    if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
        for (const json& a : root["added_tokens"]) {
            if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
                !a["content"].is_string())
                return bad("added_tokens entry without integer 'id' and string 'content'");
            const int64_t id = a["id"].get<int64_t>();
            if (id < 0 || id > (1 << 24)) return bad("added token id " + std::to_string(id) + " out of range");
            by_id[id] = a["content"].get<std::string>();
            added[id] = a.value("special", false);
        }
    }
    int64_t n = by_id.empty() ? 0 : by_id.rbegin()->first + 1;
    // Ids are dense in practice; a lone huge id would make the table (and every lookup structure built from it)
    // millions of padding entries long. Gaps are allowed up to kMaxIdGaps in all.
    constexpr int64_t kMaxIdGaps = 4096;
    const int64_t n_entries = static_cast<int64_t>(by_id.size());
    if (n > n_entries + kMaxIdGaps)
        return bad(fmt::format("token id {} ('{}') is beyond the {} vocabulary entries: ids must stay below {} "
                               "(the entry count + {} gaps)",
                               by_id.rbegin()->first, printable(by_id.rbegin()->second), n_entries,
                               n_entries + kMaxIdGaps, kMaxIdGaps));
    if (n_vocab_min > n) n = n_vocab_min;
    v.tokens.resize(static_cast<size_t>(n));
    v.token_types.assign(static_cast<size_t>(n), TokenType::kNormal);
    for (int64_t i = 0; i < n; ++i) {
        auto it = by_id.find(i);
        const auto ui = static_cast<size_t>(i);
        if (it == by_id.end()) {
            v.tokens[ui] = "[PAD" + std::to_string(i) + "]";
            v.token_types[ui] = TokenType::kUnused;
            continue;
        }
        v.tokens[ui] = it->second;
        if (auto a = added.find(i); a != added.end())
            v.token_types[ui] = a->second ? TokenType::kControl : TokenType::kUserDefined;
    }
    return ok_status();
}

Status fill_merges(const json& model, format::VocabData& v) {
    if (!model.contains("merges")) return ok_status();
    if (!model["merges"].is_array()) return bad("'merges' is not a list");
    for (const json& m : model["merges"]) {
        if (m.is_string()) {
            v.merges.push_back(m.get<std::string>());
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            v.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
        } else {
            return bad("merge entry is neither \"a b\" nor [\"a\", \"b\"]");
        }
    }
    return ok_status();
}

int64_t id_of(const format::VocabData& v, const std::string& tok) {
    if (tok.empty()) return -1;
    for (size_t i = 0; i < v.tokens.size(); ++i)
        if (v.tokens[i] == tok) return static_cast<int64_t>(i);
    return -1;
}

// Whether the post-processor's TemplateProcessing puts a special token first (llama.cpp's add_bos fallback).
bool template_adds_bos(const json& root, int64_t bos_id) {
    bool adds = false;
    if (!root.contains("post_processor")) return false;
    visit(root["post_processor"], "processors", [&](const json& n) {
        if (n.value("type", "") != "TemplateProcessing" || !n.contains("single") || !n["single"].is_array() ||
            n["single"].empty())
            return;
        const json& first = n["single"][0];
        if (!first.contains("SpecialToken") || !n.contains("special_tokens")) return;
        const std::string id = first["SpecialToken"].value("id", "");
        const json& st = n["special_tokens"];
        if (st.contains(id) && st[id].contains("ids") && st[id]["ids"].is_array() && !st[id]["ids"].empty() &&
            st[id]["ids"][0].is_number_integer())
            adds = st[id]["ids"][0].get<int64_t>() == bos_id;
    });
    return adds;
}

Status apply_config(const json& root, const json& cfg, format::VocabData& v) {
    if (cfg.is_object()) {
        v.bos_id = id_of(v, token_name(cfg, "bos_token"));
        v.eos_id = id_of(v, token_name(cfg, "eos_token"));
        v.pad_id = id_of(v, token_name(cfg, "pad_token"));
        const int64_t unk = id_of(v, token_name(cfg, "unk_token"));
        if (unk >= 0) v.unk_id = unk;
        if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
            v.add_bos = cfg["add_bos_token"].get<bool>();
        else
            v.add_bos = v.bos_id >= 0 && template_adds_bos(root, v.bos_id);
        if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean())
            v.add_eos = cfg["add_eos_token"].get<bool>();
        if (cfg.contains("chat_template")) {
            const json& ct = cfg["chat_template"];
            if (ct.is_string()) {
                v.chat_template = ct.get<std::string>();
            } else if (ct.is_array()) {
                for (const json& t : ct)
                    if (t.is_object() && t.value("name", "") == "default" && t.contains("template") &&
                        t["template"].is_string())
                        v.chat_template = t["template"].get<std::string>();
            }
        }
    }
    return ok_status();
}

Result<json> parse(const std::string& text, const char* what) {
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        return make_error(ErrorCode::kBadInput, std::string(what) + " is not valid JSON: " + printable(e.what()));
    }
}

} // namespace

std::string pre_from_regex(const std::string& regex) {
    const format::PreTokenizerRow* row = format::find_pre_tokenizer_by_regexes({regex});
    return row ? row->names[0] : "";
}

namespace {
Result<format::VocabData> parse_tokenizer_json_impl(const std::string& tokenizer_json,
                                                    const std::string& tokenizer_config_json, int64_t n_vocab_min);
} // namespace

// A field of an unexpected JSON type makes nlohmann throw (json::value, get): a kBadInput, never an escape.
Result<format::VocabData> parse_tokenizer_json(const std::string& tokenizer_json,
                                               const std::string& tokenizer_config_json, int64_t n_vocab_min) {
    try {
        return parse_tokenizer_json_impl(tokenizer_json, tokenizer_config_json, n_vocab_min);
    } catch (const json::exception& e) {
        return bad(std::string("a field has an unexpected type: ") + printable(e.what()));
    }
}

namespace {
Result<format::VocabData> parse_tokenizer_json_impl(const std::string& tokenizer_json,
                                                    const std::string& tokenizer_config_json, int64_t n_vocab_min) {
    LOWBIT_ASSIGN_OR_RETURN(json root, parse(tokenizer_json, "tokenizer.json"));
    json cfg;
    if (!tokenizer_config_json.empty()) {
        LOWBIT_ASSIGN_OR_RETURN(cfg, parse(tokenizer_config_json, "tokenizer_config.json"));
    }
    if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) return bad("no 'model' object");
    const json& model = root["model"];
    const std::string type = model.value("type", "BPE");
    if (type != "BPE")
        return make_error(ErrorCode::kUnsupported,
                          "tokenizer.json: model type '" + type + "' is not supported (supported: BPE)");
    format::VocabData v;
    LOWBIT_TRY(fill_tokens(root, model, n_vocab_min, v));
    bool byte_level = false;
    const std::string pre = detect_pre(root, model, byte_level);
    const bool byte_fallback = model.value("byte_fallback", false) == true;
    if (byte_fallback || !byte_level) {
        // SentencePiece-style BPE: llama.cpp scores by rank; merges are implied by the scores.
        v.model = "llama";
        v.pre = "default";
        v.scores.resize(v.tokens.size());
        for (size_t i = 0; i < v.tokens.size(); ++i) {
            v.scores[i] = -static_cast<float>(i);
            if (v.token_types[i] == TokenType::kNormal && is_byte_token(v.tokens[i]))
                v.token_types[i] = TokenType::kByte;
        }
        if (model.contains("unk_token") && model["unk_token"].is_string()) {
            v.unk_id = id_of(v, model["unk_token"].get<std::string>());
            if (v.unk_id >= 0) v.token_types[static_cast<size_t>(v.unk_id)] = TokenType::kUnknown;
        }
        bool prefix = false;
        auto check_prefix = [&](const json& n) {
            const std::string t = n.value("type", "");
            if (t == "Prepend") prefix = true;
            if (t == "Metaspace" &&
                (n.value("add_prefix_space", false) == true || n.value("prepend_scheme", "") == "always" ||
                 n.value("prepend_scheme", "") == "first"))
                prefix = true;
        };
        if (root.contains("normalizer")) visit(root["normalizer"], "normalizers", check_prefix);
        if (root.contains("pre_tokenizer")) visit(root["pre_tokenizer"], "pretokenizers", check_prefix);
        v.add_space_prefix = prefix;
        v.add_bos = true; // SentencePiece default (tokenizer_config may override)
    } else {
        v.model = "gpt2";
        v.pre = pre;
        v.add_space_prefix = false;
        LOWBIT_TRY(fill_merges(model, v));
    }
    LOWBIT_TRY(apply_config(root, cfg, v));
    return v;
}
} // namespace

Result<format::VocabData> parse_hf_tokenizer(const std::string& dir, int64_t n_vocab_min) {
    const std::string p = dir + "/tokenizer.json";
    if (!file_exists(p)) return make_error(ErrorCode::kBadInput, "'" + dir + "' has no tokenizer.json");
    LOWBIT_ASSIGN_OR_RETURN(std::string text, read_file_to_string(p, 1ull << 30));
    std::string cfg;
    if (file_exists(dir + "/tokenizer_config.json")) {
        LOWBIT_ASSIGN_OR_RETURN(cfg, read_file_to_string(dir + "/tokenizer_config.json", 64u << 20));
    }
    auto r = parse_tokenizer_json(text, cfg, n_vocab_min);
    if (!r.ok()) return r.error().with_context(p);
    return r;
}

} // namespace lowbit::hf
