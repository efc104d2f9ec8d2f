//! `sim`: run a seed of the simulation (see [`sim::internal::cli`]).

// Seeds allocate and free many small values (records, messages, trace events) on short-lived
// threads; mimalloc's per-thread free lists cost about half of what glibc's malloc does here
// (see the README's Speed section). Allocation never reaches a trace, so determinism is untouched.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut out = std::io::stdout().lock();
    let code = sim::internal::cli::main_with(args, &mut out);
    drop(out);
    std::process::exit(code);
}
