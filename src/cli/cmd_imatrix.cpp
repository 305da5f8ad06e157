// SPDX-License-Identifier: MIT
// `lowbit imatrix -m MODEL -f TEXT -o imatrix.gguf [-c 512] [--chunks N] [-b N] [-t N]`: llama-imatrix's
// importance matrix (GGUF format) for `lowbit quantize --imatrix` and llama-quantize.
#include "cli/commands.h"
#include "core/thread_pool.h"
#include "pipeline/imatrix/imatrix.h"

#include <cstdio>
#include <fmt/format.h>

namespace lowbit::cli {

CommandAction setup_imatrix(CLI::App& sub) {
    struct Args {
        pipeline::ImatrixOptions o;
        bool no_progress = false;
    };
    auto a = std::make_shared<Args>();
    sub.add_option("-m,--model", a->o.model, "Model: Hugging Face folder or .gguf file")->required();
    sub.add_option("-f,--file", a->o.text_file, "Calibration text file (UTF-8)")->required();
    sub.add_option("-o,--output", a->o.output, "Output imatrix file (.gguf)")->required();
    sub.add_option("-c,--ctx-size", a->o.n_ctx, "Tokens per chunk (default 512)");
    sub.add_option("--chunks", a->o.n_chunks, "Chunks to process (default: all the text has)");
    sub.add_option("-b,--batch-size", a->o.n_batch, "Tokens per forward call (default 512)");
    sub.add_flag("--process-output", a->o.process_output, "Also collect output.weight (off, as llama-imatrix)");
    add_threads_flag(sub, a->o.n_threads);
    sub.add_flag("--no-progress", a->no_progress, "Do not draw the progress bar");
    return [a]() -> Status {
        a->o.progress = !a->no_progress;
        ThreadPool::set_default_threads(a->o.n_threads);
        LOWBIT_ASSIGN_OR_RETURN(pipeline::ImatrixReport r, pipeline::compute_imatrix(a->o));
        std::fputs(fmt::format("imatrix: {} tokens, {} chunks of {}, {} entries, {:.2f} s\nwrote {}\n", r.n_tokens,
                               r.n_chunks, a->o.n_ctx, r.n_entries, r.seconds, a->o.output)
                       .c_str(),
                   stdout);
        return ok_status();
    };
}

} // namespace lowbit::cli
