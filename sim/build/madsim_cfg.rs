//! The message `sim/build.rs` stops a build with when it lacks `--cfg madsim`, by its cause.
//! Shared by the build script and a test (`sim/tests/cli/build_message.rs`), which cannot call
//! a build script's functions otherwise.

/// The lines a workspace's `.cargo/config.toml` needs for sim: every crate of the build gets
/// the cfg (madsim's own crates switch on it too, so it cannot be set for sim alone).
pub const CONFIG_LINES: &str =
    "[build]\nrustflags = [\"--cfg\", \"madsim\"]\nrustdocflags = [\"--cfg\", \"madsim\"]";

/// Why this build lacks `--cfg madsim` and what to do: `rustflags_env` is the `RUSTFLAGS`
/// environment variable if set, `effective` the flags cargo gave the build (its
/// `CARGO_ENCODED_RUSTFLAGS`, separators made spaces).
pub fn message(rustflags_env: Option<&str>, effective: &str) -> String {
    let cause = match rustflags_env {
        Some(env) => format!(
            "a RUSTFLAGS environment variable ({env:?}) replaces the rustflags that \
             `.cargo/config.toml` sets. Unset it (`env -u RUSTFLAGS cargo ...`), or add \
             `--cfg madsim` to it (RUSTFLAGS=\"--cfg madsim {env}\")."
        ),
        None if !effective.trim().is_empty() => format!(
            "its rustflags ({:?}) come from a cargo config (`build.rustflags` or \
             `target.<triple>.rustflags`) that does not include it. Add `\"--cfg\", \"madsim\"` \
             to those rustflags, as sim's own `.cargo/config.toml` does.",
            effective.trim()
        ),
        None => "it has no rustflags at all: cargo did not read sim's `.cargo/config.toml` \
                 (cargo reads the config of the directory it runs in and of its parents, so \
                 only a build started inside sim's checkout does). A crate that depends on sim \
                 from another workspace must set the cfg itself."
            .to_owned(),
    };
    format!(
        "error: sim must be built with `--cfg madsim` (madsim swaps its real runtime for the \
         deterministic one under it), and this build has not got it: {cause}\n\
         The workspace that builds sim needs these lines in its `.cargo/config.toml`:\n\n{CONFIG_LINES}\n"
    )
}
