// SPDX-License-Identifier: MIT
// Files: read-only memory maps (the runtime maps weights instead of copying them), whole-file reads, and
// atomic writes (write to "<path>.tmp.<pid>", fsync, rename) so a crash never leaves a half-written model.
#pragma once

#include "core/error.h"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

namespace lowbit {

class MappedFile {
  public:
    // Maps the whole file read-only. Empty files map to a null pointer with size 0.
    static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    const std::string& path() const { return path_; }
    // Drops the whole pages inside [offset, offset + n_bytes) from this process's memory (madvise DONTNEED):
    // the mapping is read-only and private, so a later access reads them back from the file. Used when a
    // tensor's bytes were consumed (e.g. repacked at load) so they stop counting in the resident set.
    void release(uint64_t offset, uint64_t n_bytes) const;

  private:
    MappedFile() = default;
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
    std::string path_;
};

Result<std::string> read_file_to_string(const std::string& path, uint64_t max_bytes = (1ull << 32));
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
Result<uint64_t> file_size(const std::string& path);

// AtomicWriter: buffered writes into a temporary file beside `path`; commit() flushes, fsyncs and renames.
// Destroying it without commit() removes the temporary file.
class AtomicWriter {
  public:
    static Result<std::unique_ptr<AtomicWriter>> create(const std::string& path);
    ~AtomicWriter();
    Status write(const void* data, uint64_t n_bytes);
    Status write(std::string_view s) { return write(s.data(), s.size()); }
    Status write_zeros(uint64_t n_bytes);
    uint64_t offset() const { return offset_; }
    Status commit();

  private:
    AtomicWriter() = default;
    std::string path_, tmp_path_;
    std::FILE* file_ = nullptr;
    uint64_t offset_ = 0;
    bool committed_ = false;
};

} // namespace lowbit
