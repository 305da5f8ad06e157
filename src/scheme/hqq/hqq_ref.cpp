// SPDX-License-Identifier: MIT
// HQQ grouping, bit packing (hqq/core/bitpack.py), dequantization and state-dict records.
#include "core/half.h"
#include "scheme/hqq/hqq.h"

#include <cstring>
#include <fmt/format.h>

namespace lowbit::scheme::hqq {
namespace {

Error usage(std::string msg) {
    return make_error(ErrorCode::kUsage, std::move(msg));
}
Error bad(std::string msg) {
    return make_error(ErrorCode::kBadInput, std::move(msg));
}

// Rows of the code matrix per packed row (8 / nbits; 3-bit: 10 per int32).
int64_t parts(int nbits) {
    return nbits == 3 ? 10 : 8 / nbits;
}

float round_meta(float v, DType dtype) {
    return dtype == DType::kF16 ? f16_to_f32(f32_to_f16(v)) : v;
}

TensorRecord meta_record(const std::string& suffix, const std::vector<float>& v, DType dtype, Shape shape) {
    if (dtype == DType::kF32) return TensorRecord::from_values(suffix, dtype, shape, v);
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_f16(v[i]);
    return TensorRecord::from_values(suffix, dtype, shape, h);
}
TensorRecord string_record(const std::string& suffix, const std::string& s) {
    return TensorRecord::from_values(suffix, DType::kU8, Shape{int64_t(s.size())},
                                     std::vector<uint8_t>(s.begin(), s.end()));
}
TensorRecord u8_scalar(const std::string& suffix, bool v) {
    return TensorRecord::from_values(suffix, DType::kU8, Shape(), std::vector<uint8_t>{uint8_t(v ? 1 : 0)});
}
TensorRecord i32_scalar(const std::string& suffix, int64_t v) {
    return TensorRecord::from_values(suffix, DType::kI32, Shape(), std::vector<int32_t>{int32_t(v)});
}

Result<int64_t> read_i32_scalar(std::span<const TensorRecord> recs, const char* suffix) {
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* r, require_record(recs, suffix, DType::kI32, 1));
    return int64_t(r->values<int32_t>()[0]);
}
Result<std::string> read_string(std::span<const TensorRecord> recs, const char* suffix) {
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* r, require_record(recs, suffix, DType::kU8, -1));
    return std::string(r->bytes.begin(), r->bytes.end());
}
Result<std::vector<float>> read_meta(std::span<const TensorRecord> recs, const char* suffix, const Shape& shape,
                                     DType* dtype) {
    const TensorRecord* r = find_record(recs, suffix);
    if (!r) return bad(fmt::format("tensor '{}' is missing", suffix));
    if (r->dtype != DType::kF16 && r->dtype != DType::kF32)
        return bad(fmt::format("tensor '{}' should be f16 or f32 but is {}", suffix, dtype_name(r->dtype)));
    *dtype = r->dtype;
    LOWBIT_ASSIGN_OR_RETURN(r, require_record(recs, suffix, r->dtype, shape));
    if (r->dtype == DType::kF32) return r->values<float>();
    const auto h = r->values<uint16_t>();
    std::vector<float> v(h.size());
    for (size_t i = 0; i < h.size(); ++i) v[i] = f16_to_f32(h[i]);
    return v;
}

} // namespace

const char* packing_name(int nbits) {
    switch (nbits) {
    case 8:
        return "8bit_u8";
    case 4:
        return "4bit_u8";
    case 3:
        return "3bit_32";
    case 2:
        return "2bit_u8";
    case 1:
        return "1bit_u8";
    default:
        return "?";
    }
}

GroupedShape grouped_shape(const HqqParams& p, const Shape& shape) {
    const int64_t numel = shape.n_elems();
    const int64_t g = p.group_size;
    return p.axis == 1 ? GroupedShape{numel / g, g} : GroupedShape{g, numel / g};
}

Status validate(const HqqParams& p, const Shape& shape) {
    if (p.nbits != 1 && p.nbits != 2 && p.nbits != 3 && p.nbits != 4 && p.nbits != 8)
        return usage(fmt::format("HQQ nbits must be 1, 2, 3, 4 or 8, got {}", p.nbits));
    if (p.axis != 0 && p.axis != 1) return usage(fmt::format("HQQ axis must be 0 or 1, got {}", p.axis));
    if (p.meta_dtype != DType::kF16 && p.meta_dtype != DType::kF32)
        return usage(fmt::format("HQQ scale/zero dtype must be f16 or f32, got {}", dtype_name(p.meta_dtype)));
    const int64_t numel = shape.n_elems();
    if (shape.n_dims == 0 || numel <= 0)
        return usage(fmt::format("HQQ needs a non-empty weight, got {}", shape.to_string()));
    if (p.group_size <= 0 || numel % p.group_size != 0)
        return usage(fmt::format("HQQ group size {} must divide the weight's {} elements (shape {})", p.group_size,
                                 numel, shape.to_string()));
    const GroupedShape gs = grouped_shape(p, shape);
    if (p.nbits != 3 && p.nbits != 8 && gs.n_rows % parts(p.nbits) != 0)
        return usage(fmt::format("HQQ {}-bit packing splits the {} grouped rows into {} parts; {} is not divisible "
                                 "(axis {}, group size {})",
                                 p.nbits, gs.n_rows, parts(p.nbits), gs.n_rows, p.axis, p.group_size));
    return ok_status();
}

Shape packed_shape(int nbits, int64_t n_rows, int64_t n_cols) {
    if (nbits == 8) return Shape{n_rows, n_cols};
    if (nbits == 3) return Shape{(n_rows + 9) / 10, n_cols};
    return Shape{n_rows / parts(nbits), n_cols};
}

std::vector<uint8_t> pack(std::span<const uint8_t> q, int nbits, int64_t n_rows, int64_t n_cols) {
    if (nbits == 8) return std::vector<uint8_t>(q.begin(), q.end());
    const int64_t step = packed_shape(nbits, n_rows, n_cols)[0];
    if (nbits == 3) {
        std::vector<int32_t> w(size_t(step * n_cols), 0);
        for (int64_t k = 0; k < 10; ++k)
            for (int64_t i = 0; i < step && k * step + i < n_rows; ++i)
                for (int64_t c = 0; c < n_cols; ++c)
                    w[size_t(i * n_cols + c)] |=
                        int32_t(uint32_t(q[size_t((k * step + i) * n_cols + c)]) << (27 - 3 * k));
        std::vector<uint8_t> out(w.size() * 4);
        std::memcpy(out.data(), w.data(), out.size());
        return out;
    }
    std::vector<uint8_t> out(size_t(step * n_cols), 0);
    for (int64_t k = 0; k < parts(nbits); ++k) {
        const int shift = 8 - nbits * int(k + 1);
        for (int64_t i = 0; i < step; ++i)
            for (int64_t c = 0; c < n_cols; ++c)
                out[size_t(i * n_cols + c)] |= uint8_t(q[size_t((k * step + i) * n_cols + c)] << shift);
    }
    return out;
}

std::vector<uint8_t> unpack(std::span<const uint8_t> packed, int nbits, int64_t n_rows, int64_t n_cols) {
    if (nbits == 8) return std::vector<uint8_t>(packed.begin(), packed.end());
    const int64_t step = packed_shape(nbits, n_rows, n_cols)[0];
    std::vector<uint8_t> q(static_cast<size_t>(n_rows * n_cols));
    if (nbits == 3) {
        for (int64_t k = 0; k < 10; ++k)
            for (int64_t i = 0; i < step && k * step + i < n_rows; ++i)
                for (int64_t c = 0; c < n_cols; ++c) {
                    uint32_t w;
                    std::memcpy(&w, &packed[size_t(i * n_cols + c) * 4], 4);
                    q[size_t((k * step + i) * n_cols + c)] = uint8_t((w >> (27 - 3 * k)) & 7u);
                }
        return q;
    }
    const uint8_t mask = uint8_t((1u << nbits) - 1u);
    for (int64_t k = 0; k < parts(nbits); ++k) {
        const int shift = 8 - nbits * int(k + 1);
        for (int64_t i = 0; i < step; ++i)
            for (int64_t c = 0; c < n_cols; ++c)
                q[size_t((k * step + i) * n_cols + c)] = uint8_t((packed[size_t(i * n_cols + c)] >> shift) & mask);
    }
    return q;
}

Result<HqqTensor> make_tensor(const HqqParams& p, const Shape& shape, std::span<const uint8_t> q,
                              std::vector<float> scale, std::vector<float> zero) {
    LOWBIT_TRY(validate(p, shape));
    const GroupedShape gs = grouped_shape(p, shape);
    const int64_t n_groups = p.axis == 1 ? gs.n_rows : gs.n_cols;
    if (int64_t(q.size()) != gs.n_rows * gs.n_cols || int64_t(scale.size()) != n_groups ||
        int64_t(zero.size()) != n_groups)
        return usage(fmt::format("HQQ codes/scale/zero sizes {}/{}/{} do not match {} x {} with {} groups", q.size(),
                                 scale.size(), zero.size(), gs.n_rows, gs.n_cols, n_groups));
    const int max_q = (1 << p.nbits) - 1;
    for (size_t i = 0; i < q.size(); ++i)
        if (q[i] > max_q) return usage(fmt::format("HQQ code {} at {} exceeds {} bits", q[i], i, p.nbits));
    HqqTensor t;
    t.params = p;
    t.shape = shape;
    t.w_q = pack(q, p.nbits, gs.n_rows, gs.n_cols);
    for (float& s : scale) s = round_meta(s, p.meta_dtype);
    for (float& z : zero) z = round_meta(z, p.meta_dtype);
    t.scale = std::move(scale);
    t.zero = std::move(zero);
    return t;
}

void dequantize(const HqqTensor& t, float* out) {
    const GroupedShape gs = grouped_shape(t.params, t.shape);
    const std::vector<uint8_t> q = unpack(t.w_q, t.params.nbits, gs.n_rows, gs.n_cols);
    for (int64_t r = 0; r < gs.n_rows; ++r)
        for (int64_t c = 0; c < gs.n_cols; ++c) {
            const size_t g = size_t(t.params.axis == 1 ? r : c);
            const size_t i = size_t(r * gs.n_cols + c);
            out[i] = (float(q[i]) - t.zero[g]) * t.scale[g];
        }
}

std::vector<TensorRecord> to_records(const HqqTensor& t, bool optimize, bool round_zero) {
    const HqqParams& p = t.params;
    const GroupedShape gs = grouped_shape(p, t.shape);
    const Shape meta_shape = p.axis == 1 ? Shape{gs.n_rows, 1} : Shape{1, gs.n_cols};
    const bool i32 = p.nbits == 3;
    std::vector<TensorRecord> r;
    TensorRecord wq{"W_q", i32 ? DType::kI32 : DType::kU8, packed_shape(p.nbits, gs.n_rows, gs.n_cols), t.w_q};
    r.push_back(std::move(wq));
    r.push_back(i32_scalar("nbits", p.nbits));
    r.push_back(i32_scalar("group_size", p.group_size));
    std::vector<int64_t> dims(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.n_dims);
    r.push_back(TensorRecord::from_values("shape", DType::kI64, Shape{int64_t(dims.size())}, dims));
    r.push_back(meta_record("scale", t.scale, p.meta_dtype, meta_shape));
    r.push_back(meta_record("zero", t.zero, p.meta_dtype, meta_shape));
    r.push_back(i32_scalar("axis", p.axis));
    r.push_back(string_record("packing", packing_name(p.nbits)));
    r.push_back(string_record("unpack_view_dtype", i32 ? "torch.int32" : "torch.uint8"));
    r.push_back(u8_scalar("view_as_float", false));
    r.push_back(u8_scalar("quant_scale", false));
    r.push_back(u8_scalar("quant_zero", false));
    r.push_back(string_record("compute_dtype", p.meta_dtype == DType::kF16 ? "torch.float16" : "torch.float32"));
    r.push_back(u8_scalar("offload_meta", false));
    r.push_back(u8_scalar("encoded_state_dict", true));
    r.push_back(u8_scalar("stores_quant_config", true));
    r.push_back(u8_scalar("channel_wise", true));
    r.push_back(u8_scalar("optimize", optimize));
    r.push_back(u8_scalar("round_zero", round_zero));
    return r;
}

Result<HqqTensor> from_records(std::span<const TensorRecord> recs) {
    HqqTensor t;
    HqqParams& p = t.params;
    LOWBIT_ASSIGN_OR_RETURN(const int64_t nbits, read_i32_scalar(recs, "nbits"));
    LOWBIT_ASSIGN_OR_RETURN(p.group_size, read_i32_scalar(recs, "group_size"));
    LOWBIT_ASSIGN_OR_RETURN(const int64_t axis, read_i32_scalar(recs, "axis"));
    p.nbits = int(nbits);
    p.axis = int(axis);
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* sr, require_record(recs, "shape", DType::kI64, -1));
    const auto dims = sr->values<int64_t>();
    if (dims.empty() || dims.size() > size_t(kMaxDims))
        return bad(fmt::format("tensor 'shape' has {} dims (1..{} supported)", dims.size(), kMaxDims));
    for (int64_t d : dims) {
        if (d <= 0 || d > (int64_t(1) << 32)) return bad(fmt::format("tensor 'shape' has a bad dimension {}", d));
        t.shape[t.shape.n_dims++] = d;
    }
    if (t.shape.n_elems() > (int64_t(1) << 40)) return bad("tensor 'shape' is too large");
    if (Status s = validate(p, t.shape); !s.ok()) return bad("HQQ state: " + s.error().message);
    LOWBIT_ASSIGN_OR_RETURN(const std::string packing, read_string(recs, "packing"));
    if (packing != packing_name(p.nbits))
        return bad(
            fmt::format("tensor 'packing' says '{}' but nbits {} needs '{}'", packing, p.nbits, packing_name(p.nbits)));
    const GroupedShape gs = grouped_shape(p, t.shape);
    const Shape meta_shape = p.axis == 1 ? Shape{gs.n_rows, 1} : Shape{1, gs.n_cols}; // hqq's keepdim layout
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* wq, require_record(recs, "W_q", p.nbits == 3 ? DType::kI32 : DType::kU8,
                                                                   packed_shape(p.nbits, gs.n_rows, gs.n_cols)));
    t.w_q = wq->bytes;
    DType scale_dtype = DType::kF32, zero_dtype = DType::kF32;
    LOWBIT_ASSIGN_OR_RETURN(t.scale, read_meta(recs, "scale", meta_shape, &scale_dtype));
    LOWBIT_ASSIGN_OR_RETURN(t.zero, read_meta(recs, "zero", meta_shape, &zero_dtype));
    if (scale_dtype != zero_dtype)
        return bad(fmt::format("tensors 'scale' ({}) and 'zero' ({}) differ in dtype", dtype_name(scale_dtype),
                               dtype_name(zero_dtype)));
    p.meta_dtype = scale_dtype;
    return t;
}

} // namespace lowbit::scheme::hqq
