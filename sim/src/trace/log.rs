//! `tracing` output from inside a run, for debugging the harness or the library: with
//! `RUST_LOG` set, each line is stamped with virtual time instead of the wall clock, so two runs
//! of one seed log alike and a line can be found in the trace by its time.

/// The timer of [`sim_logger`]'s lines: virtual µs since the run started, as the trace has
/// them (the wall clock would make two runs of one seed log differently).
struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{:>12}us", super::now_us())
    }
}

/// With `RUST_LOG` set, `tracing` output for this thread, stamped with virtual time (the node
/// is in madsim's span). The guard keeps it installed.
pub(crate) fn sim_logger() -> Option<tracing::subscriber::DefaultGuard> {
    let filter = std::env::var("RUST_LOG").ok().filter(|f| !f.is_empty())?;
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_timer(SimTime)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .finish();
    Some(tracing::subscriber::set_default(subscriber))
}
