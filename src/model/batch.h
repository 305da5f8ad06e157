// SPDX-License-Identifier: MIT
// Batch: the input of one forward step (llama.cpp's llama_batch): tokens that may belong to several sequences.
// For each token: its id, its sequence (a KvCache slot), its position in that sequence, and whether the caller
// wants its logits. The matmuls of a step run over all tokens at once (one GEMM per weight), so several
// sequences decoding together read each weight once per step — the point of continuous batching.
// Rules (checked by validate_batch): ids in the vocabulary; slots in [0, n_seq); the tokens of one slot appear
// in order at consecutive positions, the first at or before the slot's current length (a first position below
// it overwrites from there on, i.e. truncates); positions below n_ctx.
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit::model {

struct Batch {
    std::vector<int32_t> token;  // [n] ids
    std::vector<int32_t> pos;    // [n] position of each token in its sequence
    std::vector<int32_t> seq;    // [n] KvCache slot of each token
    std::vector<uint8_t> logits; // [n] 1 = return this token's logits

    void add(int32_t id, int32_t position, int32_t slot, bool want_logits) {
        token.push_back(id), pos.push_back(position), seq.push_back(slot), logits.push_back(want_logits ? 1 : 0);
    }
    void clear() { token.clear(), pos.clear(), seq.clear(), logits.clear(); }
    int64_t size() const { return int64_t(token.size()); }
    int64_t n_logits() const {
        int64_t n = 0;
        for (uint8_t l : logits) n += l;
        return n;
    }
};

} // namespace lowbit::model
