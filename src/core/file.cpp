// SPDX-License-Identifier: MIT
// POSIX implementations of MappedFile, whole-file reads and AtomicWriter.
#include "core/file.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace lowbit {
namespace {
Error io_error(const std::string& what, const std::string& path) {
    return make_error(ErrorCode::kIo, what + " '" + path + "': " + std::strerror(errno));
}
} // namespace

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_error("cannot open", path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        Error e = io_error("cannot stat", path);
        ::close(fd);
        return e;
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        return make_error(ErrorCode::kBadInput, "'" + path + "' is a directory, expected a file");
    }
    std::shared_ptr<MappedFile> f(new MappedFile());
    f->path_ = path;
    f->size_ = static_cast<uint64_t>(st.st_size);
    if (f->size_ > 0) {
        void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            Error e = io_error("cannot mmap", path);
            ::close(fd);
            return e;
        }
        f->data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
    return f;
}

void MappedFile::release(uint64_t offset, uint64_t n_bytes) const {
    if (!data_ || offset >= size_) return;
    const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
    const uint64_t begin = (uint64_t(reinterpret_cast<uintptr_t>(data_)) + offset + page - 1) / page * page;
    const uint64_t end =
        (uint64_t(reinterpret_cast<uintptr_t>(data_)) + std::min(size_, offset + n_bytes)) / page * page;
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

Result<std::string> read_file_to_string(const std::string& path, uint64_t max_bytes) {
    LOWBIT_ASSIGN_OR_RETURN(auto f, MappedFile::open(path));
    if (f->size() > max_bytes)
        return make_error(ErrorCode::kBadInput, "'" + path + "' is " + std::to_string(f->size()) +
                                                    " bytes, more than the limit of " + std::to_string(max_bytes));
    return std::string(reinterpret_cast<const char*>(f->data()), f->size());
}

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<uint64_t> file_size(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return io_error("cannot stat", path);
    return static_cast<uint64_t>(st.st_size);
}

Result<std::unique_ptr<AtomicWriter>> AtomicWriter::create(const std::string& path) {
    std::unique_ptr<AtomicWriter> w(new AtomicWriter());
    w->path_ = path;
    w->tmp_path_ = path + ".tmp." + std::to_string(::getpid());
    w->file_ = std::fopen(w->tmp_path_.c_str(), "wb");
    if (!w->file_) return io_error("cannot create", w->tmp_path_);
    std::setvbuf(w->file_, nullptr, _IOFBF, 1 << 20);
    return w;
}

AtomicWriter::~AtomicWriter() {
    if (file_) std::fclose(file_);
    if (!committed_) std::remove(tmp_path_.c_str());
}

Status AtomicWriter::write(const void* data, uint64_t n_bytes) {
    if (n_bytes == 0) return ok_status();
    if (std::fwrite(data, 1, n_bytes, file_) != n_bytes) return io_error("cannot write", tmp_path_);
    offset_ += n_bytes;
    return ok_status();
}

Status AtomicWriter::write_zeros(uint64_t n_bytes) {
    static const std::vector<uint8_t> zeros(4096, 0);
    while (n_bytes > 0) {
        const uint64_t n = n_bytes < zeros.size() ? n_bytes : zeros.size();
        LOWBIT_TRY(write(zeros.data(), n));
        n_bytes -= n;
    }
    return ok_status();
}

Status AtomicWriter::commit() {
    if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) return io_error("cannot flush", tmp_path_);
    std::fclose(file_);
    file_ = nullptr;
    if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) return io_error("cannot rename to", path_);
    committed_ = true;
    return ok_status();
}

} // namespace lowbit
