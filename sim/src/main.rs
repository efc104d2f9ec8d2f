//! `sim`: run a seed of the simulation (see [`sim::cli`]).

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut out = std::io::stdout().lock();
    let code = sim::cli::main_with(args, &mut out);
    drop(out);
    std::process::exit(code);
}
