// SPDX-License-Identifier: MIT
// Result<T>: the error channel between rooms (no exceptions cross a room boundary).
// Goals: every failure a user can cause becomes an Error with a code (mapped to CLI exit codes and HTTP
// statuses) and a message that names the object, the expectation and the fact.
// Non-goals: stack traces, error chaining beyond a context prefix.
#pragma once

#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace lowbit {

// Codes map to CLI exit codes (cli/) and HTTP statuses (server/). Keep the two tables in sync.
enum class ErrorCode : int {
    kInternal = 1,    // exit 1, HTTP 500: a bug or an environment failure we did not classify
    kUsage = 2,       // exit 2, HTTP 400: bad flags / arguments / request shape
    kBadInput = 3,    // exit 3, HTTP 422: a file or value is malformed, truncated, inconsistent
    kUnsupported = 4, // exit 4, HTTP 501: well-formed but not something lowbit handles (arch, type, combo)
    kIo = 5,          // exit 1, HTTP 500: open/read/write/mmap failed (message has errno text)
    kOutOfMemory = 6, // exit 1, HTTP 503
    kDevice = 7,      // exit 1, HTTP 500: CUDA or other accelerator failure
};

const char* error_code_name(ErrorCode code);
int exit_code_for(ErrorCode code);

struct Error {
    ErrorCode code = ErrorCode::kInternal;
    std::string message;

    // Returns a copy whose message is "context: message" (for adding the file or tensor name).
    Error with_context(const std::string& context) const { return Error{code, context + ": " + message}; }
};

inline Error make_error(ErrorCode code, std::string message) {
    return Error{code, std::move(message)};
}

// Result<T> holds either a T or an Error. Modeled on std::expected (C++23) with the subset we use.
template <class T> class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return check_value(), std::get<0>(v_); }
    const T& value() const& { return check_value(), std::get<0>(v_); }
    T&& value() && { return check_value(), std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& { return std::get<1>(v_); }
    Error&& error() && { return std::get<1>(std::move(v_)); }

  private:
    void check_value() const {
        if (!ok()) std::abort(); // invariant: callers test ok() first
    }
    std::variant<T, Error> v_;
};

template <> class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}
    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const& { return error_; }
    Error&& error() && { return std::move(error_); }

  private:
    Error error_;
    bool ok_ = true;
};

using Status = Result<void>;
inline Status ok_status() {
    return Status();
}

} // namespace lowbit

// LOWBIT_TRY(expr): evaluate a Result/Status; on error return its Error from the enclosing function.
#define LOWBIT_TRY(expr)                                                                                               \
    do {                                                                                                               \
        auto&& lowbit_try_r_ = (expr);                                                                                 \
        if (!lowbit_try_r_.ok()) return std::move(lowbit_try_r_).error();                                              \
    } while (0)

#define LOWBIT_CONCAT_INNER_(a, b) a##b
#define LOWBIT_CONCAT_(a, b) LOWBIT_CONCAT_INNER_(a, b)
// LOWBIT_ASSIGN_OR_RETURN(decl, expr): `decl = value` of a Result, or return its Error.
#define LOWBIT_ASSIGN_OR_RETURN(decl, expr) LOWBIT_ASSIGN_OR_RETURN_(LOWBIT_CONCAT_(lowbit_r_, __LINE__), decl, expr)
#define LOWBIT_ASSIGN_OR_RETURN_(tmp, decl, expr)                                                                      \
    auto tmp = (expr);                                                                                                 \
    if (!tmp.ok()) return std::move(tmp).error();                                                                      \
    decl = std::move(tmp).value()
