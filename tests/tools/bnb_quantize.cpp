// SPDX-License-Identifier: MIT
// Test helper: quantizes a raw f32 matrix with one row of quantize/algo_list.h and writes every record as a raw
// file, for the Python oracles (tests/oracle/test_bnb_oracle.py, test_hqq_oracle.py).
//   bnb_quantize <algo> <in.f32> <n_rows> <n_cols> <out_dir> [key=value ...]
//   keys: bits, group_size, symmetric, block_size, double_quant, axis, round_zero, optimize (ints; bools 0/1),
//   kappa_milli (hqq kappa * 1000)
// Writes <out_dir>/<suffix>.bin, <out_dir>/records.txt ("suffix dtype d0 d1 ..." per line) and report.txt.
#include "core/dtype.h"
#include "quantize/algo_list.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

int fail(const std::string& msg) {
    std::fprintf(stderr, "bnb_quantize: %s\n", msg.c_str());
    return 2;
}

bool set_param(lowbit::quantize::SchemeParams& p, const std::string& kv) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) return false;
    const std::string k = kv.substr(0, eq);
    const long long v = std::stoll(kv.substr(eq + 1));
    if (k == "bits")
        p.bits = int(v);
    else if (k == "group_size")
        p.group_size = v;
    else if (k == "symmetric")
        p.symmetric = v != 0;
    else if (k == "block_size")
        p.block_size = v;
    else if (k == "double_quant")
        p.double_quant = v != 0;
    else if (k == "axis")
        p.axis = int(v);
    else if (k == "round_zero")
        p.round_zero = v != 0;
    else if (k == "optimize")
        p.optimize = v != 0;
    else if (k == "kappa_milli")
        p.kappa = double(v) / 1000.0;
    else
        return false;
    return true;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 6) return fail("usage: bnb_quantize <algo> <in.f32> <n_rows> <n_cols> <out_dir> [key=value ...]");
    const lowbit::quantize::AlgoRow* row = lowbit::quantize::find_algo(argv[1]);
    if (!row) return fail(std::string("unknown algorithm ") + argv[1]);
    lowbit::quantize::QuantizeRequest req;
    req.n_rows = std::stoll(argv[3]);
    req.n_cols = std::stoll(argv[4]);
    const std::string out_dir = argv[5];
    for (int i = 6; i < argc; ++i)
        if (!set_param(req.params, argv[i])) return fail(std::string("bad parameter ") + argv[i]);
    std::vector<float> w(static_cast<size_t>(req.n_rows * req.n_cols));
    std::ifstream in(argv[2], std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(w.data()), std::streamsize(w.size() * sizeof(float))))
        return fail(std::string("cannot read ") + argv[2]);
    req.weights = w.data();
    if (auto s = lowbit::quantize::check_request(*row, req); !s.ok()) return fail(s.error().message);
    auto out = row->quantize(req);
    if (!out.ok()) return fail(out.error().message);
    std::ofstream list(out_dir + "/records.txt");
    for (const auto& r : out->records) {
        std::ofstream(out_dir + "/" + r.suffix + ".bin", std::ios::binary)
            .write(reinterpret_cast<const char*>(r.bytes.data()), std::streamsize(r.bytes.size()));
        list << r.suffix << ' ' << lowbit::dtype_name(r.dtype);
        for (int d = 0; d < r.shape.n_dims; ++d) list << ' ' << r.shape[d];
        list << '\n';
    }
    std::ofstream(out_dir + "/report.txt") << out->report.rmse << ' ' << out->report.rel_rmse << ' '
                                           << out->report.bits_per_weight << ' ' << out->report.n_iters << '\n';
    return 0;
}
