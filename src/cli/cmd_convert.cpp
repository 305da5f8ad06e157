// SPDX-License-Identifier: MIT
// `lowbit convert HF_DIR -o OUT.gguf [--type f32|f16|bf16|q8_0]`: Hugging Face folder -> GGUF (llama.cpp layout).
#include "cli/commands.h"
#include "pipeline/convert/convert.h"

#include <cstdio>
#include <string>

namespace lowbit::cli {

CommandAction setup_convert(CLI::App& sub) {
    struct Args {
        std::string input, output, type = "f16";
        bool no_progress = false;
    };
    auto a = std::make_shared<Args>();
    sub.add_option("input", a->input, "Hugging Face model folder (config.json + *.safetensors [+ tokenizer.json])")
        ->required();
    sub.add_option("-o,--output", a->output, "Output GGUF file")->required();
    sub.add_option("--type", a->type,
                   "Type of 2-D weights: f32, f16 (default), bf16, q8_0; 1-D tensors and norms stay f32")
        ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}, CLI::ignore_case));
    sub.add_flag("--no-progress", a->no_progress, "Do not draw the progress bar");
    return [a]() -> Status {
        pipeline::ConvertOptions o;
        o.input_dir = a->input;
        o.output_path = a->output;
        o.out_type = *dtype_from_name(a->type);
        o.progress = !a->no_progress;
        LOWBIT_ASSIGN_OR_RETURN(pipeline::ConvertReport r, pipeline::convert_hf_to_gguf(o));
        std::printf("wrote %s: %lld tensors, %lld parameters, %llu tensor bytes (%s)\n", a->output.c_str(),
                    static_cast<long long>(r.n_tensors), static_cast<long long>(r.n_params),
                    static_cast<unsigned long long>(r.n_bytes), a->type.c_str());
        return ok_status();
    };
}

} // namespace lowbit::cli
