// SPDX-License-Identifier: MIT
// GGUF reader: a bounds-checked cursor over the mapped bytes. Every count, length, shape and offset is checked
// against the file size (with overflow-checked math) before anything is allocated or a pointer is formed.
#include "format/gguf/gguf_file.h"

#include "core/checked.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <limits>

namespace lowbit::gguf {

namespace {
constexpr uint64_t kHeaderBytes = 24;       // magic, version, n_tensors, n_kv
constexpr uint64_t kMinKvBytes = 8 + 4 + 1; // key length, value type, smallest value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

Error bad(std::string msg) {
    return make_error(ErrorCode::kBadInput, std::move(msg));
}

// Smallest on-disk size of one array element of type t (for bounding counts before allocating).
uint64_t min_elem_bytes(ValueType t) {
    if (t == ValueType::kString) return 8;
    if (t == ValueType::kArray) return 12;
    return value_type_size(t);
}
} // namespace

class Parser {
  public:
    explicit Parser(File& f) : f_(f), p_(f.data_), n_(f.size_) {}

    Status run() {
        LOWBIT_TRY(read_header());
        LOWBIT_TRY(read_kvs());
        LOWBIT_TRY(read_alignment());
        LOWBIT_TRY(read_tensor_infos());
        return place_tensors();
    }

  private:
    Error truncated(uint64_t need, const std::string& what) const {
        return bad(fmt::format("truncated: {} needs {} bytes at offset {} but the file ends at {} (truncated "
                               "download?)",
                               what, need, pos_, n_));
    }
    Status need(uint64_t k, const std::string& what) const {
        if (k > n_ - pos_) return truncated(k, what);
        return ok_status();
    }
    template <class T> Result<T> read(const std::string& what) { return read<T>("", what); }
    // The message is only built on failure (this runs once per token of a vocabulary).
    template <class T> Result<T> read(std::string_view prefix, const std::string& what) {
        if (sizeof(T) > n_ - pos_) return truncated(sizeof(T), std::string(prefix) + what);
        T v;
        std::memcpy(&v, p_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    // uint64 length + bytes; `max_len` bounds the length before the bytes are touched.
    Result<std::string> read_string(const std::string& what, uint64_t max_len) {
        const uint64_t at = pos_;
        LOWBIT_ASSIGN_OR_RETURN(const uint64_t len, read<uint64_t>("length of ", what));
        if (len > max_len)
            return bad(
                fmt::format("{} at offset {} has length {}, more than the limit of {} bytes", what, at, len, max_len));
        LOWBIT_TRY(need(len, what));
        std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
        pos_ += len;
        if (!is_valid_utf8(s)) return bad(fmt::format("{} at offset {} is not valid UTF-8", what, at));
        return s;
    }

    Status read_header() {
        if (n_ < 4) return truncated(kHeaderBytes, "the GGUF header");
        if (std::memcmp(p_, "GGUF", 4) != 0)
            return bad(fmt::format("not a GGUF file: magic bytes are {:02x} {:02x} {:02x} {:02x}, expected 47 47 55 "
                                   "46 (\"GGUF\")",
                                   p_[0], p_[1], p_[2], p_[3]));
        pos_ = 4;
        LOWBIT_ASSIGN_OR_RETURN(const uint32_t version, read<uint32_t>("the GGUF version"));
        if ((version & 0xFFFFu) == 0 && version != 0)
            return make_error(ErrorCode::kUnsupported,
                              fmt::format("big-endian GGUF (version field {:#x}) is not supported", version));
        if (version == 1)
            return make_error(ErrorCode::kUnsupported,
                              "GGUF version 1 is not supported (versions 2 and 3 are); re-convert the model");
        if (version == 0 || version > kVersion)
            return make_error(ErrorCode::kUnsupported,
                              fmt::format("GGUF version {} is not supported (versions 2 and 3 are)", version));
        f_.version_ = version;
        LOWBIT_ASSIGN_OR_RETURN(n_tensors_, read<uint64_t>("the tensor count"));
        LOWBIT_ASSIGN_OR_RETURN(n_kv_, read<uint64_t>("the metadata KV count"));
        const uint64_t rest = n_ - pos_;
        if (n_kv_ > rest / kMinKvBytes)
            return bad(fmt::format("metadata KV count {} is impossible: the {} bytes after the header hold at most {} "
                                   "KVs (truncated or corrupt file?)",
                                   n_kv_, rest, rest / kMinKvBytes));
        if (n_tensors_ > rest / kMinTensorInfoBytes)
            return bad(fmt::format("tensor count {} is impossible: the {} bytes after the header hold at most {} "
                                   "tensor infos (truncated or corrupt file?)",
                                   n_tensors_, rest, rest / kMinTensorInfoBytes));
        return ok_status();
    }

    Result<ValueType> read_type(const std::string& what) {
        const uint64_t at = pos_;
        LOWBIT_ASSIGN_OR_RETURN(const uint32_t t, read<uint32_t>("value type of ", what));
        if (t >= kValueTypeCount)
            return bad(fmt::format("{} at offset {} has value type {}, expected 0..12", what, at, t));
        return static_cast<ValueType>(t);
    }

    template <class T> Result<Value> read_scalar(const std::string& what) {
        LOWBIT_ASSIGN_OR_RETURN(const T x, read<T>(what));
        return Value(Value::Storage(std::in_place_type<T>, x));
    }

    Result<Value> read_value(ValueType t, const std::string& what, int depth) {
        switch (t) {
        case ValueType::kU8:
            return read_scalar<uint8_t>(what);
        case ValueType::kI8:
            return read_scalar<int8_t>(what);
        case ValueType::kU16:
            return read_scalar<uint16_t>(what);
        case ValueType::kI16:
            return read_scalar<int16_t>(what);
        case ValueType::kU32:
            return read_scalar<uint32_t>(what);
        case ValueType::kI32:
            return read_scalar<int32_t>(what);
        case ValueType::kF32:
            return read_scalar<float>(what);
        case ValueType::kU64:
            return read_scalar<uint64_t>(what);
        case ValueType::kI64:
            return read_scalar<int64_t>(what);
        case ValueType::kF64:
            return read_scalar<double>(what);
        case ValueType::kBool: {
            const uint64_t at = pos_;
            LOWBIT_ASSIGN_OR_RETURN(const uint8_t b, read<uint8_t>(what));
            if (b > 1) return bad(fmt::format("{} at offset {} is a bool with byte {}, expected 0 or 1", what, at, b));
            return Value::boolean(b != 0);
        }
        case ValueType::kString: {
            LOWBIT_ASSIGN_OR_RETURN(std::string s, read_string(what, std::numeric_limits<uint64_t>::max()));
            return Value::string(std::move(s));
        }
        case ValueType::kArray:
            return read_array(what, depth);
        }
        return bad(what + ": unknown value type"); // unreachable: read_type bounds t
    }

    Result<Value> read_array(const std::string& what, int depth) {
        if (depth >= kMaxArrayDepth)
            return bad(fmt::format("{} at offset {} nests arrays deeper than {} levels", what, pos_, kMaxArrayDepth));
        LOWBIT_ASSIGN_OR_RETURN(const ValueType et, read_type(what + " (array element)"));
        const uint64_t at = pos_;
        LOWBIT_ASSIGN_OR_RETURN(const uint64_t count, read<uint64_t>("element count of ", what));
        const uint64_t min_bytes = min_elem_bytes(et);
        if (count > (n_ - pos_) / min_bytes)
            return bad(fmt::format("truncated: {} at offset {} declares {} elements of type {} (at least {} bytes "
                                   "each) but only {} bytes remain before the end of the file at {}",
                                   what, at, count, value_type_name(et), min_bytes, n_ - pos_, n_));
        std::vector<Value> items;
        items.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
            LOWBIT_ASSIGN_OR_RETURN(Value v, read_value(et, what, depth + 1));
            items.push_back(std::move(v));
        }
        return Value::array(et, std::move(items));
    }

    Status read_kvs() {
        f_.kvs_.reserve(n_kv_);
        for (uint64_t i = 0; i < n_kv_; ++i) {
            const uint64_t at = pos_;
            LOWBIT_ASSIGN_OR_RETURN(std::string key,
                                    read_string(fmt::format("key of metadata KV #{}", i), kMaxKeyBytes));
            if (key.empty()) return bad(fmt::format("metadata KV #{} at offset {} has an empty key", i, at));
            if (f_.kv_index_.count(key))
                return bad(fmt::format("duplicate metadata key '{}' (KV #{} at offset {})", key, i, at));
            const std::string what = fmt::format("metadata key '{}'", key);
            LOWBIT_ASSIGN_OR_RETURN(const ValueType t, read_type(what));
            LOWBIT_ASSIGN_OR_RETURN(Value v, read_value(t, what, 0));
            f_.kv_index_.emplace(key, f_.kvs_.size());
            f_.kvs_.push_back(KeyValue{std::move(key), std::move(v)});
        }
        return ok_status();
    }

    Status read_alignment() {
        const Value* v = f_.get(kAlignmentKey);
        if (!v) return ok_status();
        const auto a = v->as_uint();
        if (!a)
            return bad(fmt::format("{} has type {}, expected an unsigned integer (u32)", kAlignmentKey,
                                   value_type_name(v->type())));
        if (*a == 0 || (*a & (*a - 1)) != 0 || *a > (1u << 30))
            return bad(fmt::format("{} is {}, expected a power of two between 1 and 2^30", kAlignmentKey, *a));
        f_.alignment_ = *a;
        return ok_status();
    }

    Status read_tensor_infos() {
        f_.tensors_.reserve(n_tensors_);
        ggml_types_.reserve(n_tensors_);
        for (uint64_t i = 0; i < n_tensors_; ++i) {
            const uint64_t at = pos_;
            LOWBIT_ASSIGN_OR_RETURN(std::string name,
                                    read_string(fmt::format("name of tensor #{}", i), kMaxTensorNameBytes));
            if (name.empty()) return bad(fmt::format("tensor #{} at offset {} has an empty name", i, at));
            if (f_.tensor_index_.count(name))
                return bad(fmt::format("duplicate tensor name '{}' (tensor #{} at offset {})", name, i, at));
            LOWBIT_ASSIGN_OR_RETURN(format::TensorInfo t, read_tensor_info(name));
            f_.tensor_index_.emplace(name, f_.tensors_.size());
            f_.tensors_.push_back(std::move(t));
        }
        return ok_status();
    }

    // Everything after the name: n_dims, ne[], ggml type, relative offset. offset_bytes is still relative.
    Result<format::TensorInfo> read_tensor_info(const std::string& name) {
        const std::string what = fmt::format("tensor '{}'", name);
        uint64_t at = pos_;
        LOWBIT_ASSIGN_OR_RETURN(const uint32_t n_dims, read<uint32_t>("n_dims of " + what));
        if (n_dims < 1 || n_dims > static_cast<uint32_t>(kMaxDims))
            return bad(fmt::format("{} at offset {} has n_dims {}, expected 1..{}", what, at, n_dims, kMaxDims));
        uint64_t ne[kMaxDims] = {};
        for (uint32_t d = 0; d < n_dims; ++d) {
            at = pos_;
            LOWBIT_ASSIGN_OR_RETURN(ne[d], read<uint64_t>(fmt::format("ne[{}] of {}", d, what)));
            if (ne[d] == 0 || ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                return bad(fmt::format("{} at offset {} has ne[{}] = {}, expected 1..2^63-1", what, at, d, ne[d]));
        }
        at = pos_;
        LOWBIT_ASSIGN_OR_RETURN(const uint32_t type_id, read<uint32_t>("ggml type of " + what));
        const auto dtype = type_id <= static_cast<uint32_t>(std::numeric_limits<int>::max())
                               ? dtype_from_ggml(int(type_id))
                               : std::nullopt;
        if (!dtype)
            return make_error(
                ErrorCode::kUnsupported,
                fmt::format("{} at offset {} has ggml type id {}, which lowbit does not know", what, at, type_id));
        const auto n_elems = checked_product(ne, ne + n_dims);
        if (!n_elems || *n_elems > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            return bad(fmt::format("{}: the element count of its shape overflows 2^63", what));
        const auto row_bytes = dtype_row_bytes(*dtype, ne[0]);
        if (!row_bytes)
            return bad(fmt::format("{} of type {} has ne[0] = {}, not a multiple of its block size {}", what,
                                   dtype_name(*dtype), ne[0], dtype_block_elems(*dtype)));
        const auto n_bytes = checked_mul(*row_bytes, *n_elems / ne[0]);
        if (!n_bytes) return bad(fmt::format("{}: its byte size overflows 2^64", what));
        LOWBIT_ASSIGN_OR_RETURN(const uint64_t offset, read<uint64_t>("data offset of " + what));

        format::TensorInfo t;
        t.name = name;
        t.dtype = *dtype;
        t.shape.n_dims = static_cast<int>(n_dims);
        for (uint32_t d = 0; d < n_dims; ++d) t.shape.dims[n_dims - 1 - d] = static_cast<int64_t>(ne[d]);
        t.offset_bytes = offset;
        t.n_bytes = *n_bytes;
        ggml_types_.push_back(static_cast<int>(type_id));
        return t;
    }

    // Computes the data section start, then makes offsets absolute and checks alignment, bounds and overlaps.
    Status place_tensors() {
        const auto data_offset = checked_align_up(pos_, f_.alignment_);
        if (!data_offset) return bad("the data section offset overflows");
        f_.data_offset_ = *data_offset;
        for (auto& t : f_.tensors_) {
            if (t.offset_bytes % f_.alignment_ != 0)
                return bad(fmt::format("tensor '{}' has data offset {}, not a multiple of the alignment {}", t.name,
                                       t.offset_bytes, f_.alignment_));
            const auto abs = checked_add(*data_offset, t.offset_bytes);
            const auto end = abs ? checked_add(*abs, t.n_bytes) : std::nullopt;
            if (!end || *end > n_)
                return bad(fmt::format("truncated: tensor '{}' needs {} bytes at offset {} but the file ends at {} "
                                       "(truncated download?)",
                                       t.name, t.n_bytes, abs ? *abs : t.offset_bytes, n_));
            t.offset_bytes = *abs;
        }
        std::vector<size_t> order(f_.tensors_.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(),
                  [this](size_t a, size_t b) { return f_.tensors_[a].offset_bytes < f_.tensors_[b].offset_bytes; });
        for (size_t k = 1; k < order.size(); ++k) {
            const auto& a = f_.tensors_[order[k - 1]];
            const auto& b = f_.tensors_[order[k]];
            if (a.offset_bytes + a.n_bytes > b.offset_bytes)
                return bad(fmt::format("tensors '{}' (bytes {}..{}) and '{}' (bytes {}..{}) overlap", a.name,
                                       a.offset_bytes, a.offset_bytes + a.n_bytes, b.name, b.offset_bytes,
                                       b.offset_bytes + b.n_bytes));
        }
        f_.ggml_types_ = std::move(ggml_types_);
        realign();
        return ok_status();
    }

    // The largest power of two (up to 8) dividing the type's block bytes: the alignment of every value in it
    // (f32 4, f16/bf16 2, Q4_0's 18-byte block 2, Q4_K's 144-byte block 8, ...).
    static uint64_t natural_alignment(DType t) {
        const uint64_t block = static_cast<uint64_t>(dtype_block_bytes(t));
        uint64_t a = 1;
        while (a < 8 && block % (2 * a) == 0) a *= 2;
        return a;
    }

    // Copies each tensor whose address is misaligned for its type into 8-byte-aligned memory (see gguf_file.h).
    void realign() {
        for (const auto& t : f_.tensors_) {
            const uintptr_t at = reinterpret_cast<uintptr_t>(p_ + t.offset_bytes);
            if (t.n_bytes == 0 || at % natural_alignment(t.dtype) == 0) continue;
            std::vector<uint64_t> copy((t.n_bytes + 7) / 8);
            std::memcpy(copy.data(), p_ + t.offset_bytes, t.n_bytes);
            f_.realigned_bytes_ += t.n_bytes;
            f_.realigned_.emplace(t.offset_bytes, std::move(copy));
        }
    }

    File& f_;
    const uint8_t* p_;
    uint64_t n_;
    uint64_t pos_ = 0;
    uint64_t n_tensors_ = 0, n_kv_ = 0;
    std::vector<int> ggml_types_;
};

Status File::parse() {
    return Parser(*this).run();
}

Result<std::shared_ptr<File>> File::open(const std::string& path) {
    LOWBIT_ASSIGN_OR_RETURN(auto map, MappedFile::open(path));
    std::shared_ptr<File> f(new File());
    f->data_ = map->data();
    f->size_ = map->size();
    f->map_ = std::move(map);
    f->name_ = path;
    if (Status s = f->parse(); !s.ok()) return s.error().with_context("gguf '" + path + "'");
    return f;
}

Result<std::shared_ptr<File>> File::open_memory(std::span<const uint8_t> bytes, const std::string& name) {
    std::shared_ptr<File> f(new File());
    f->data_ = bytes.data();
    f->size_ = bytes.size();
    f->name_ = name;
    if (Status s = f->parse(); !s.ok()) return s.error().with_context("gguf '" + name + "'");
    return f;
}

const Value* File::get(std::string_view key) const {
    const auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

std::optional<std::string> File::get_string(std::string_view key) const {
    const Value* v = get(key);
    const std::string* s = v ? v->as_string() : nullptr;
    return s ? std::optional<std::string>(*s) : std::nullopt;
}
std::optional<int64_t> File::get_int(std::string_view key) const {
    const Value* v = get(key);
    return v ? v->as_int() : std::nullopt;
}
std::optional<uint64_t> File::get_uint(std::string_view key) const {
    const Value* v = get(key);
    return v ? v->as_uint() : std::nullopt;
}
std::optional<double> File::get_float(std::string_view key) const {
    const Value* v = get(key);
    return v ? v->as_float() : std::nullopt;
}
std::optional<bool> File::get_bool(std::string_view key) const {
    const Value* v = get(key);
    return v ? v->as_bool() : std::nullopt;
}
const Array* File::get_array(std::string_view key) const {
    const Value* v = get(key);
    return v ? v->as_array() : nullptr;
}

namespace {
Error wrong_type(std::string_view key, const Value& v, std::string_view expected) {
    return bad(fmt::format("metadata key '{}' has type {}, expected {}", key, value_type_name(v.type()), expected));
}
Error missing(std::string_view key, const std::string& file) {
    return bad(fmt::format("metadata key '{}' is missing from '{}'", key, file));
}
} // namespace

Result<std::optional<std::string>> File::lookup_string(std::string_view key) const {
    const Value* v = get(key);
    if (!v) return std::optional<std::string>();
    if (!v->as_string()) return wrong_type(key, *v, "string");
    return std::optional<std::string>(*v->as_string());
}
Result<std::optional<int64_t>> File::lookup_int(std::string_view key) const {
    const Value* v = get(key);
    if (!v) return std::optional<int64_t>();
    const auto i = v->as_int();
    if (!i) return wrong_type(key, *v, "an integer fitting int64");
    return i;
}
Result<std::optional<double>> File::lookup_float(std::string_view key) const {
    const Value* v = get(key);
    if (!v) return std::optional<double>();
    const auto x = v->as_float();
    if (!x) return wrong_type(key, *v, "a number");
    return x;
}
Result<std::optional<bool>> File::lookup_bool(std::string_view key) const {
    const Value* v = get(key);
    if (!v) return std::optional<bool>();
    const auto b = v->as_bool();
    if (!b) return wrong_type(key, *v, "bool");
    return b;
}
Result<const Array*> File::lookup_array(std::string_view key, std::optional<ValueType> elem_type) const {
    const Value* v = get(key);
    if (!v) return static_cast<const Array*>(nullptr);
    const Array* a = v->as_array();
    if (!a) return wrong_type(key, *v, "array");
    if (elem_type && a->elem_type != *elem_type)
        return bad(fmt::format("metadata key '{}' is an array of {}, expected an array of {}", key,
                               value_type_name(a->elem_type), value_type_name(*elem_type)));
    return a;
}
Result<std::string> File::require_string(std::string_view key) const {
    LOWBIT_ASSIGN_OR_RETURN(auto v, lookup_string(key));
    if (!v) return missing(key, name_);
    return std::move(*v);
}
Result<int64_t> File::require_int(std::string_view key) const {
    LOWBIT_ASSIGN_OR_RETURN(auto v, lookup_int(key));
    if (!v) return missing(key, name_);
    return *v;
}
Result<double> File::require_float(std::string_view key) const {
    LOWBIT_ASSIGN_OR_RETURN(auto v, lookup_float(key));
    if (!v) return missing(key, name_);
    return *v;
}

const format::TensorInfo* File::find(const std::string& name) const {
    const auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* File::tensor_data(const format::TensorInfo& t) const {
    if (!realigned_.empty())
        if (const auto it = realigned_.find(t.offset_bytes); it != realigned_.end())
            return reinterpret_cast<const uint8_t*>(it->second.data());
    return data_ + t.offset_bytes;
}

Result<TensorView> File::view(const std::string& name) const {
    const format::TensorInfo* t = find(name);
    if (!t) return bad(fmt::format("tensor '{}' is not in '{}'", name, name_));
    // The mapping is read-only; TensorView carries a non-const pointer by convention (see tensor_store.h).
    return TensorView::contiguous(const_cast<uint8_t*>(tensor_data(*t)), t->dtype, t->shape);
}

void File::release_bytes(const format::TensorInfo& t, uint64_t offset, uint64_t n_bytes) const {
    if (!map_ || offset >= t.n_bytes || realigned_.count(t.offset_bytes)) return;
    const uint64_t base = static_cast<uint64_t>(data_ - map_->data()) + t.offset_bytes; // tensor start in the map
    map_->release(base + offset, std::min(n_bytes, t.n_bytes - offset));
}

void File::release(const std::string& name) const {
    if (const format::TensorInfo* t = find(name)) release_bytes(*t, 0, t->n_bytes);
}

int File::ggml_type(const format::TensorInfo& t) const {
    const auto it = tensor_index_.find(t.name);
    return it == tensor_index_.end() ? -1 : ggml_types_[it->second];
}

} // namespace lowbit::gguf
