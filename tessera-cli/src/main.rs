//! `tessera`: the command-line face of the Tessera host.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// The trainable graph allocates and frees many tensors of a few hundred KiB per step; the
/// system allocator maps and unmaps each of them, which costs more than the arithmetic.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Threads candle's CPU kernels use unless `RAYON_NUM_THREADS` says otherwise. The trainable
/// graph runs many small operations; handing each to a thread pool costs more in
/// synchronisation than it gains (1.5× slower with two threads than with one, measured on the
/// bundled models).
const DEFAULT_KERNEL_THREADS: &str = "1";

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, `mimalloc.h`; the
/// bindings do not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory mapped instead of returning it to the system after 10 ms (mimalloc's
/// default). Each training step frees and reallocates the same tensors; returned pages come
/// back zero-filled by the kernel, which took 15 % of a transformer's fine-tuning time. The
/// process keeps its peak footprint instead.
fn keep_freed_memory() {
    // SAFETY: sets one allocator option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

fn main() -> ExitCode {
    keep_freed_memory();
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Set before any thread exists.
        std::env::set_var("RAYON_NUM_THREADS", DEFAULT_KERNEL_THREADS);
    }
    let arguments = cli::Cli::parse();
    match cli::run(arguments) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
