//! The steps as Mermaid lines: arrows and notes written out with their text escaped, and every
//! block of lines that comes several times in a row (a retry loop, a busy lock polled again)
//! drawn once inside a `loop`, which keeps long runs readable and under GitHub's size limit.

use super::steps::{Over, Step, Who};
use super::text::{escape, time};

/// The longest block of lines that can repeat into one `loop`.
const LOOP_LINES_MAX: usize = 8;

/// How many times in a row a block must come to become a `loop`.
const LOOP_REPEATS_MIN: usize = 3;

/// A finished line, what it is compared by when looking for repeats, and how it reads inside a
/// `loop`.
pub(super) struct Line {
    t_us: u64,
    text: String,
    same: String,
    in_loop: String,
}

/// Turns finished steps into lines.
pub(super) fn line(t_us: u64, step: &Step) -> Line {
    let (text, same, in_loop) = match step {
        Step::Arrow {
            from,
            to,
            arrow,
            text,
            same,
            loop_shows_same,
        } => {
            let head = format!("{}{arrow}{}: ", from.id(), to.id());
            let text = format!("{head}{}", escape(text));
            let same = same
                .as_ref()
                .map_or_else(|| text.clone(), |s| format!("{head}{}", escape(s)));
            let in_loop = if *loop_shows_same {
                same.clone()
            } else {
                text.clone()
            };
            (text, same, in_loop)
        }
        Step::Note { over, text } => {
            let over = match over {
                Over::One(a) => a.id(),
                Over::Two(a, b) => format!("{},{}", a.id(), b.id()),
                Over::All => format!("{},{}", Who::Producer.id(), Who::Db.id()),
            };
            let text = format!("Note over {over}: {}", escape(text));
            (text.clone(), text.clone(), text)
        }
        Step::Local { who, id, text } => {
            let text = format!("Note over {}: {}", who.id(), escape(&format!("{id} {text}")));
            (text.clone(), text.clone(), text)
        }
    };
    Line {
        t_us,
        text,
        same,
        in_loop,
    }
}

/// The lines, indented, with every block that repeats (see the module's doc) drawn once in a
/// `loop`.
pub(super) fn collapse(lines: &[Line]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let mut best: Option<(usize, usize)> = None;
        for period in 1..=LOOP_LINES_MAX.min((lines.len() - i) / LOOP_REPEATS_MIN) {
            let same = |k: usize| (0..period).all(|j| lines[i + j].same == lines[i + k * period + j].same);
            let mut repeats = 1;
            while i + (repeats + 1) * period <= lines.len() && same(repeats) {
                repeats += 1;
            }
            if repeats >= LOOP_REPEATS_MIN && best.is_none_or(|(p, r)| period * repeats > p * r) {
                best = Some((period, repeats));
            }
        }
        match best {
            Some((period, repeats)) => {
                let last = &lines[i + period * repeats - 1];
                out.push(format!(
                    "    loop {repeats} times, {} to {}",
                    time(lines[i].t_us),
                    time(last.t_us)
                ));
                out.extend(
                    lines[i..i + period]
                        .iter()
                        .map(|l| format!("        {}", l.in_loop)),
                );
                out.push("    end".into());
                i += period * repeats;
            }
            None => {
                out.push(format!("    {}", lines[i].text));
                i += 1;
            }
        }
    }
    out
}
