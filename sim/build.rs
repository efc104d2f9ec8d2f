//! The simulator only builds with `--cfg madsim` (madsim swaps its real runtime for the
//! deterministic one under it), which `.cargo/config.toml` sets. A `RUSTFLAGS` variable
//! replaces that setting, and a crate that depends on sim from another workspace never reads
//! it; without the cfg the build would end in a dozen cryptic errors about madsim's API. This
//! stops it first, with one message naming the cause and the config lines to add
//! (`build/madsim_cfg.rs`).
//!
//! It also names the commit the binary was built from (`sim --version`, and the builds that
//! reports compare), as `SIM_GIT_COMMIT`: `git describe --always --dirty`, or `unknown`
//! outside a git checkout.

use std::process::Command;

#[path = "build/madsim_cfg.rs"]
mod madsim_cfg;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn commit() -> String {
    // Rebuild when HEAD moves (a commit, a checkout) or the branch it names does.
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(&["rev-parse", "--git-path", &branch]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    git(&["describe", "--always", "--dirty", "--abbrev=12"]).unwrap_or_else(|| "unknown".to_owned())
}

fn main() {
    println!("cargo:rustc-env=SIM_GIT_COMMIT={}", commit());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/madsim_cfg.rs");
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    if std::env::var_os("CARGO_CFG_MADSIM").is_none() {
        let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS")
            .unwrap_or_default()
            .replace('\x1f', " ");
        let env = std::env::var("RUSTFLAGS").ok();
        eprint!("{}", madsim_cfg::message(env.as_deref(), &flags));
        std::process::exit(1);
    }
}
