//! The simulator only builds with `--cfg madsim` (madsim swaps its real runtime for the
//! deterministic one under it), which `.cargo/config.toml` sets. A `RUSTFLAGS` variable
//! replaces that setting, and without the cfg the build would end in a dozen cryptic errors
//! about madsim's API; this stops it first, with one message saying what to do.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    if std::env::var_os("CARGO_CFG_MADSIM").is_none() {
        let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS")
            .unwrap_or_default()
            .replace('\x1f', " ");
        eprintln!(
            "error: sim must be built with `--cfg madsim`, and this build has not got it \
             (its rustflags: {flags:?}).\n\
             `.cargo/config.toml` sets it, but a RUSTFLAGS environment variable replaces that \
             setting: unset RUSTFLAGS (`env -u RUSTFLAGS cargo ...`), or add `--cfg madsim` to \
             it (RUSTFLAGS=\"--cfg madsim {flags}\")."
        );
        std::process::exit(1);
    }
}
