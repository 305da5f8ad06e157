// SPDX-License-Identifier: MIT
// Reading and writing llama.cpp GGUF imatrix files (see imatrix_file.h).
#include "format/gguf/imatrix_file.h"

#include "format/gguf/gguf_file.h"
#include "format/gguf/gguf_writer.h"

#include <cstring>
#include <fmt/format.h>

namespace lowbit::gguf {
namespace {

constexpr std::string_view kInSum2 = ".in_sum2";
constexpr std::string_view kCounts = ".counts";

bool strip_suffix(const std::string& s, std::string_view suffix, std::string& stem) {
    if (s.size() <= suffix.size() || s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
    stem = s.substr(0, s.size() - suffix.size());
    return true;
}

Result<std::vector<float>> read_f32(const File& f, const format::TensorInfo& t) {
    if (t.dtype != DType::kF32)
        return make_error(ErrorCode::kBadInput, fmt::format("{}: imatrix tensor '{}' is {}, expected f32", f.path(),
                                                            t.name, dtype_name(t.dtype)));
    std::vector<float> out(t.n_bytes / sizeof(float));
    std::memcpy(out.data(), f.tensor_data(t), out.size() * sizeof(float));
    return out;
}

} // namespace

Result<ImatrixData> read_imatrix(const std::string& path) {
    LOWBIT_ASSIGN_OR_RETURN(std::shared_ptr<File> f, File::open(path));
    LOWBIT_ASSIGN_OR_RETURN(std::optional<std::string> type, f->lookup_string("general.type"));
    if (type != "imatrix")
        return make_error(ErrorCode::kBadInput,
                          fmt::format("{}: not an importance matrix (general.type is '{}', expected 'imatrix'; "
                                      "legacy .dat imatrix files are not supported)",
                                      path, type.value_or("<absent>")));
    ImatrixData d;
    LOWBIT_ASSIGN_OR_RETURN(const Array* ds, f->lookup_array("imatrix.datasets", ValueType::kString));
    if (ds)
        for (const Value& v : ds->items) d.datasets.push_back(*v.as_string());
    LOWBIT_ASSIGN_OR_RETURN(std::optional<int64_t> cc, f->lookup_int("imatrix.chunk_count"));
    LOWBIT_ASSIGN_OR_RETURN(std::optional<int64_t> cs, f->lookup_int("imatrix.chunk_size"));
    d.chunk_count = cc.value_or(0);
    d.chunk_size = cs.value_or(0);
    for (const format::TensorInfo& t : f->tensors()) {
        std::string stem;
        if (strip_suffix(t.name, kCounts, stem)) {
            if (!f->find(stem + std::string(kInSum2)))
                return make_error(ErrorCode::kBadInput,
                                  fmt::format("{}: '{}' has no matching '{}{}'", path, t.name, stem, kInSum2));
            continue;
        }
        if (!strip_suffix(t.name, kInSum2, stem))
            return make_error(ErrorCode::kBadInput,
                              fmt::format("{}: tensor '{}' is neither <name>.in_sum2 nor <name>.counts", path, t.name));
        const format::TensorInfo* c = f->find(stem + std::string(kCounts));
        if (!c)
            return make_error(ErrorCode::kBadInput,
                              fmt::format("{}: '{}' has no matching '{}{}'", path, t.name, stem, kCounts));
        ImatrixEntry e;
        LOWBIT_ASSIGN_OR_RETURN(e.in_sum2, read_f32(*f, t));
        LOWBIT_ASSIGN_OR_RETURN(e.counts, read_f32(*f, *c));
        if (e.counts.empty() || e.in_sum2.empty() || e.in_sum2.size() % e.counts.size() != 0)
            return make_error(ErrorCode::kBadInput,
                              fmt::format("{}: entry '{}' has {} sums and {} counts (sums must be a non-empty "
                                          "multiple of the counts)",
                                          path, stem, e.in_sum2.size(), e.counts.size()));
        d.entries.emplace(stem, std::move(e));
    }
    if (d.entries.empty())
        return make_error(ErrorCode::kBadInput, fmt::format("{}: the importance matrix has no entries", path));
    return d;
}

Status write_imatrix(const std::string& path, const ImatrixData& d) {
    Writer w;
    LOWBIT_TRY(w.set("general.type", Value::string("imatrix")));
    LOWBIT_TRY(w.set("imatrix.datasets", Value::string_array(d.datasets)));
    LOWBIT_TRY(w.set("imatrix.chunk_count", Value::u32(static_cast<uint32_t>(d.chunk_count))));
    LOWBIT_TRY(w.set("imatrix.chunk_size", Value::u32(static_cast<uint32_t>(d.chunk_size))));
    for (const auto& [name, e] : d.entries) {
        const auto n_mat = static_cast<int64_t>(e.counts.size());
        if (n_mat == 0 || e.in_sum2.size() % e.counts.size() != 0)
            return make_error(ErrorCode::kUsage, fmt::format("imatrix entry '{}': {} sums for {} counts", name,
                                                             e.in_sum2.size(), e.counts.size()));
        const int64_t ne0 = static_cast<int64_t>(e.in_sum2.size()) / n_mat;
        // ggml writes n_dims without trailing 1s: [ne0] and [1] for a single matrix.
        const Shape sums = n_mat == 1 ? Shape{ne0} : Shape{n_mat, ne0};
        const Shape counts = n_mat == 1 ? Shape{1} : Shape{n_mat, 1};
        LOWBIT_TRY(w.add_tensor_ref(name + std::string(kInSum2), DType::kF32, sums, e.in_sum2.data()));
        LOWBIT_TRY(w.add_tensor_ref(name + std::string(kCounts), DType::kF32, counts, e.counts.data()));
    }
    return w.write(path);
}

} // namespace lowbit::gguf
