// SPDX-License-Identifier: MIT
// `lowbit tokenize -m MODEL (-p TEXT | -f FILE) [--ids] [--no-bos] [--no-parse-special]`: print the token ids
// of a text for a GGUF file or a Hugging Face folder, like llama.cpp's llama-tokenize.
// Output: with --ids one line of space-separated ids, else one "<id> -> '<piece>'" line per token (pieces are
// raw bytes, as llama-tokenize prints them). Input must be valid UTF-8: other bytes are an error (exit 3)
// naming the first bad offset, because silently replacing them would tokenize a different text. An empty
// -f file is an error (exit 3); -p "" prints only what add_special adds (BOS).
#include "cli/commands.h"
#include "core/file.h"
#include "runtime/tokenizer/load.h"
#include "runtime/tokenizer/unicode.h"

#include <cstdio>
#include <fmt/format.h>
#include <string>

namespace lowbit::cli {
namespace {

struct TokenizeArgs {
    std::string model, prompt, file;
    bool ids = false, no_bos = false, no_parse_special = false;
};

Result<std::string> read_prompt(const TokenizeArgs& a, bool has_prompt) {
    std::string text;
    std::string what = "prompt";
    if (has_prompt) {
        text = a.prompt;
    } else {
        LOWBIT_ASSIGN_OR_RETURN(text, read_file_to_string(a.file));
        if (text.empty()) return make_error(ErrorCode::kBadInput, a.file + ": file is empty (nothing to tokenize)");
        what = a.file;
    }
    LOWBIT_TRY(tokenizer::check_utf8_text(text, what));
    return text;
}

Status run_tokenize(const TokenizeArgs& a, bool has_prompt, bool has_file) {
    if (has_prompt == has_file)
        return make_error(ErrorCode::kUsage, "tokenize needs exactly one of -p TEXT or -f FILE");
    LOWBIT_ASSIGN_OR_RETURN(const std::string text, read_prompt(a, has_prompt));
    LOWBIT_ASSIGN_OR_RETURN(const tokenizer::Tokenizer tok, tokenizer::load_tokenizer(a.model));
    const std::vector<int32_t> ids = tok.encode(text, !a.no_bos, !a.no_parse_special);
    std::string out;
    if (a.ids) {
        for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
        out += '\n';
    } else {
        for (const int32_t id : ids) out += fmt::format("{:6d} -> '{}'\n", id, tok.token_to_piece(id));
    }
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size())
        return make_error(ErrorCode::kIo, "cannot write the tokens to stdout");
    return ok_status();
}

} // namespace

CommandAction setup_tokenize(CLI::App& sub) {
    auto a = std::make_shared<TokenizeArgs>();
    sub.add_option("-m,--model", a->model, "GGUF file or Hugging Face folder with tokenizer.json")->required();
    CLI::Option* prompt = sub.add_option("-p,--prompt", a->prompt, "Text to tokenize");
    CLI::Option* file = sub.add_option("-f,--file", a->file, "File whose contents to tokenize");
    prompt->excludes(file);
    sub.add_flag("--ids", a->ids, "Print only the ids, space-separated on one line");
    sub.add_flag("--no-bos", a->no_bos, "Do not add BOS/EOS even if the vocabulary asks for them");
    sub.add_flag("--no-parse-special", a->no_parse_special,
                 "Tokenize control-token texts such as <|eot_id|> as plain text");
    return [a, prompt, file] { return run_tokenize(*a, prompt->count() > 0, file->count() > 0); };
}

} // namespace lowbit::cli
