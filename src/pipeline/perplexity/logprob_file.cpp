// SPDX-License-Identifier: MIT
// Writer and validating reader of the KL-divergence base file (layout in logprob_file.h).
#include "pipeline/perplexity/logprob_file.h"

#include "core/checked.h"
#include "core/thread_pool.h"
#include "pipeline/perplexity/log_softmax.h"

#include <cstring>

namespace lowbit::pipeline {

namespace {

void put_u32(uint8_t* p, uint32_t v) {
    std::memcpy(p, &v, 4);
}
uint32_t get_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

uint64_t row_bytes(int64_t n_vocab) {
    return static_cast<uint64_t>(packed_row_u16(n_vocab)) * sizeof(uint16_t);
}

} // namespace

Result<std::unique_ptr<LogProbWriter>> LogProbWriter::create(const std::string& path, const LogProbFileHeader& h,
                                                             std::span<const int32_t> tokens) {
    if (h.n_ctx < 3 || h.n_vocab < 1 || h.n_chunk < 1 || h.n_ctx > UINT32_MAX || h.n_vocab > UINT32_MAX ||
        h.n_chunk > UINT32_MAX)
        return make_error(ErrorCode::kInternal, "log-prob file header out of range");
    if (static_cast<int64_t>(tokens.size()) != h.n_ctx * h.n_chunk)
        return make_error(ErrorCode::kInternal, "log-prob file: token count does not match n_ctx * n_chunk");
    std::unique_ptr<LogProbWriter> w(new LogProbWriter());
    LOWBIT_ASSIGN_OR_RETURN(w->out_, AtomicWriter::create(path));
    w->header_ = h;
    uint8_t head[kLogProbHeaderBytes];
    std::memcpy(head, kLogProbMagic, 8);
    put_u32(head + 8, kLogProbVersion);
    put_u32(head + 12, static_cast<uint32_t>(h.n_ctx));
    put_u32(head + 16, static_cast<uint32_t>(h.n_vocab));
    put_u32(head + 20, static_cast<uint32_t>(h.n_chunk));
    put_u32(head + 24, static_cast<uint32_t>(h.first()));
    std::memcpy(head + 28, &h.bos_id, 4);
    LOWBIT_TRY(w->out_->write(head, sizeof(head)));
    LOWBIT_TRY(w->out_->write(tokens.data(), tokens.size() * sizeof(int32_t)));
    w->row_.resize(static_cast<size_t>(packed_row_u16(h.n_vocab)));
    return w;
}

Status LogProbWriter::write_row(std::span<const float> logits) {
    if (static_cast<int64_t>(logits.size()) != header_.n_vocab)
        return make_error(ErrorCode::kInternal, "log-prob row has " + std::to_string(logits.size()) +
                                                    " logits, expected n_vocab " + std::to_string(header_.n_vocab));
    if (n_rows_written_ >= header_.n_chunk * header_.rows_per_chunk())
        return make_error(ErrorCode::kInternal, "log-prob file: more rows than the header promises");
    pack_log_probs(logits, row_.data());
    ++n_rows_written_;
    return out_->write(row_.data(), row_.size() * sizeof(uint16_t));
}

Status LogProbWriter::write_rows(std::span<const float> logits) {
    const int64_t n_vocab = header_.n_vocab;
    if (static_cast<int64_t>(logits.size()) % n_vocab != 0)
        return make_error(ErrorCode::kInternal, "log-prob rows: size is not a multiple of n_vocab");
    const int64_t n = static_cast<int64_t>(logits.size()) / n_vocab;
    if (n_rows_written_ + n > header_.n_chunk * header_.rows_per_chunk())
        return make_error(ErrorCode::kInternal, "log-prob file: more rows than the header promises");
    const size_t slots = static_cast<size_t>(packed_row_u16(n_vocab));
    batch_.resize(static_cast<size_t>(n) * slots);
    ThreadPool::global().parallel_for(n, [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i)
            pack_log_probs(logits.subspan(size_t(i * n_vocab), size_t(n_vocab)), batch_.data() + size_t(i) * slots);
    });
    n_rows_written_ += n;
    return out_->write(batch_.data(), batch_.size() * sizeof(uint16_t));
}

Status LogProbWriter::commit() {
    const int64_t want = header_.n_chunk * header_.rows_per_chunk();
    if (n_rows_written_ != want)
        return make_error(ErrorCode::kInternal, "log-prob file: wrote " + std::to_string(n_rows_written_) +
                                                    " rows, header promises " + std::to_string(want));
    return out_->commit();
}

Result<LogProbReader> LogProbReader::open(const std::string& path) {
    LogProbReader r;
    r.path_ = path;
    LOWBIT_ASSIGN_OR_RETURN(r.file_, MappedFile::open(path));
    const uint8_t* p = r.file_->data();
    const uint64_t size = r.file_->size();
    auto bad = [&](const std::string& what) {
        return make_error(ErrorCode::kBadInput, "KL-divergence base file '" + path + "': " + what);
    };
    if (size < kLogProbHeaderBytes || std::memcmp(p, kLogProbMagic, 8) != 0)
        return bad("not a lowbit log-probability file (magic \"LBLOGPRB\" missing; write one with "
                   "'lowbit perplexity --kl-divergence-base FILE' on the base model)");
    const uint32_t version = get_u32(p + 8);
    if (version != kLogProbVersion)
        return bad("version " + std::to_string(version) + " is not supported (expected " +
                   std::to_string(kLogProbVersion) + ")");
    LogProbFileHeader& h = r.header_;
    h.n_ctx = get_u32(p + 12);
    h.n_vocab = get_u32(p + 16);
    h.n_chunk = get_u32(p + 20);
    std::memcpy(&h.bos_id, p + 28, 4);
    if (h.n_ctx < 3 || h.n_vocab < 1 || h.n_chunk < 1)
        return bad("header has n_ctx " + std::to_string(h.n_ctx) + ", n_vocab " + std::to_string(h.n_vocab) +
                   ", n_chunk " + std::to_string(h.n_chunk) + " (need n_ctx >= 3, n_vocab >= 1, n_chunk >= 1)");
    if (get_u32(p + 24) != static_cast<uint32_t>(h.first()))
        return bad("header field 'first' is " + std::to_string(get_u32(p + 24)) +
                   ", expected n_ctx/2 = " + std::to_string(h.first()));
    if (h.bos_id < -1 || h.bos_id >= h.n_vocab) return bad("bos_id " + std::to_string(h.bos_id) + " out of range");
    // All counts are < 2^32, so these products fit in 64 bits except for absurd headers: check them.
    const auto n_tokens = checked_mul(uint64_t(h.n_ctx), uint64_t(h.n_chunk));
    const auto n_rows = checked_mul(uint64_t(h.rows_per_chunk()), uint64_t(h.n_chunk));
    if (!n_tokens || !n_rows) return bad("header counts overflow");
    const auto tok_bytes = checked_mul(*n_tokens, 4);
    const auto rows_total = checked_mul(*n_rows, row_bytes(h.n_vocab));
    if (!tok_bytes || !rows_total) return bad("header counts overflow");
    const auto want = checked_add(kLogProbHeaderBytes, *tok_bytes);
    const auto want_all = want ? checked_add(*want, *rows_total) : std::nullopt;
    if (!want_all) return bad("header counts overflow");
    if (size != *want_all)
        return bad("expected " + std::to_string(*want_all) + " bytes for " + std::to_string(h.n_chunk) + " chunks of " +
                   std::to_string(h.n_ctx) + " tokens with n_vocab " + std::to_string(h.n_vocab) +
                   ", but the file has " + std::to_string(size) + " (truncated or not finished?)");
    r.tokens_.resize(*n_tokens);
    std::memcpy(r.tokens_.data(), p + kLogProbHeaderBytes, *tok_bytes);
    for (size_t i = 0; i < r.tokens_.size(); ++i)
        if (r.tokens_[i] < 0 || r.tokens_[i] >= h.n_vocab)
            return bad("token " + std::to_string(i) + " has id " + std::to_string(r.tokens_[i]) +
                       ", outside the vocabulary of " + std::to_string(h.n_vocab));
    r.rows_ = p + *want;
    return r;
}

const uint16_t* LogProbReader::row(int64_t chunk, int64_t r) const {
    const uint64_t index = uint64_t(chunk) * uint64_t(header_.rows_per_chunk()) + uint64_t(r);
    return reinterpret_cast<const uint16_t*>(rows_ + index * row_bytes(header_.n_vocab));
}

} // namespace lowbit::pipeline
