// SPDX-License-Identifier: MIT
// Opens a tokenizer from a model path: a GGUF file (its tokenizer.ggml.* metadata; vocab-only files are
// fine) or a Hugging Face model directory (tokenizer.json [+ tokenizer_config.json]).
#pragma once

#include "core/error.h"
#include "format/vocab.h"
#include "runtime/tokenizer/tokenizer.h"

#include <string>

namespace lowbit::tokenizer {

// Errors: kIo when `path` does not exist or cannot be read; kBadInput for a malformed file, a file that is
// not GGUF, or a directory without tokenizer.json; kUnsupported for vocabularies lowbit cannot tokenize.
// Messages start with the path.
Result<format::VocabData> load_vocab(const std::string& path);
Result<Tokenizer> load_tokenizer(const std::string& path);

} // namespace lowbit::tokenizer
