// SPDX-License-Identifier: MIT
// st_tool: lets the safetensors oracle test (tests/oracle/test_safetensors_oracle.py) drive lowbit's
// safetensors writer and reader.
//   st_tool write OUT.safetensors [--shard-bytes N]  one tensor per plain dtype (+ a scalar and an empty
//       tensor); tensor i's byte k = (i * 131 + k * 7 + 3) % 251 (BOOL: k % 2); __metadata__ {"format": "pt",
//       "writer": "lowbit"}
//   st_tool dump PATH   (file, index or folder) prints JSON {"metadata": {...}, "tensors": {name: {"dtype",
//       "shape", "hex"}}} — hex of the raw bytes; exit 3 with the error message on bad input.
#include "format/safetensors/safetensors_reader.h"
#include "format/safetensors/safetensors_writer.h"

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

using namespace lowbit;

namespace {

int write_cmd(const std::string& out, uint64_t shard_bytes) {
    const DType types[] = {DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kI64,
                           DType::kI32, DType::kI16, DType::kI8,  DType::kU8,   DType::kBool};
    std::vector<safetensors::TensorToWrite> ts;
    std::vector<std::vector<uint8_t>> bufs;
    int i = 0;
    auto add = [&](const std::string& name, DType t, Shape s) {
        const uint64_t n = static_cast<uint64_t>(s.n_elems()) * static_cast<uint64_t>(dtype_block_bytes(t));
        std::vector<uint8_t> b(n);
        for (uint64_t k = 0; k < n; ++k)
            b[k] = t == DType::kBool ? static_cast<uint8_t>(k % 2) : static_cast<uint8_t>((i * 131 + k * 7 + 3) % 251);
        bufs.push_back(std::move(b));
        ++i;
    };
    std::vector<std::tuple<std::string, DType, Shape>> specs;
    for (DType t : types) specs.emplace_back("t_" + std::string(dtype_traits(t).safetensors_name), t, Shape{3, 5, 2});
    specs.emplace_back("scalar", DType::kF32, Shape{});
    specs.emplace_back("empty", DType::kF16, Shape{0, 4});
    specs.emplace_back("big", DType::kF32, Shape{64, 32});
    for (auto& [name, t, s] : specs) add(name, t, s);
    for (size_t j = 0; j < specs.size(); ++j) {
        safetensors::TensorToWrite w;
        w.name = std::get<0>(specs[j]);
        w.dtype = std::get<1>(specs[j]);
        w.shape = std::get<2>(specs[j]);
        if (j % 2 == 0) {
            w.data = bufs[j].data();
        } else { // exercise the streaming path: two chunks
            const auto* b = &bufs[j];
            w.produce = [b](const safetensors::ByteSink& sink) -> Status {
                const uint64_t h = b->size() / 2;
                LOWBIT_TRY(sink(b->data(), h));
                return sink(b->data() + h, b->size() - h);
            };
        }
        ts.push_back(std::move(w));
    }
    safetensors::WriteOptions o;
    o.metadata = {{"format", "pt"}, {"writer", "lowbit"}};
    o.max_shard_bytes = shard_bytes;
    auto r = safetensors::write_safetensors(out, ts, o);
    if (!r.ok()) {
        std::fprintf(stderr, "st_tool: %s\n", r.error().message.c_str());
        return 1;
    }
    for (const auto& p : *r) std::printf("%s\n", p.c_str());
    return 0;
}

int dump_cmd(const std::string& path) {
    auto s = safetensors::Store::open(path);
    if (!s.ok()) {
        std::fprintf(stderr, "st_tool: %s\n", s.error().message.c_str());
        return 3;
    }
    nlohmann::json j;
    j["metadata"] = nlohmann::json::object();
    for (const auto& [k, v] : (*s)->metadata()) j["metadata"][k] = v;
    j["tensors"] = nlohmann::json::object();
    for (const auto& t : (*s)->tensors()) {
        auto v = (*s)->view(t.name);
        if (!v.ok()) return 1;
        static const char* hexd = "0123456789abcdef";
        std::string hex;
        const auto* p = static_cast<const uint8_t*>(v->data);
        for (uint64_t k = 0; k < t.n_bytes; ++k) {
            hex += hexd[p[k] >> 4];
            hex += hexd[p[k] & 15];
        }
        nlohmann::json shape = nlohmann::json::array();
        for (int d = 0; d < t.shape.n_dims; ++d) shape.push_back(t.shape[d]);
        j["tensors"][t.name] = {
            {"dtype", std::string(dtype_traits(t.dtype).safetensors_name)}, {"shape", shape}, {"hex", hex}};
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc >= 3 && std::strcmp(argv[1], "write") == 0) {
        uint64_t shard = 0;
        if (argc == 5 && std::strcmp(argv[3], "--shard-bytes") == 0) shard = std::stoull(argv[4]);
        return write_cmd(argv[2], shard);
    }
    if (argc == 3 && std::strcmp(argv[1], "dump") == 0) return dump_cmd(argv[2]);
    std::fprintf(stderr, "usage: st_tool write OUT [--shard-bytes N] | st_tool dump PATH\n");
    return 2;
}
