//! The public face of the crate: what its root re-exports is the API, each item documented
//! with an example (the doc tests compile and run every one), and the crate's parts stay
//! behind the one hidden module.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names `lib.rs` re-exports with `pub use`, each with the path it comes from.
fn reexports(lib: &str) -> Vec<(String, String)> {
    let mut names = Vec::new();
    for line in lib.lines().filter(|l| l.starts_with("pub use ")) {
        let body = line.trim_start_matches("pub use ").trim_end_matches(';');
        match body.split_once("::{") {
            Some((path, list)) => {
                for name in list.trim_end_matches('}').split(',') {
                    names.push((name.trim().to_owned(), path.to_owned()));
                }
            }
            None => {
                let (path, name) = body.rsplit_once("::").unwrap();
                names.push((name.to_owned(), path.to_owned()));
            }
        }
    }
    names
}

/// The doc comment of the item `name` defined at the top level of some file under `src/`
/// (`pub struct|enum|trait|type|fn NAME`) in the files of module `from`, or of the module
/// file `name.rs`/`name/mod.rs` there.
fn doc_of(files: &BTreeMap<PathBuf, String>, from: &str, name: &str) -> Option<String> {
    // Only the files of the module it comes from (`run` is `run.rs` or `run/**`).
    let dir = src().join(from.replace("::", "/"));
    let within = |p: &Path| p.starts_with(&dir) || p == dir.with_extension("rs");
    for (path, text) in files.iter().filter(|(p, _)| within(p)) {
        let is_module = path == &dir.join(format!("{name}.rs")) || path == &dir.join(name).join("mod.rs");
        if is_module {
            let inner: Vec<&str> = text.lines().take_while(|l| l.starts_with("//!")).collect();
            return Some(inner.join("\n"));
        }
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let defines = ["struct", "enum", "trait", "type", "fn"].iter().any(|kw| {
                line.strip_prefix(&format!("pub {kw} ")).is_some_and(|rest| {
                    rest.starts_with(name)
                        && !rest[name.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                })
            });
            if !defines {
                continue;
            }
            let mut doc = Vec::new();
            for above in lines[..i].iter().rev() {
                if above.starts_with("///") {
                    doc.push(*above);
                } else if !above.starts_with("#[") {
                    break;
                }
            }
            doc.reverse();
            return Some(doc.join("\n"));
        }
    }
    None
}

#[test]
fn every_item_the_root_exports_has_an_example() {
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut paths = Vec::new();
    rust_files(&src(), &mut paths);
    let files: BTreeMap<PathBuf, String> = paths
        .into_iter()
        .map(|p| (p.clone(), fs::read_to_string(p).unwrap()))
        .collect();
    let exported = reexports(&lib);
    assert!(exported.len() >= 20, "the root re-exports the API: {exported:?}");
    let mut missing = Vec::new();
    for (name, from) in &exported {
        match doc_of(&files, from, name) {
            None => missing.push(format!("{name} (from {from}): definition not found")),
            Some(doc) if doc.trim().is_empty() => missing.push(format!("{name}: no documentation")),
            Some(doc) if !doc.contains("```") => missing.push(format!("{name}: no example")),
            Some(_) => {}
        }
    }
    assert!(
        missing.is_empty(),
        "public items without an example:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_crates_parts_are_private_behind_one_hidden_module() {
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    let public_mods: Vec<&str> = lib.lines().filter(|l| l.starts_with("pub mod ")).collect();
    assert_eq!(
        public_mods,
        ["pub mod internal {"],
        "only the hidden module is public"
    );
    let before = lib.split("pub mod internal {").next().unwrap();
    assert!(
        before.trim_end().ends_with("#[doc(hidden)]"),
        "the internal module is hidden from the docs"
    );
    for line in lib.lines().filter(|l| l.starts_with("mod ")) {
        assert!(line.ends_with(';'), "a part is a private module: {line}");
    }
}
