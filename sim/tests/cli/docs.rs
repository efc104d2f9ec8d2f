//! The READMEs show the real thing: every scenario file quoted in them is the file itself and
//! parses, and every output they show is what `sim` prints today.
//!
//! Marked blocks: a line `<!-- sim-output: ARGS -->` before a fenced block says the block is the
//! output of `sim ARGS`, whole (it starts `SEED=`); `<!-- sim-mermaid: ARGS -->`
//! says the block is the diagram `sim ARGS --mermaid FILE` writes. `wall_ms=` is the only field
//! not compared. A ```` ```toml ```` block right after a line naming `NAME.toml` must be
//! `scenarios/NAME.toml`, byte for byte, and a ```` ```rust ```` block right after a line naming
//! `PATH.rs` (from the workspace root, e.g. `idempotency/examples/real_redis.rs`) must be that
//! file, byte for byte, as must a ```` ```toml ```` block after a line naming a `.toml` path
//! outside `scenarios/` (`examples/orders/Cargo.toml`). `UPDATE_DOCS=1 cargo test -p sim --test cli docs`
//! rewrites the marked blocks from the real output (then review the diff).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn mask_wall(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("wall_ms=") {
        out.push_str(&rest[..i + "wall_ms=".len()]);
        rest = &rest[i + "wall_ms=".len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        out.push('N');
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

fn sim(args: &[&str]) -> String {
    crate::sim_in(Some(&root()), args, b"").stdout
}

/// A file a block quotes.
enum Quoted {
    /// `scenarios/NAME.toml`, by its name.
    Scenario(String),
    /// A source file, by its path from the workspace root.
    Source(String),
}

/// What a marked block must hold.
fn real_output(kind: &str, args: &str) -> String {
    let args: Vec<&str> = args.split_whitespace().collect();
    match kind {
        "sim-output" => {
            let out = sim(&args);
            assert!(
                out.contains("verdict="),
                "sim {args:?} printed no verdict:\n{out}"
            );
            out
        }
        "sim-mermaid" => {
            let file = std::env::temp_dir().join(format!("docs-{}.md", std::process::id()));
            let mut with = args.clone();
            let path = file.to_str().unwrap().to_owned();
            with.extend(["--mermaid", &path]);
            sim(&with);
            let md = std::fs::read_to_string(&file).unwrap();
            let _ = std::fs::remove_file(&file);
            let start = md.find("```mermaid\n").expect("a mermaid fence") + "```mermaid\n".len();
            let end = md[start..].find("```").expect("the fence's end") + start;
            md[start..end].to_owned()
        }
        other => panic!("unknown marker {other}"),
    }
}

/// Checks (or with UPDATE_DOCS rewrites) one Markdown file; returns the problems, the number of
/// blocks checked and the source files quoted.
fn check_file(rel: &str, update: bool) -> (Vec<String>, usize, Vec<String>) {
    let path = root().join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut sources = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        out.push_str(line);
        let marker = line
            .trim()
            .strip_prefix("<!-- ")
            .and_then(|l| l.strip_suffix(" -->"))
            .and_then(|l| l.split_once(": "))
            .filter(|(k, _)| matches!(*k, "sim-output" | "sim-mermaid"));
        // The next line that is not blank opens the block.
        let open = (i + 1..lines.len())
            .find(|&j| !lines[j].trim().is_empty())
            .unwrap_or(i + 1);
        // A quoted file: the word in backticks on this line that names it.
        let named = |lang: &str, ext: &str| {
            lines
                .get(open)
                .is_some_and(|l| l.trim() == format!("```{lang}"))
                .then(|| {
                    line.split('`')
                        .find(|w| w.ends_with(ext) && !w.contains(' '))
                        .map(str::to_owned)
                })
                .flatten()
        };
        // A `.toml` named by a path outside `scenarios/` (`examples/orders/Cargo.toml`,
        // `.cargo/config.toml`) is a file quoted as it is, not a scenario.
        let quoted = named("toml", ".toml")
            .map(|w| match w.strip_prefix("scenarios/") {
                None if w.contains('/') => Quoted::Source(w),
                _ => Quoted::Scenario(w.trim_start_matches("scenarios/").to_owned()),
            })
            .or_else(|| named("rust", ".rs").map(Quoted::Source));
        if marker.is_none() && quoted.is_none() {
            i += 1;
            continue;
        }
        // The fenced block that follows.
        for blank in &lines[i + 1..open] {
            out.push_str(blank);
        }
        assert!(
            lines[open].trim_start().starts_with("```"),
            "{rel}:{}: a marker without a block",
            i + 1
        );
        let close = (open + 1..lines.len())
            .find(|&j| lines[j].trim() == "```")
            .unwrap_or_else(|| panic!("{rel}:{}: unclosed block", open + 1));
        let shown: String = lines[open + 1..close].concat();
        // Outputs are compared without their wall times; files byte for byte.
        let (want, masked) = match (marker, &quoted) {
            (Some((kind, args)), _) => (real_output(kind, args), true),
            (None, Some(Quoted::Scenario(name))) => {
                let file = root().join("scenarios").join(name);
                let want = std::fs::read_to_string(&file)
                    .unwrap_or_else(|e| panic!("{rel}:{}: {} ({e})", i + 1, file.display()));
                if let Err(e) = sim::internal::scenario::parse(&want, name) {
                    problems.push(format!("{rel}:{}: {name} does not parse: {e}", i + 1));
                }
                (want, false)
            }
            (None, Some(Quoted::Source(path))) => {
                sources.push(path.clone());
                let file = root().join(path);
                let want = std::fs::read_to_string(&file)
                    .unwrap_or_else(|e| panic!("{rel}:{}: {} ({e})", i + 1, file.display()));
                (want, false)
            }
            (None, None) => unreachable!(),
        };
        checked += 1;
        let compare = |s: &str| if masked { mask_wall(s) } else { s.to_owned() };
        if compare(&shown) != compare(&want) {
            problems.push(format!(
                "{rel}:{}: the block differs from the real thing\n--- shown\n{shown}--- real\n{want}",
                open + 2
            ));
        }
        out.push_str(lines[open]);
        out.push_str(if update && marker.is_some() { &want } else { &shown });
        out.push_str(lines[close]);
        i = close + 1;
    }
    if update && out != text {
        std::fs::write(&path, out).unwrap();
    }
    (problems, checked, sources)
}

#[test]
fn the_readmes_show_real_files_and_real_output() {
    let update = std::env::var("UPDATE_DOCS").is_ok_and(|v| v == "1");
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut sources = Vec::new();
    for rel in ["README.md", "scenarios/README.md", "seeds/README.md"] {
        let (p, n, s) = check_file(rel, update);
        problems.extend(p);
        checked += n;
        sources.extend(s);
    }
    assert!(checked >= 4, "the marked blocks were found ({checked})");
    for example in [
        "examples/orders/Cargo.toml",
        ".cargo/config.toml",
        "examples/orders/src/lib.rs",
        "examples/orders/tests/sweep.rs",
    ] {
        assert!(
            sources.iter().any(|s| s == example),
            "README.md's \"Test your own consumer\" quotes {example}; quoted: {sources:?}"
        );
    }
    assert!(
        sources.iter().any(|s| s == "idempotency/examples/real_redis.rs"),
        "README.md quotes the library example (a ```rust block right after a line naming \
         `idempotency/examples/real_redis.rs`); quoted: {sources:?}"
    );
    if !update {
        assert!(
            problems.is_empty(),
            "{}\n(UPDATE_DOCS=1 rewrites the marked blocks)",
            problems.join("\n\n")
        );
    }
}
