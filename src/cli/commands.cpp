// SPDX-License-Identifier: MIT
// run_main: parse argv with CLI11, dispatch to the chosen command, map errors to exit codes.
#include "cli/commands.h"

#include "core/thread_pool.h"
#include "runtime/session.h"

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace lowbit::cli {

// Rows of the command table; each is defined in its cmd_<name>.cpp.
CommandAction setup_version(CLI::App& sub);
CommandAction setup_run(CLI::App& sub);
CommandAction setup_perplexity(CLI::App& sub);
CommandAction setup_convert(CLI::App& sub);
CommandAction setup_inspect(CLI::App& sub);
CommandAction setup_tokenize(CLI::App& sub);
CommandAction setup_quantize(CLI::App& sub);
CommandAction setup_imatrix(CLI::App& sub);
CommandAction setup_bench(CLI::App& sub);
CommandAction setup_serve(CLI::App& sub);
CommandAction setup_compare(CLI::App& sub);

namespace {

const Command kCommands[] = {
    {"version", "Print the version and build configuration", setup_version},
    {"run", "Generate text from a prompt (sampling: temp, top-k, top-p, min-p, repeat penalty)", setup_run},
    {"perplexity", "Perplexity of a text (llama.cpp chunks or HF stride) and KL divergence against a base",
     setup_perplexity},
    {"convert", "Convert a Hugging Face model folder to GGUF (f32/f16/bf16/q8_0)", setup_convert},
    {"inspect", "Show tensors, hyper-parameters, bits per weight and memory needs of a model", setup_inspect},
    {"tokenize", "Print the token ids of a text for a GGUF file or Hugging Face folder", setup_tokenize},
    {"quantize", "Quantize a model: GGUF types and mixes (q4_k_m, ...) or HF-style schemes (nf4, hqq, ...)",
     setup_quantize},
    {"imatrix", "Compute an importance matrix (llama.cpp GGUF imatrix) from a calibration text", setup_imatrix},
    {"compare", "Quantize with several methods and compare PPL / KLD / size / speed (report + Pareto SVG)",
     setup_compare},
    {"bench", "Prompt-processing and generation throughput, like llama-bench (table or --json lines)", setup_bench},
    {"serve", "OpenAI-compatible HTTP server with continuous batching and a chat page", setup_serve},
};

int fail(const Error& e) {
    std::fprintf(stderr, "lowbit: error: %s\n", e.message.c_str());
    return exit_code_for(e.code);
}

} // namespace

void add_threads_flag(CLI::App& sub, int& n_threads) {
    n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    sub.add_option("-t,--threads", n_threads, "Number of CPU threads (default: all cores)")->check(CLI::Range(1, 1024));
}

void add_cache_type_flag(CLI::App& sub, std::string& cache_type) {
    cache_type = "f16";
    sub.add_option("--cache-type", cache_type, "KV cache type: f16, f32 (exact) or q8_0")->capture_default_str();
}

Result<DType> cache_type_of(const std::string& cache_type) {
    return runtime::parse_cache_type(cache_type);
}

void add_device_flag(CLI::App& sub, DeviceArgs& d) {
    sub.add_option("--device", d.device,
                   "Where the model runs: cpu (default), cuda (weights, KV cache and activations on one GPU), auto "
                   "(cuda when this build and machine can run the model there, else cpu)");
    sub.add_option("--n-gpu-layers", d.n_gpu_layers,
                   "llama.cpp compatibility: N > 0 runs the whole model on the GPU (= --device cuda; there is no "
                   "partial offload), 0 = cpu");
}

Result<runtime::Device> device_of(const DeviceArgs& d) {
    if (d.n_gpu_layers < -1) return make_error(ErrorCode::kUsage, "-ngl/--n-gpu-layers must be >= 0");
    std::optional<runtime::Device> from_ngl;
    if (d.n_gpu_layers >= 0) from_ngl = d.n_gpu_layers > 0 ? runtime::Device::kCuda : runtime::Device::kCpu;
    if (d.device.empty()) return from_ngl.value_or(runtime::Device::kCpu);
    LOWBIT_ASSIGN_OR_RETURN(const runtime::Device dev, runtime::parse_device(d.device));
    if (from_ngl && dev != runtime::Device::kAuto && dev != *from_ngl)
        return make_error(ErrorCode::kUsage,
                          "--device " + d.device + " contradicts -ngl " + std::to_string(d.n_gpu_layers));
    return from_ngl && dev == runtime::Device::kAuto ? *from_ngl : dev;
}

int run_main(int argc, char** argv) {
    CLI::App app{"lowbit: quantize, evaluate and run Llama-family LLMs (CPU and CUDA)", "lowbit"};
    app.set_version_flag("--version", "lowbit " LOWBIT_VERSION_STRING);
    app.require_subcommand(1);
    app.fallthrough(false);
    std::map<CLI::App*, CommandAction> actions;
    for (const Command& c : kCommands) {
        CLI::App* sub = app.add_subcommand(c.name, c.help);
        actions[sub] = c.setup(*sub);
    }
    // llama.cpp's multi-letter short flag -ngl (CLI11 takes one-letter short names only) -> --n-gpu-layers.
    std::vector<std::string> args;
    for (int i = argc - 1; i >= 1; --i) {
        std::string a = argv[i];
        if (a == "-ngl")
            a = "--n-gpu-layers";
        else if (a.rfind("-ngl=", 0) == 0)
            a = "--n-gpu-layers=" + a.substr(5);
        else if (a == "-np") // llama-server's slot count
            a = "--parallel";
        args.push_back(std::move(a));
    }
    try {
        app.parse(args); // CLI11 takes the arguments in reverse order
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string hint = "run 'lowbit --help' for usage";
        for (const auto& [sub, action] : actions)
            if (sub->parsed()) hint = "run 'lowbit " + sub->get_name() + " --help' for usage";
        std::fprintf(stderr, "lowbit: error: %s (%s)\n", e.what(), hint.c_str());
        return 2;
    }
    for (const auto& [sub, action] : actions) {
        if (!sub->parsed()) continue;
        Status st = action();
        return st.ok() ? 0 : fail(st.error());
    }
    return fail(make_error(ErrorCode::kUsage, "no command given"));
}

} // namespace lowbit::cli
