//! The command line and its input, as users meet them: the summary and exit codes
//! ([`command`]), scenario files and their errors ([`scenarios`]), every knob's range
//! ([`config_ranges`]), sweep reports, shards and merges ([`sweep_reports`]), and the READMEs'
//! quoted files and outputs ([`docs`]), and the public face of the crate ([`api`]).

// The v2 differential tests' helpers (base64, running the Python models), shared by path.
#[path = "../../../idempotency/tests/branches/mod.rs"]
mod branches;

mod api;
mod build_message;
mod ci_examples;
mod command;
mod config_ranges;
mod docs;
mod findings;
mod scenarios;
mod shrink;
mod sweep_reports;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// What one run of the `sim` binary printed, and how it exited.
pub struct Ran {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Ran {
    /// Standard output followed by standard error.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs the `sim` binary with `args`, in `dir` when given, feeding it `stdin`.
pub fn sim_in(dir: Option<&Path>, args: &[&str], stdin: &[u8]) -> Ran {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sim"));
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command.spawn().expect("spawn sim");
    // The program may exit without reading its input (a bad argument): a broken pipe is fine.
    if let Err(e) = child.stdin.take().expect("stdin").write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let out = child.wait_with_output().expect("wait for sim");
    Ran {
        code: out.status.code().expect("sim exited, not killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
