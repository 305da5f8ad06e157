// SPDX-License-Identifier: MIT
// POSIX implementations of MappedFile, whole-file reads and AtomicWriter.
#include "core/file.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <mutex>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

// ---- temporary paths removed on SIGTERM / SIGINT / SIGHUP ----
namespace {

namespace fs = std::filesystem;

constexpr int kTempSlots = 16;
constexpr size_t kTempPathMax = 4096;
struct TempSlot {
    std::atomic<int> state{0}; // 0 free, 1 being filled, 2 live
    bool is_dir = false;
    char path[kTempPathMax] = {};
};
TempSlot g_temp_slots[kTempSlots];
constexpr int kCleanupSignals[] = {SIGTERM, SIGINT, SIGHUP};

// Removes the entries of a flat directory, then the directory; async-signal-safe (raw syscalls, static buffer).
void remove_flat_dir_signal_safe(const char* dir) {
    const int fd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        alignas(8) static char buf[16384];
        for (int pass = 0; pass < 64; ++pass) { // unlinking while listing may skip entries: list again
            bool removed = false;
            ::lseek(fd, 0, SEEK_SET);
            for (;;) {
                const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
                if (n <= 0) break;
                for (long off = 0; off < n;) {
                    unsigned short reclen = 0;
                    std::memcpy(&reclen, buf + off + 16, sizeof reclen); // linux_dirent64: ino, off, reclen, type
                    const char* name = buf + off + 19;
                    if (!(name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))))
                        removed |= ::unlinkat(fd, name, 0) == 0;
                    if (reclen == 0) break;
                    off += reclen;
                }
            }
            if (!removed) break;
        }
        ::close(fd);
    }
    ::rmdir(dir);
}

void lowbit_remove_temps_and_reraise(int sig) {
    const int saved = errno;
    for (TempSlot& s : g_temp_slots) {
        if (s.state.load(std::memory_order_acquire) != 2) continue;
        if (s.is_dir)
            remove_flat_dir_signal_safe(s.path);
        else
            ::unlink(s.path);
    }
    errno = saved;
    ::signal(sig, SIG_DFL);
    ::raise(sig); // delivered with the default action (termination) once this handler returns
}

// Installs the handler for signals still at their default action (an ignored SIGHUP under nohup stays ignored,
// a handler someone else installed is kept).
void install_cleanup_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        for (int sig : kCleanupSignals) {
            struct sigaction old {};
            if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;
            struct sigaction sa {};
            sa.sa_handler = lowbit_remove_temps_and_reraise;
            sigemptyset(&sa.sa_mask);
            for (int other : kCleanupSignals) sigaddset(&sa.sa_mask, other);
            ::sigaction(sig, &sa, nullptr);
        }
    });
}

// LOWBIT_TEST_STOP_AT_COMMIT=SIG (tests only, documented in file.h): raise SIG just before the first commit
// (AtomicWriter or StagedDir), as a kill at that moment would.
void test_stop_hook() {
    static const char* sig = std::getenv("LOWBIT_TEST_STOP_AT_COMMIT");
    if (sig && *sig) {
        std::fflush(nullptr);
        ::raise(std::atoi(sig));
    }
}

// StagedDir::commit's fallback hooks (tests only, documented in file.h): LOWBIT_TEST_NO_RENAME_EXCHANGE=1 takes the
// rename-aside path as on a file system without RENAME_EXCHANGE; LOWBIT_TEST_STOP_AFTER_ASIDE=SIG raises SIG in
// that path's window, after the old directory is renamed aside and before the new one is renamed in.
bool test_no_rename_exchange() {
    const char* v = std::getenv("LOWBIT_TEST_NO_RENAME_EXCHANGE");
    return v && std::strcmp(v, "1") == 0;
}
void test_stop_after_aside_hook() {
    const char* sig = std::getenv("LOWBIT_TEST_STOP_AFTER_ASIDE");
    if (sig && *sig) {
        std::fflush(nullptr);
        ::raise(std::atoi(sig));
    }
}

bool all_digits(const std::string& s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

std::string strip_trailing_slashes(std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
}

} // namespace

TempRegistration::TempRegistration(const std::string& path, bool is_dir) {
    if (path.size() >= kTempPathMax) return;
    install_cleanup_handler();
    for (int i = 0; i < kTempSlots; ++i) {
        int expected = 0;
        if (!g_temp_slots[i].state.compare_exchange_strong(expected, 1)) continue;
        std::memcpy(g_temp_slots[i].path, path.c_str(), path.size() + 1);
        g_temp_slots[i].is_dir = is_dir;
        g_temp_slots[i].state.store(2, std::memory_order_release);
        slot_ = i;
        return;
    }
}

TempRegistration::~TempRegistration() {
    if (slot_ >= 0) g_temp_slots[slot_].state.store(0, std::memory_order_release);
}

std::string temp_path_for(const std::string& path) {
    return strip_trailing_slashes(path) + ".tmp." + std::to_string(::getpid());
}

void remove_stale_temps(const std::string& path_in) {
    const fs::path path(strip_trailing_slashes(path_in));
    const std::string base = path.filename().string();
    if (base.empty()) return;
    const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
    std::error_code ec;
    std::vector<std::pair<fs::path, bool>> stale; // (entry, is an ".old." tree)
    for (const auto& entry : fs::directory_iterator(parent, ec)) {
        const std::string name = entry.path().filename().string();
        for (const char* tag : {".tmp.", ".old."}) {
            const std::string prefix = base + tag;
            if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
            const std::string pid_text = name.substr(prefix.size());
            if (!all_digits(pid_text) || pid_text.size() > 9) continue;
            const long pid = std::stol(pid_text);
            if (pid <= 0 || pid == ::getpid()) continue;
            if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue; // alive (or not ours to judge)
            stale.emplace_back(entry.path(), tag[1] == 'o');
        }
    }
    for (const auto& [p, is_old] : stale) {
        if (is_old && !fs::exists(path, ec)) {
            fs::rename(p, path, ec); // a replaced model set aside by a run killed mid-commit: put it back
            if (!ec) continue;
        }
        fs::remove_all(p, ec);
    }
}

Result<std::unique_ptr<StagedDir>> StagedDir::create(const std::string& dir) {
    std::unique_ptr<StagedDir> d(new StagedDir());
    d->dir_ = strip_trailing_slashes(dir);
    d->staging_ = temp_path_for(d->dir_);
    remove_stale_temps(d->dir_);
    std::error_code ec;
    const fs::path parent = fs::path(d->dir_).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
    if (ec) return make_error(ErrorCode::kIo, "cannot create directory '" + parent.string() + "': " + ec.message());
    fs::remove_all(d->staging_, ec);
    d->reg_ = std::make_unique<TempRegistration>(d->staging_, true);
    if (!fs::create_directory(d->staging_, ec) || ec)
        return make_error(ErrorCode::kIo, "cannot create output directory '" + d->staging_ + "': " + ec.message());
    return d;
}

StagedDir::~StagedDir() {
    if (committed_) return;
    std::error_code ec;
    fs::remove_all(staging_, ec);
}

Status StagedDir::commit() {
    test_stop_hook();
    std::error_code ec;
    if (!fs::exists(dir_, ec)) {
        if (::rename(staging_.c_str(), dir_.c_str()) != 0) return io_error("cannot rename '" + staging_ + "' to", dir_);
    } else if (!test_no_rename_exchange() &&
               ::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, dir_.c_str(), RENAME_EXCHANGE) == 0) {
        fs::remove_all(staging_, ec); // now the old tree
    } else {
        const std::string old = strip_trailing_slashes(dir_) + ".old." + std::to_string(::getpid());
        if (::rename(dir_.c_str(), old.c_str()) != 0) return io_error("cannot rename '" + dir_ + "' to", old);
        test_stop_after_aside_hook();
        if (::rename(staging_.c_str(), dir_.c_str()) != 0) {
            Error e = io_error("cannot rename '" + staging_ + "' to", dir_);
            (void)::rename(old.c_str(), dir_.c_str());
            return e;
        }
        fs::remove_all(old, ec);
    }
    committed_ = true;
    reg_.reset();
    return ok_status();
}

Result<std::unique_ptr<AtomicWriter>> AtomicWriter::create(const std::string& path) {
    std::unique_ptr<AtomicWriter> w(new AtomicWriter());
    w->path_ = path;
    w->tmp_path_ = temp_path_for(path);
    remove_stale_temps(path);
    w->reg_ = std::make_unique<TempRegistration>(w->tmp_path_, false);
    w->fd_ = ::open(w->tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (w->fd_ < 0) return io_error("cannot create", w->tmp_path_);
    w->buf_.reserve(kBufferBytes);
    return w;
}

AtomicWriter::~AtomicWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) std::remove(tmp_path_.c_str());
}

Status AtomicWriter::pwrite_all(uint64_t offset, const void* data, uint64_t n_bytes) const {
    const auto* p = static_cast<const uint8_t*>(data);
    while (n_bytes > 0) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(n_bytes, 1ull << 30));
        const ssize_t k = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = EIO;
            return io_error("cannot write", tmp_path_);
        }
        p += k;
        offset += static_cast<uint64_t>(k);
        n_bytes -= static_cast<uint64_t>(k);
    }
    return ok_status();
}

Status AtomicWriter::write_at(uint64_t offset, const void* data, uint64_t n_bytes) const {
    if (n_bytes == 0) return ok_status();
    if (offset < reserved_begin_ || offset > reserved_end_ || n_bytes > reserved_end_ - offset)
        return make_error(ErrorCode::kInternal, "write_at outside the reserved range of '" + tmp_path_ + "'");
    LOWBIT_TRY(pwrite_all(offset, data, n_bytes));
    // Start the write-back of what has accumulated (asynchronous; commit's fsync then has little left to wait for).
    if (unsynced_.fetch_add(n_bytes) + n_bytes >= kWritebackBytes) {
        unsynced_.store(0);
        (void)::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
    return ok_status();
}

Status AtomicWriter::flush() {
    if (buf_.empty()) return ok_status();
    LOWBIT_TRY(pwrite_all(offset_ - buf_.size(), buf_.data(), buf_.size()));
    if (unsynced_.fetch_add(buf_.size()) + buf_.size() >= kWritebackBytes) {
        unsynced_.store(0);
        (void)::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
    buf_.clear();
    return ok_status();
}

Status AtomicWriter::write(const void* data, uint64_t n_bytes) {
    if (n_bytes == 0) return ok_status();
    if (n_bytes > UINT64_MAX - offset_) return make_error(ErrorCode::kIo, "file '" + tmp_path_ + "' would overflow");
    if (buf_.size() + n_bytes > kBufferBytes) LOWBIT_TRY(flush());
    if (n_bytes >= kBufferBytes) {
        LOWBIT_TRY(pwrite_all(offset_, data, n_bytes));
    } else {
        const auto* p = static_cast<const uint8_t*>(data);
        buf_.insert(buf_.end(), p, p + n_bytes);
    }
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

Status AtomicWriter::skip(uint64_t n_bytes) {
    if (n_bytes > UINT64_MAX - offset_) return make_error(ErrorCode::kIo, "file '" + tmp_path_ + "' would overflow");
    LOWBIT_TRY(flush());
    reserved_begin_ = offset_;
    offset_ += n_bytes;
    reserved_end_ = offset_;
    return ok_status();
}

Status AtomicWriter::commit() {
    LOWBIT_TRY(flush());
    if (::fsync(fd_) != 0) return io_error("cannot flush", tmp_path_);
    test_stop_hook();
    if (::close(fd_) != 0) {
        fd_ = -1;
        return io_error("cannot close", tmp_path_);
    }
    fd_ = -1;
    if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) return io_error("cannot rename to", path_);
    committed_ = true;
    return ok_status();
}

} // namespace lowbit
