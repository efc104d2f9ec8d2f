//! The message `sim/build.rs` stops a build without `--cfg madsim` with names the real cause:
//! a RUSTFLAGS variable, a cargo config's rustflags without the cfg, or (a crate depending on
//! sim from another workspace) no rustflags at all; and each names the `.cargo/config.toml`
//! lines to add.

#[path = "../../build/madsim_cfg.rs"]
mod madsim_cfg;

use madsim_cfg::{message, CONFIG_LINES};

#[test]
fn a_build_without_the_cfg_is_told_its_cause_and_the_config_lines() {
    let lines = "[build]\nrustflags = [\"--cfg\", \"madsim\"]\nrustdocflags = [\"--cfg\", \"madsim\"]";
    assert_eq!(CONFIG_LINES, lines);
    // The lines are the project's own config's.
    let own = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.cargo/config.toml")).unwrap();
    for line in lines.lines() {
        assert!(
            own.lines().any(|l| l == line),
            "{line} is not in .cargo/config.toml"
        );
    }

    // A dependent crate in another workspace: no RUSTFLAGS, no rustflags.
    let other = message(None, "");
    assert!(other.contains("another workspace"), "{other}");
    assert!(!other.contains("RUSTFLAGS"), "no RUSTFLAGS was set: {other}");

    let env = message(Some("-C debuginfo=0"), "-C debuginfo=0");
    assert!(env.contains("RUSTFLAGS environment variable"), "{env}");
    assert!(env.contains("env -u RUSTFLAGS"), "{env}");

    let config = message(None, "-C target-cpu=native");
    assert!(config.contains("cargo config"), "{config}");
    assert!(!config.contains("RUSTFLAGS"), "{config}");

    for m in [other, env, config] {
        assert!(m.contains(".cargo/config.toml") && m.contains(lines), "{m}");
    }
}
