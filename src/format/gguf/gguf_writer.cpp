// SPDX-License-Identifier: MIT
// GGUF writer: validates what it is given (so it never writes a file its own reader rejects), then serializes.
#include "format/gguf/gguf_writer.h"

#include "core/checked.h"
#include "core/file.h"
#include "format/gguf/gguf_file.h"

#include <atomic>
#include <cstring>
#include <fmt/format.h>

namespace lowbit::gguf {

namespace {

Error usage(std::string msg) {
    return make_error(ErrorCode::kUsage, std::move(msg));
}

// Checks that a value can be written as-is: UTF-8 strings, homogeneous arrays, bounded nesting.
Status check_value(const std::string& key, const Value& v, int depth) {
    if (const std::string* s = v.as_string()) {
        if (!is_valid_utf8(*s)) return usage(fmt::format("metadata key '{}': a string value is not valid UTF-8", key));
        return ok_status();
    }
    const Array* a = v.as_array();
    if (!a) return ok_status();
    if (depth >= kMaxArrayDepth)
        return usage(fmt::format("metadata key '{}': arrays nest deeper than {} levels", key, kMaxArrayDepth));
    if (static_cast<uint32_t>(a->elem_type) >= kValueTypeCount)
        return usage(fmt::format("metadata key '{}': array element type {} is not a GGUF type", key,
                                 static_cast<uint32_t>(a->elem_type)));
    for (size_t i = 0; i < a->items.size(); ++i) {
        if (a->items[i].type() != a->elem_type)
            return usage(fmt::format("metadata key '{}': array item {} has type {}, the array holds {}", key, i,
                                     value_type_name(a->items[i].type()), value_type_name(a->elem_type)));
        LOWBIT_TRY(check_value(key, a->items[i], depth + 1));
    }
    return ok_status();
}

// Little-endian serialization into a byte string (the header is small; tensor data is streamed separately).
struct HeaderBuf {
    std::string b;
    template <class T> void put(T x) { b.append(reinterpret_cast<const char*>(&x), sizeof(T)); }
    void put_string(const std::string& s) {
        put<uint64_t>(s.size());
        b += s;
    }
    void put_value(const Value& v) {
        std::visit(
            [this](const auto& x) {
                using T = std::decay_t<decltype(x)>;
                if constexpr (std::is_same_v<T, std::string>)
                    put_string(x);
                else if constexpr (std::is_same_v<T, Array>) {
                    put<uint32_t>(static_cast<uint32_t>(x.elem_type));
                    put<uint64_t>(x.items.size());
                    for (const Value& item : x.items) put_value(item);
                } else if constexpr (std::is_same_v<T, bool>)
                    put<uint8_t>(x ? 1 : 0);
                else
                    put<T>(x);
            },
            v.storage());
    }
};

} // namespace

Status Writer::set(const std::string& key, Value value) {
    if (key.empty() || key.size() > kMaxKeyBytes)
        return usage(fmt::format("metadata key of {} bytes: expected 1..{} bytes", key.size(), kMaxKeyBytes));
    if (!is_valid_utf8(key)) return usage("metadata key '" + key + "' is not valid UTF-8");
    LOWBIT_TRY(check_value(key, value, 0));
    if (key == kAlignmentKey) {
        const auto a = value.as_uint();
        if (!a || *a == 0 || (*a & (*a - 1)) != 0 || *a > (1u << 30))
            return usage(fmt::format("{} must be a power-of-two integer up to 2^30, got {} of type {}", kAlignmentKey,
                                     value.to_json(), value_type_name(value.type())));
    }
    if (const auto it = kv_index_.find(key); it != kv_index_.end()) {
        kvs_[it->second].second = std::move(value);
        return ok_status();
    }
    kv_index_.emplace(key, kvs_.size());
    kvs_.emplace_back(key, std::move(value));
    return ok_status();
}

const Value* Writer::get(const std::string& key) const {
    const auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kvs_[it->second].second;
}

void Writer::remove(const std::string& key) {
    const auto it = kv_index_.find(key);
    if (it == kv_index_.end()) return;
    kvs_.erase(kvs_.begin() + static_cast<std::ptrdiff_t>(it->second));
    kv_index_.clear();
    for (size_t i = 0; i < kvs_.size(); ++i) kv_index_.emplace(kvs_[i].first, i);
}

uint64_t Writer::alignment() const {
    const Value* v = get(std::string(kAlignmentKey));
    return v ? *v->as_uint() : kDefaultAlignment; // set() guarantees a valid power of two
}

Result<Writer::PendingTensor> Writer::make_tensor(const std::string& name, DType dtype, const Shape& shape) const {
    if (name.empty() || name.size() > kMaxTensorNameBytes || !is_valid_utf8(name))
        return usage(fmt::format("tensor name '{}' must be 1..{} bytes of UTF-8", name, kMaxTensorNameBytes));
    if (tensor_index_.count(name)) return usage(fmt::format("tensor '{}' was added twice", name));
    if (dtype_traits(dtype).ggml_type < 0)
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("tensor '{}': GGUF has no type for {}", name, dtype_name(dtype)));
    if (shape.n_dims < 1 || shape.n_dims > kMaxDims)
        return usage(fmt::format("tensor '{}' has {} dims, expected 1..{}", name, shape.n_dims, kMaxDims));
    for (int d = 0; d < shape.n_dims; ++d)
        if (shape[d] <= 0)
            return usage(fmt::format("tensor '{}' has shape {}: dims must be > 0", name, shape.to_string()));
    const auto n_elems = checked_product(shape.dims.begin(), shape.dims.begin() + shape.n_dims);
    const auto row = dtype_row_bytes(dtype, static_cast<uint64_t>(shape.n_cols()));
    if (!row)
        return usage(fmt::format("tensor '{}' of type {} has shape {}: the last dim must be a multiple of {}", name,
                                 dtype_name(dtype), shape.to_string(), dtype_block_elems(dtype)));
    const auto n_bytes = n_elems ? checked_mul(*row, *n_elems / static_cast<uint64_t>(shape.n_cols())) : std::nullopt;
    if (!n_bytes) return usage(fmt::format("tensor '{}' has shape {}: its size overflows", name, shape.to_string()));
    PendingTensor t;
    t.name = name;
    t.dtype = dtype;
    t.shape = shape;
    t.n_bytes = *n_bytes;
    return t;
}

Status Writer::add_tensor(const std::string& name, DType dtype, const Shape& shape, std::vector<uint8_t> bytes) {
    LOWBIT_ASSIGN_OR_RETURN(PendingTensor t, make_tensor(name, dtype, shape));
    if (bytes.size() != t.n_bytes)
        return usage(fmt::format("tensor '{}' ({} {}) needs {} bytes, got {}", name, dtype_name(dtype),
                                 shape.to_string(), t.n_bytes, bytes.size()));
    t.owned = std::move(bytes);
    tensor_index_.emplace(name, tensors_.size());
    tensors_.push_back(std::move(t));
    return ok_status();
}

Status Writer::add_tensor_ref(const std::string& name, DType dtype, const Shape& shape, const void* data) {
    LOWBIT_ASSIGN_OR_RETURN(PendingTensor t, make_tensor(name, dtype, shape));
    if (!data) return usage(fmt::format("tensor '{}': null data", name));
    t.borrowed = data;
    tensor_index_.emplace(name, tensors_.size());
    tensors_.push_back(std::move(t));
    return ok_status();
}

Status Writer::add_tensor_producer(const std::string& name, DType dtype, const Shape& shape, TensorProducer produce) {
    LOWBIT_ASSIGN_OR_RETURN(PendingTensor t, make_tensor(name, dtype, shape));
    if (!produce) return usage(fmt::format("tensor '{}': empty producer", name));
    t.produce = std::move(produce);
    tensor_index_.emplace(name, tensors_.size());
    tensors_.push_back(std::move(t));
    return ok_status();
}

Status Writer::add_tensor_positional(const std::string& name, DType dtype, const Shape& shape,
                                     PositionalProducer produce) {
    LOWBIT_ASSIGN_OR_RETURN(PendingTensor t, make_tensor(name, dtype, shape));
    if (!produce) return usage(fmt::format("tensor '{}': empty producer", name));
    t.produce_at = std::move(produce);
    tensor_index_.emplace(name, tensors_.size());
    tensors_.push_back(std::move(t));
    return ok_status();
}

Status Writer::write_to(const ByteSink& out) const {
    return write_impl(out, nullptr, nullptr);
}

Status Writer::write_impl(const ByteSink& out, const std::function<Status(uint64_t)>* reserve,
                          const std::function<Status(uint64_t, const void*, uint64_t)>* at) const {
    const uint64_t align = alignment();
    HeaderBuf h;
    h.put<uint32_t>(kMagic);
    h.put<uint32_t>(kVersion);
    h.put<uint64_t>(tensors_.size());
    h.put<uint64_t>(kvs_.size());
    for (const auto& [key, value] : kvs_) {
        h.put_string(key);
        h.put<uint32_t>(static_cast<uint32_t>(value.type()));
        h.put_value(value);
    }
    uint64_t offset = 0; // relative to the data section
    for (const PendingTensor& t : tensors_) {
        h.put_string(t.name);
        h.put<uint32_t>(static_cast<uint32_t>(t.shape.n_dims));
        for (int d = t.shape.n_dims - 1; d >= 0; --d) h.put<uint64_t>(static_cast<uint64_t>(t.shape[d])); // ne[]
        h.put<uint32_t>(static_cast<uint32_t>(dtype_traits(t.dtype).ggml_type));
        h.put<uint64_t>(offset);
        const auto next = checked_align_up(offset + t.n_bytes, align);
        if (!next) return usage("the tensors' total size overflows");
        offset = *next;
    }
    h.b.append(static_cast<size_t>(*checked_align_up(h.b.size(), align) - h.b.size()), '\0');
    LOWBIT_TRY(out(h.b.data(), h.b.size()));
    uint64_t pos = h.b.size(); // bytes of the output so far

    static const std::vector<uint8_t> zeros(4096, 0);
    const auto pad = [&](uint64_t n) -> Status {
        const uint64_t rem = n % align;
        for (uint64_t left = rem ? align - rem : 0; left > 0;) {
            const uint64_t k = left < zeros.size() ? left : zeros.size();
            LOWBIT_TRY(out(zeros.data(), k));
            left -= k;
        }
        return ok_status();
    };
    for (const PendingTensor& t : tensors_) {
        if (t.produce) {
            uint64_t written = 0;
            const ByteSink counted = [&](const void* p, uint64_t n) -> Status {
                if (n > t.n_bytes - written)
                    return make_error(
                        ErrorCode::kInternal,
                        fmt::format("producer of tensor '{}' wrote more than its {} bytes", t.name, t.n_bytes));
                written += n;
                return out(p, n);
            };
            LOWBIT_TRY(t.produce(counted));
            if (written != t.n_bytes)
                return make_error(ErrorCode::kInternal, fmt::format("producer of tensor '{}' wrote {} of its {} bytes",
                                                                    t.name, written, t.n_bytes));
        } else if (t.produce_at) {
            // Pieces may come from several threads: bounds are checked per piece, the total once at the end.
            std::atomic<uint64_t> written{0};
            std::vector<uint8_t> assembled; // write_to: the tensor in memory, then one write
            if (!at)
                assembled.resize(static_cast<size_t>(t.n_bytes));
            else
                LOWBIT_TRY((*reserve)(t.n_bytes));
            const PositionalSink piece = [&](uint64_t off, const void* p, uint64_t n) -> Status {
                if (off > t.n_bytes || n > t.n_bytes - off)
                    return make_error(ErrorCode::kInternal,
                                      fmt::format("producer of tensor '{}' wrote bytes [{}, +{}) outside its {} bytes",
                                                  t.name, off, n, t.n_bytes));
                written.fetch_add(n);
                if (!at) {
                    if (n) std::memcpy(assembled.data() + off, p, static_cast<size_t>(n));
                    return ok_status();
                }
                return (*at)(pos + off, p, n);
            };
            LOWBIT_TRY(t.produce_at(piece));
            if (written.load() != t.n_bytes)
                return make_error(ErrorCode::kInternal, fmt::format("producer of tensor '{}' wrote {} of its {} bytes",
                                                                    t.name, written.load(), t.n_bytes));
            if (!at) LOWBIT_TRY(out(assembled.data(), t.n_bytes));
        } else {
            LOWBIT_TRY(out(t.borrowed ? t.borrowed : t.owned.data(), t.n_bytes));
        }
        LOWBIT_TRY(pad(t.n_bytes));
        pos += *checked_align_up(t.n_bytes, align); // offsets were checked above
    }
    return ok_status();
}

Status Writer::write(const std::string& path) const {
    LOWBIT_ASSIGN_OR_RETURN(auto w, AtomicWriter::create(path));
    AtomicWriter* aw = w.get();
    const std::function<Status(uint64_t)> reserve = [aw](uint64_t n) { return aw->skip(n); };
    const std::function<Status(uint64_t, const void*, uint64_t)> at = [aw](uint64_t off, const void* p, uint64_t n) {
        return aw->write_at(off, p, n);
    };
    LOWBIT_TRY(write_impl([aw](const void* p, uint64_t n) { return aw->write(p, n); }, &reserve, &at));
    return w->commit();
}

Result<std::vector<uint8_t>> Writer::write_to_memory() const {
    std::vector<uint8_t> bytes;
    LOWBIT_TRY(write_to([&bytes](const void* p, uint64_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        bytes.insert(bytes.end(), b, b + n);
        return ok_status();
    }));
    return bytes;
}

} // namespace lowbit::gguf
