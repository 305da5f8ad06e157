// SPDX-License-Identifier: MIT
// load_vocab / load_tokenizer: dispatch on the path (directory -> Hugging Face, file -> GGUF).
#include "runtime/tokenizer/load.h"

#include "format/gguf/gguf_model.h"
#include "format/hf/tokenizer_json.h"

#include <cerrno>
#include <cstring>
#include <sys/stat.h>

namespace lowbit::tokenizer {

Result<format::VocabData> load_vocab(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return make_error(ErrorCode::kIo, path + ": cannot open model: " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        struct stat tj {};
        if (::stat((path + "/tokenizer.json").c_str(), &tj) != 0)
            return make_error(ErrorCode::kBadInput, path + ": directory has no tokenizer.json (expected a Hugging "
                                                           "Face model folder or a GGUF file)");
        auto vocab = hf::parse_hf_tokenizer(path);
        if (!vocab.ok()) return vocab.error().with_context(path + "/tokenizer.json");
        return vocab;
    }
    auto file = gguf::File::open(path);
    if (!file.ok()) return std::move(file).error(); // the reader's message starts with the path
    auto vocab = gguf::vocab_from_gguf(**file);
    if (!vocab.ok()) return vocab.error().with_context(path);
    return vocab;
}

Result<Tokenizer> load_tokenizer(const std::string& path) {
    LOWBIT_ASSIGN_OR_RETURN(format::VocabData vocab, load_vocab(path));
    auto tok = Tokenizer::create(vocab);
    if (!tok.ok()) return tok.error().with_context(path);
    return tok;
}

} // namespace lowbit::tokenizer
