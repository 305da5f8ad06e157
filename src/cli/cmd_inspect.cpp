// SPDX-License-Identifier: MIT
// `lowbit inspect PATH [--json]`: tensors, hyper-parameters, bits per weight and a memory table.
#include "cli/commands.h"
#include "pipeline/inspect/inspect.h"

#include <cstdio>
#include <string>

namespace lowbit::cli {

CommandAction setup_inspect(CLI::App& sub) {
    struct Args {
        std::string path;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    sub.add_option("path", a->path, "GGUF file, .safetensors file / index, or Hugging Face model folder")->required();
    sub.add_flag("--json", a->json, "Print a JSON document instead of tables");
    sub.footer(
        "Bits per weight = total tensor bits (with scales) / total tensor elements.\n"
        "Memory table (2-D tensors [N, K] use the scheme; 1-D tensors count as f32, 16-bit in the FP16 row):\n"
        "  INT8 row-wise: 8NK + 32N (f32 absmax per row)\n"
        "  NF4: 4n + 32*ceil(n/64) (~4.5 bpw); NF4 + double quant: 4n + 8*ceil(n/64) + 32 per 256 blocks (~4.127)\n"
        "  INT4 g128 (GPTQ): 4NK + (16 + 4) N ceil(K/128) + 32K (f16 scale, packed zero, g_idx; ~4.16)\n"
        "  GGUF Q8_0 8.5, Q6_K 6.5625, Q5_K 5.5, Q4_K 4.5, Q4_0 4.5, Q3_K 3.4375, Q2_K 2.625 bpw\n"
        "  (rows whose K is not a multiple of the block count as f16, as llama.cpp falls back)");
    return [a]() -> Status {
        LOWBIT_ASSIGN_OR_RETURN(pipeline::InspectReport r, pipeline::inspect_model(a->path));
        const std::string out = a->json ? pipeline::inspect_report_json(r) : pipeline::inspect_report_text(r);
        std::fwrite(out.data(), 1, out.size(), stdout);
        return ok_status();
    };
}

} // namespace lowbit::cli
