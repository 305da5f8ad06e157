// SPDX-License-Identifier: MIT
// The pre-tokenizer table (see pre_tokenizers.h). Regexes are llama.cpp's (src/llama-vocab.cpp,
// llm_tokenizer_bpe) except where llama.cpp rewrites a tokenizer.json pattern for std::regex - then the
// tokenizer.json original, which lowbit's engine runs as written (Unicode letter cases, (?i:...), possessive
// quantifiers, \p{Han} and class intersection) and which Hugging Face tokenizers agrees with on non-ASCII text
// where llama.cpp's rewrite approximates (e.g. "éÉ" is two words under the case-aware patterns).
#include "format/pre_tokenizers.h"

namespace lowbit::format {
namespace {

// GPT-2's pattern as llama.cpp writes it (the tokenizer.json ByteLevel regex ends in an extra "|\s+", which
// splits the same: a whitespace run the rest leaves unmatched is a piece either way).
constexpr const char* kGpt2 = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";
// Llama 3's pattern with the (?i:...) contractions spelled out, as llama.cpp does.
constexpr const char* kLlama3 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// Qwen2: as Llama 3 with single digits.
constexpr const char* kQwen2 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// GPT-4o (o200k) as in its tokenizer.json.
constexpr const char* kGpt4o =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// Hugging Face spellings of patterns a row writes differently -> the row's spelling.
const std::pair<const char*, const char*> kHfSpellings[] = {
    {R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re", kGpt2},
    {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re",
     kLlama3},
    {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re",
     kQwen2},
};

} // namespace

const std::vector<PreTokenizerRow>& pre_tokenizer_rows() {
    // names; regexes; ignore_merges, byte_encode, escape_whitespace, whole_newline_words
    static const std::vector<PreTokenizerRow> kRows = {
        // llama.cpp's default: no or an unknown tokenizer.ggml.pre in old files
        {{"default", ""},
         {R"re([\p{P}\$\+<=>\^~\|]+)re",
          R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re", R"re(\p{N}+)re",
          R"re([0-9][0-9][0-9])re"},
         false,
         true,
         false,
         false},
        // Llama 3
        {{"llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"},
         {kLlama3},
         true,
         true,
         false,
         false},
        // GLM-4/5: Llama 3's pattern and merges ignored
        {{"glm4", "glm5"}, {kLlama3}, true, true, false, false},
        // Llama 3's pattern, merges applied
        {{"dbrx", "smaug-bpe", "chatglm-bpe"}, {kLlama3}, false, true, false, false},
        // MiniCPM 5: 1-3 digit groups, then Llama 3's pattern with \p{N}+
        {{"minicpm5"},
         {R"re(\p{N}{1,3})re",
          R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         true,
         true,
         false,
         false},
        // Jais 2: Llama 3's pattern with cascading whitespace runs
        {{"jais-2"},
         {R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1})re"},
         false,
         true,
         false,
         false},
        // Laguna: lines, then Qwen2's pattern
        {{"laguna"}, {R"re([^\n]+|[\n]+)re", kQwen2}, false, true, false, false},
        // DeepSeek LLM
        {{"deepseek-llm"},
         {R"re([\r\n])re",
          R"re(\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+)re",
          R"re(\s?[!-/:-~！-／：-～‘-‟　-。]+)re", R"re(\s+$)re", R"re([一-龥ࠀ-一가-퟿]+)re", R"re(\p{N}+)re"},
         false,
         true,
         false,
         false},
        // DeepSeek Coder
        {{"deepseek-coder"},
         {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", R"re([一-龥ࠀ-一가-퟿]+)re", R"re(\p{N})re"},
         false,
         true,
         false,
         false},
        // DeepSeek V3
        {{"deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"},
         {R"re(\p{N}{1,3})re", R"re([一-龥぀-ゟ゠-ヿ]+)re",
          R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         false,
         true,
         false,
         false},
        // Spark 2.5
        {{"spark2_5"},
         {R"re(\p{N}{1,3})re", R"re([一-龥぀-ゟ゠-ヿ]+)re",
          R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+|[\r\n]|\s+(?!\S)|\s+)re",
          R"re(\p{N})re"},
         false,
         true,
         false,
         false},
        // AFMoE: digit runs in groups of 3 from the right (llama.cpp's \p{AFMoE_digits}, as a lookahead), CJK, words
        {{"afmoe"},
         {R"re(\p{N}{1,3}(?=(?:\p{N}{3})*(?!\p{N})))re",
          R"re([一-鿿㐀-䶿豈-﫿぀-ゟ゠-ヿ･-ﾟ⼀-⿟เ-๿຀-໿ក-៿က-႟ꩠ-ꩿꧠ-꧿가-힯ᄀ-ᇿ]+)re",
          R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         false,
         true,
         false,
         false},
        // Youtu
        {{"youtu"},
         {R"re([가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+)re",
          R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         true,
         true,
         false,
         false},
        // Falcon
        {{"falcon"},
         {R"re([\p{P}\$\+<=>\^~\|`]+)re",
          R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re", R"re([0-9][0-9][0-9])re"},
         false,
         true,
         false,
         false},
        // StarCoder and others: single digits, then GPT-2's pattern
        {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"},
         {R"re(\p{N})re", kGpt2},
         false,
         true,
         false,
         false},
        // GPT-2
        {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
          "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "exaone4", "mpt", "olmo", "jais", "trillion",
          "granite-docling"},
         {kGpt2},
         false,
         true,
         false,
         false},
        // Qwen2: as Llama 3 with single digits
        {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open", "grok-2"},
         {kQwen2},
         false,
         true,
         false,
         false},
        // Qwen3.5: letters with marks
        {{"qwen35"},
         {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         false,
         true,
         false,
         false},
        // Ufakzeka: Qwen2 without the contractions
        {{"ufakzeka"},
         {R"re([^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         false,
         true,
         false,
         false},
        // Seed-Coder
        {{"seed-coder"},
         {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         false,
         true,
         false,
         false},
        // Bailing MoE (possessive quantifiers, as in its tokenizer.json)
        {{"bailingmoe", "bailingmoe2", "llada-moe"},
         {R"re('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)re"},
         false,
         true,
         false,
         false},
        // EXAONE MoE: letter runs joined by single spaces
        {{"exaone-moe"},
         {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+)re"},
         false,
         true,
         false,
         false},
        // Poro, BLOOM, GPT-3 Finnish
        {{"poro-chat", "bloom", "gpt3-finnish"}, {R"re( ?[^(\s|.,!?…。，、।۔،)]+)re"}, false, true, false, false},
        // Viking
        {{"viking"}, {R"re( ?[^(\s|.,!?…。，、।۔،)]+)re", R"re(\p{N})re"}, false, true, false, false},
        // Tekken (Mistral Nemo): case-aware words, single digits
        {{"tekken"},
         {R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         true,
         true,
         false,
         false},
        // Chameleon
        {{"chameleon"},
         {R"re(<sentinel:[0-9]+>)re", R"re((IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z)re", R"re(([\t\n]|    |  ))re",
          R"re(\p{N})re", R"re([\p{P}!-/:-@\[-`{-~])re",
          R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re"},
         false,
         true,
         false,
         false},
        // GPT-4o (o200k): case-aware words, 1-3 digits
        {{"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"}, {kGpt4o}, false, true, false, false},
        // Granite embedding multilingual 97m: GPT-4o's pattern, merges ignored
        {{"granite-embed-multi-97m"}, {kGpt4o}, true, true, false, false},
        // Tiny Aya: digit groups of 3 from the right up to a word boundary, then GPT-4o's pattern
        {{"tiny_aya", "cohere2moe"}, {R"re(\d{1,3}(?=(?:\d{3})*\b))re", kGpt4o}, false, true, false, false},
        // Kimi K2: Han runs, then GPT-4o-style words without Han
        {{"kimi-k2"},
         {R"re([\p{Han}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
         false,
         true,
         false,
         false},
        // SuperBPE: digit runs, split before each group of 3 counted from the right
        {{"superbpe"}, {R"re(\p{N}+)re", R"re((?=(\d{3})+(?!\d)))re"}, false, true, false, false},
        // Gemma 4: SentencePiece-style BPE on raw UTF-8 with spaces as U+2581; split only at newlines
        {{"gemma4", "granite-embed-multi-311m"}, {R"re([^\n]+|[\n]+)re"}, false, false, true, true},
        // Sarvam MoE: as Gemma 4
        {{"sarvam-moe"}, {R"re([^\n]+|[\n]+)re"}, false, false, true, false},
        // Whitespace-separated words on raw UTF-8
        {{"whitespace"}, {R"re(\S+)re"}, false, false, false, false},
    };
    return kRows;
}

const PreTokenizerRow* find_pre_tokenizer(std::string_view name) {
    for (const PreTokenizerRow& row : pre_tokenizer_rows())
        for (const std::string& n : row.names)
            if (n == name) return &row;
    return nullptr;
}

const PreTokenizerRow* find_pre_tokenizer_by_regexes(const std::vector<std::string>& regexes) {
    std::vector<std::string> spelled;
    for (const std::string& re : regexes) {
        // Control characters written as themselves (tokenizer.json "[\r\n]" decodes to CR LF) -> escapes.
        std::string escaped;
        for (char c : re) escaped += c == '\r' ? "\\r" : c == '\n' ? "\\n" : c == '\t' ? "\\t" : std::string(1, c);
        for (const auto& [hf, ours] : kHfSpellings)
            if (escaped == hf) escaped = ours;
        spelled.push_back(std::move(escaped));
    }
    for (const PreTokenizerRow& row : pre_tokenizer_rows())
        if (row.regexes == spelled) return &row;
    return nullptr;
}

std::string pre_tokenizer_name_list() {
    std::string out;
    for (const PreTokenizerRow& row : pre_tokenizer_rows()) {
        for (const std::string& n : row.names) {
            if (n.empty()) continue;
            if (!out.empty()) out += ", ";
            out += n;
        }
    }
    return out;
}

} // namespace lowbit::format
