// SPDX-License-Identifier: MIT
// SHA-256 (FIPS 180-4), incremental, for checking tensor bytes against published hashes (golden manifests,
// `lowbit inspect --sha256`). Not constant-time; not for secrets.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace lowbit::gguf {

class Sha256 {
  public:
    Sha256();
    void update(const void* data, uint64_t n_bytes);
    std::array<uint8_t, 32> digest(); // finalizes; call once
    std::string hex_digest();         // lowercase hex of digest()

  private:
    void block(const uint8_t* p);
    uint32_t h_[8];
    uint8_t buf_[64];
    uint64_t buf_len_ = 0, total_ = 0;
};

std::string sha256_hex(const void* data, uint64_t n_bytes);

} // namespace lowbit::gguf
