// SPDX-License-Identifier: MIT
// Streamed quantized HF checkpoint (see hf_checkpoint_stream.h): layout via the safetensors writer with zero
// place holders, offsets read back from its header, positional writes, sync + rename at the end.
#include "pipeline/quantize/hf_checkpoint_stream.h"

#include "core/file.h"
#include "format/safetensors/safetensors_reader.h"
#include "format/safetensors/safetensors_writer.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <unistd.h>

namespace lowbit::pipeline {
namespace {

namespace fs = std::filesystem;

struct Slot {
    DType dtype = DType::kU8;
    Shape shape;
    uint64_t n_bytes = 0;
    uint64_t offset = 0; // absolute, in the partial file
};

std::string weight_module(const std::string& name) {
    static const std::string suffix = ".weight";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        return "";
    return name.substr(0, name.size() - suffix.size());
}

QuantizeTypeRow& row_for(QuantizeJobReport& r, const std::string& type) {
    for (auto& row : r.rows)
        if (row.type == type) return row;
    r.rows.push_back({type, 0, 0, 0});
    return r.rows.back();
}

Result<uint64_t> record_bytes(const std::string& name, DType dtype, const Shape& shape) {
    const auto bytes = dtype_row_bytes(dtype, uint64_t(shape.n_elems()));
    if (!bytes) return make_error(ErrorCode::kUsage, "planned tensor '" + name + "' has no byte size");
    return *bytes;
}

// n zero bytes into a safetensors producer's sink: the place holders of tensors that come later.
Status sink_zeros(const safetensors::ByteSink& sink, uint64_t n) {
    static const std::vector<uint8_t> zeros(size_t(1) << 20);
    while (n > 0) {
        const uint64_t k = std::min<uint64_t>(n, zeros.size());
        LOWBIT_TRY(sink(zeros.data(), k));
        n -= k;
    }
    return ok_status();
}

Status pwrite_all(int fd, const uint8_t* p, uint64_t n, uint64_t offset, const std::string& path) {
    while (n > 0) {
        const ssize_t w = ::pwrite(fd, p, size_t(std::min<uint64_t>(n, uint64_t(1) << 30)), off_t(offset));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return make_error(ErrorCode::kIo, fmt::format("cannot write {} bytes at offset {} of '{}': {}", n, offset,
                                                          path, std::strerror(errno)));
        p += w, n -= uint64_t(w), offset += uint64_t(w);
    }
    return ok_status();
}

} // namespace

struct HfCheckpointStream::Impl {
    std::string out_dir, src_dir, partial_path; // out_dir: the staging directory (staged->path())
    std::unique_ptr<StagedDir> staged;
    HfQuantizedCheckpoint meta;          // quantization_config_json, side_files (modules/replaced emptied)
    std::map<std::string, Slot> pending; // full tensor name -> where it goes
    QuantizeJobReport report;            // rows, n_params, n_bytes: known from the plan
    int fd = -1;
    bool finished = false;

    ~Impl() {
        if (fd >= 0) ::close(fd);
        if (!finished && !partial_path.empty()) ::unlink(partial_path.c_str());
    }
    Status write_slot(const std::string& name, DType dtype, const Shape& shape, const uint8_t* data, uint64_t n);
};

HfCheckpointStream::HfCheckpointStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HfCheckpointStream::~HfCheckpointStream() = default;

size_t HfCheckpointStream::n_pending() const {
    return impl_->pending.size();
}

Result<std::unique_ptr<HfCheckpointStream>> HfCheckpointStream::create(const std::string& out_dir,
                                                                       const std::string& src_dir,
                                                                       const format::TensorStore& store,
                                                                       const HfQuantizedCheckpoint& plan) {
    auto m = std::make_unique<Impl>();
    m->src_dir = src_dir;
    m->meta.quantization_config_json = plan.quantization_config_json;
    m->meta.side_files = plan.side_files;
    for (const auto& [module, records] : plan.modules)
        if (!store.find(module + ".weight"))
            return make_error(
                ErrorCode::kUsage,
                fmt::format("quantized linear '{}' has no tensor '{}.weight' in the source", module, module));
    for (const auto& [name, bytes] : plan.replaced)
        if (!store.find(name))
            return make_error(ErrorCode::kUsage, fmt::format("replacement for '{}': no such source tensor", name));
    LOWBIT_ASSIGN_OR_RETURN(m->staged, stage_output_dir(out_dir));
    m->out_dir = m->staged->path();
    // The tensor list and report rows of write_hf_quantized_checkpoint, with zeros where the bytes come later.
    std::vector<safetensors::TensorToWrite> tensors;
    auto later = [&](const std::string& name, DType dtype, const Shape& shape) -> Result<uint64_t> {
        LOWBIT_ASSIGN_OR_RETURN(uint64_t n, record_bytes(name, dtype, shape));
        m->pending[name] = Slot{dtype, shape, n, 0};
        tensors.push_back({name, dtype, shape, nullptr, [n](const auto& sink) { return sink_zeros(sink, n); }});
        return n;
    };
    for (const auto& info : store.tensors()) {
        m->report.n_params += info.shape.n_elems();
        if (auto it = plan.modules.find(weight_module(info.name)); it != plan.modules.end()) {
            auto& row = row_for(m->report, plan.row_type);
            row.n_tensors += 1, row.n_elems += info.shape.n_elems();
            for (const auto& r : it->second) {
                LOWBIT_ASSIGN_OR_RETURN(uint64_t n, later(it->first + "." + r.suffix, r.dtype, r.shape));
                row.n_bytes += n, m->report.n_bytes += n;
            }
            continue;
        }
        if (plan.replaced.count(info.name)) {
            LOWBIT_TRY(later(info.name, info.dtype, info.shape));
        } else {
            LOWBIT_ASSIGN_OR_RETURN(TensorView v, store.view(info.name));
            tensors.push_back({info.name, info.dtype, info.shape, v.data, {}});
        }
        auto& row = row_for(m->report, std::string(dtype_name(info.dtype)));
        row.n_tensors += 1, row.n_elems += info.shape.n_elems(), row.n_bytes += info.n_bytes;
        m->report.n_bytes += info.n_bytes;
    }
    safetensors::WriteOptions wo;
    wo.metadata["format"] = "pt";
    wo.metadata["quantizer"] = plan.quantizer;
    m->partial_path = m->out_dir + "/model.safetensors.partial." + std::to_string(::getpid());
    LOWBIT_TRY(safetensors::write_safetensors(m->partial_path, tensors, wo));
    {
        // Where each place holder landed: the writer's own header, read back (no second copy of its layout rules).
        LOWBIT_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(m->partial_path));
        LOWBIT_ASSIGN_OR_RETURN(auto header,
                                safetensors::parse_header(mapped->data(), mapped->size(), m->partial_path));
        for (const auto& t : header.tensors)
            if (auto it = m->pending.find(t.name); it != m->pending.end()) it->second.offset = t.offset_bytes;
    }
    m->fd = ::open(m->partial_path.c_str(), O_WRONLY | O_CLOEXEC);
    if (m->fd < 0)
        return make_error(ErrorCode::kIo, "cannot reopen '" + m->partial_path + "': " + std::strerror(errno));
    return std::unique_ptr<HfCheckpointStream>(new HfCheckpointStream(std::move(m)));
}

Status HfCheckpointStream::Impl::write_slot(const std::string& name, DType dtype, const Shape& shape,
                                            const uint8_t* data, uint64_t n) {
    auto it = pending.find(name);
    if (it == pending.end())
        return make_error(ErrorCode::kInternal, "checkpoint stream: '" + name + "' was not planned or came twice");
    const Slot& s = it->second;
    if (dtype != s.dtype || !(shape == s.shape) || n != s.n_bytes)
        return make_error(
            ErrorCode::kInternal,
            fmt::format("checkpoint stream: '{}' is {} {} ({} bytes), the layout planned {} {} ({} bytes)", name,
                        dtype_name(dtype), shape.to_string(), n, dtype_name(s.dtype), s.shape.to_string(), s.n_bytes));
    LOWBIT_TRY(pwrite_all(fd, data, n, s.offset, partial_path));
    pending.erase(it);
    return ok_status();
}

Status HfCheckpointStream::add(const std::string& module, const std::vector<scheme::TensorRecord>& records) {
    for (const auto& r : records)
        LOWBIT_TRY(impl_->write_slot(module + "." + r.suffix, r.dtype, r.shape, r.bytes.data(), r.bytes.size()));
    return ok_status();
}

Status HfCheckpointStream::replace(const std::string& name, std::span<const uint8_t> bytes) {
    auto it = impl_->pending.find(name);
    if (it == impl_->pending.end())
        return make_error(ErrorCode::kInternal, "checkpoint stream: '" + name + "' was not planned or came twice");
    return impl_->write_slot(name, it->second.dtype, it->second.shape, bytes.data(), bytes.size());
}

Status HfCheckpointStream::finish(QuantizeJobReport& report) {
    Impl& m = *impl_;
    if (!m.pending.empty())
        return make_error(ErrorCode::kInternal, fmt::format("checkpoint stream: {} tensors never arrived (first: '{}')",
                                                            m.pending.size(), m.pending.begin()->first));
    const int fd = m.fd;
    m.fd = -1;
    if (::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        return make_error(ErrorCode::kIo, "cannot sync '" + m.partial_path + "': " + std::strerror(err));
    }
    if (::close(fd) != 0)
        return make_error(ErrorCode::kIo, "cannot close '" + m.partial_path + "': " + std::strerror(errno));
    const std::string final_path = m.out_dir + "/model.safetensors";
    if (::rename(m.partial_path.c_str(), final_path.c_str()) != 0)
        return make_error(ErrorCode::kIo,
                          "cannot rename '" + m.partial_path + "' to '" + final_path + "': " + std::strerror(errno));
    m.finished = true;
    LOWBIT_TRY(write_hf_side_files(m.out_dir, m.src_dir, m.meta));
    LOWBIT_TRY(m.staged->commit());
    m.out_dir = m.staged->final_path();
    for (const auto& r : m.report.rows) {
        auto& row = row_for(report, r.type);
        row.n_tensors += r.n_tensors, row.n_elems += r.n_elems, row.n_bytes += r.n_bytes;
    }
    report.n_params += m.report.n_params;
    report.n_bytes += m.report.n_bytes;
    report.file_bytes = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(m.out_dir, ec))
        if (entry.is_regular_file()) report.file_bytes += entry.file_size();
    return ok_status();
}

} // namespace lowbit::pipeline
