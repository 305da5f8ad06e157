// SPDX-License-Identifier: MIT
// Files: read-only memory maps (the runtime maps weights instead of copying them), whole-file reads, and
// atomic writes (write to "<path>.tmp.<pid>", fsync, rename) so a crash never leaves a half-written model.
#pragma once

#include "core/error.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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

// Temporary paths removed when the process is stopped by SIGTERM, SIGINT or SIGHUP (issue #15): while a
// TempRegistration lives, a signal handler (async-signal-safe: unlink, and for a directory getdents64 + unlinkat
// of its flat contents + rmdir) removes `path`, then re-raises the signal with its default action. At most 16
// paths at a time; beyond that a path is simply not covered (the next run's remove_stale_temps catches it).
class TempRegistration {
  public:
    TempRegistration(const std::string& path, bool is_dir);
    ~TempRegistration();
    TempRegistration(const TempRegistration&) = delete;
    TempRegistration& operator=(const TempRegistration&) = delete;

  private:
    int slot_ = -1;
};

// The temporary name of `path` for this process: "<path>.tmp.<pid>" (trailing '/' of a directory dropped).
std::string temp_path_for(const std::string& path);
// Removes "<path>.tmp.<pid>" files and directories beside `path` left by processes that no longer exist (a
// SIGKILL, a power loss); a "<path>.old.<pid>" directory (a replaced model set aside, see StagedDir) is renamed
// back to `path` when `path` is missing, else removed. Best effort: failures are ignored.
void remove_stale_temps(const std::string& path);

// StagedDir: a directory output written in full under "<dir>.tmp.<pid>" and moved into place by commit():
// an atomic exchange with an existing `dir` (renameat2 RENAME_EXCHANGE; where the file system lacks it, the old
// `dir` is renamed aside to "<dir>.old.<pid>" first), then the old tree is removed. A kill at any moment leaves
// `dir` holding the old complete model or the new one (or, in the fallback's window between two renames,
// nothing, with the old one restored by the next run). Destroying it without commit() removes the staging tree.
// Test hook: with LOWBIT_TEST_STOP_AT_COMMIT=<signal number> in the environment, the first AtomicWriter::commit or
// StagedDir::commit raises that signal just before renaming (tests/e2e/harden_interrupt_test.cpp). The fallback:
// LOWBIT_TEST_NO_RENAME_EXCHANGE=1 takes it even where the exchange works; LOWBIT_TEST_STOP_AFTER_ASIDE=<signal>
// raises the signal in its window (old tree set aside, new one not yet in place).
class StagedDir {
  public:
    static Result<std::unique_ptr<StagedDir>> create(const std::string& dir);
    ~StagedDir();
    const std::string& path() const { return staging_; } // where to write
    const std::string& final_path() const { return dir_; }
    Status commit();

  private:
    StagedDir() = default;
    std::string dir_, staging_;
    std::unique_ptr<TempRegistration> reg_;
    bool committed_ = false;
};

// AtomicWriter: buffered writes into a temporary file beside `path`; commit() flushes, fsyncs and renames.
// Destroying it without commit() removes the temporary file.
// Besides the sequential write(), skip(n) reserves the next n bytes and write_at() fills them from any thread
// (pwrite at an absolute offset below offset(); ranges written by write_at never overlap the sequential ones), so
// a producer can write a tensor's pieces in parallel, in any order. Written data is handed to the kernel's
// write-back as it accumulates (sync_file_range, every kWritebackBytes), so commit()'s fsync waits for little.
class AtomicWriter {
  public:
    static constexpr uint64_t kBufferBytes = 4ull << 20;
    static constexpr uint64_t kWritebackBytes = 64ull << 20;

    static Result<std::unique_ptr<AtomicWriter>> create(const std::string& path);
    ~AtomicWriter();
    Status write(const void* data, uint64_t n_bytes);
    Status write(std::string_view s) { return write(s.data(), s.size()); }
    Status write_zeros(uint64_t n_bytes);
    // Reserves [offset(), offset() + n_bytes) for write_at and moves offset() past it. Errors on overflow.
    Status skip(uint64_t n_bytes);
    // Thread-safe: writes n_bytes at absolute `offset`, inside the range reserved by the last skip().
    Status write_at(uint64_t offset, const void* data, uint64_t n_bytes) const;
    uint64_t offset() const { return offset_; }
    Status commit();

  private:
    AtomicWriter() = default;
    Status flush();
    Status pwrite_all(uint64_t offset, const void* data, uint64_t n_bytes) const;
    std::string path_, tmp_path_;
    int fd_ = -1;
    std::vector<uint8_t> buf_; // sequential bytes at [offset_ - buf_.size(), offset_)
    uint64_t offset_ = 0;
    uint64_t reserved_begin_ = 0, reserved_end_ = 0; // the last skip()'s range
    mutable std::atomic<uint64_t> unsynced_{0};
    bool committed_ = false;
    std::unique_ptr<TempRegistration> reg_;
};

} // namespace lowbit
