//! Rendering of blob transfers (layer pulls and pushes) in each progress mode:
//!
//! - plain: BuildKit-style lines under the current step, a few per blob (its start, every
//!   quarter of its bytes or second, its end):
//!   `#5 sha256:3f1a2b4c5d6e 1.2MB / 2.2MB 0.4s`, `#5 sha256:3f1a2b4c5d6e 2.2MB / 2.2MB 0.9s done`;
//! - json: one object per event with its time (`{"time":…,"transfer":{"digest":…,"current":…}}`);
//! - tty: one indicatif bar per blob with its bytes and size, collapsing into a line when done
//!   (under the step seen last, in a build's frame).
//!
//! The events come already throttled from the registry client (at most one per 100 ms and
//! blob); plain mode thins them further, as a log should not grow with the blob's size.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rbuild_oci::registry::{Direction, TransferEvent, TransferPhase};
use rbuild_types::Digest;

use crate::store_cmds::human_size;

/// How often plain mode repeats a blob's progress at least.
const PLAIN_EVERY: Duration = Duration::from_secs(1);

pub(super) fn phase_name(phase: TransferPhase) -> &'static str {
    match phase {
        TransferPhase::Waiting => "waiting",
        TransferPhase::Downloading => "downloading",
        TransferPhase::Extracting => "extracting",
        TransferPhase::Uploading => "uploading",
        TransferPhase::Done => "done",
        TransferPhase::Exists => "exists",
        TransferPhase::Mounted => "mounted",
    }
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Pull => "pull",
        Direction::Push => "push",
    }
}

/// The JSON line of one event, at Unix time `time` (seconds).
pub fn json_line(e: &TransferEvent, time: f64) -> String {
    serde_json::json!({
        "time": time,
        "transfer": {
            "digest": e.digest.to_string(),
            "id": e.short_id(),
            "direction": direction_name(e.direction),
            "phase": phase_name(e.phase),
            "current": e.done,
            "total": e.total,
        }
    })
    .to_string()
}

/// What plain mode has shown of one blob.
struct Shown {
    start: Instant,
    phase: TransferPhase,
    quarter: u64,
    printed: Instant,
}

/// Plain mode's memory of the blobs it has shown.
#[derive(Default)]
pub struct PlainTransfers {
    blobs: HashMap<Digest, Shown>,
}

impl PlainTransfers {
    /// The line to print (prefixed `#n`) for `e` at `now`, if any.
    pub fn line(&mut self, n: usize, e: &TransferEvent, now: Instant) -> Option<String> {
        let id = format!("sha256:{}", e.short_id());
        let quarter = (e.done.saturating_mul(4)).checked_div(e.total).unwrap_or(4);
        let shown = self.blobs.entry(e.digest).or_insert(Shown {
            start: now,
            phase: TransferPhase::Waiting,
            quarter: 0,
            printed: now,
        });
        let changed = shown.phase != e.phase;
        let due = changed
            || quarter > shown.quarter
            || now.saturating_duration_since(shown.printed) >= PLAIN_EVERY;
        if !due {
            return None;
        }
        shown.phase = e.phase;
        shown.quarter = quarter;
        shown.printed = now;
        let secs = now.saturating_duration_since(shown.start).as_secs_f64();
        let bytes = format!("{} / {}", human_size(e.done), human_size(e.total));
        match e.phase {
            TransferPhase::Waiting => None,
            TransferPhase::Downloading | TransferPhase::Uploading => {
                Some(format!("#{n} {id} {bytes} {secs:.1}s"))
            }
            TransferPhase::Extracting => Some(format!("#{n} extracting {id}")),
            TransferPhase::Done => Some(format!("#{n} {id} {bytes} {secs:.1}s done")),
            TransferPhase::Exists => Some(format!("#{n} {id} already exists")),
            TransferPhase::Mounted => Some(format!("#{n} {id} mounted")),
        }
    }
}

/// The live view's bars, one per blob in flight.
#[derive(Default)]
pub struct TtyTransfers {
    bars: HashMap<Digest, ProgressBar>,
}

impl TtyTransfers {
    /// Updates (or adds, or removes) the bar of `e`'s blob; a finished blob's bar goes and its
    /// line is returned (`sha256:3f1a2b4c5d6e 2.2MB done`, `… already exists`, `… mounted`).
    pub fn apply(&mut self, multi: &MultiProgress, e: &TransferEvent) -> Option<String> {
        let id = format!("sha256:{}", e.short_id());
        let finished = matches!(
            e.phase,
            TransferPhase::Done | TransferPhase::Exists | TransferPhase::Mounted
        );
        if finished {
            if let Some(bar) = self.bars.remove(&e.digest) {
                bar.finish_and_clear();
                multi.remove(&bar);
            }
            return Some(match e.phase {
                TransferPhase::Exists => format!("{id} already exists"),
                TransferPhase::Mounted => format!("{id} mounted"),
                _ => format!("{id} {} done", human_size(e.total)),
            });
        }
        let bar = self.bars.entry(e.digest).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(e.total));
            let style = ProgressStyle::with_template(
                "{prefix} {wide_bar} {decimal_bytes} / {decimal_total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(id);
            bar
        });
        bar.set_position(e.done);
        bar.set_message(phase_name(e.phase));
        None
    }

    /// The number of bars shown.
    pub fn bar_count(&self) -> usize {
        self.bars.len()
    }

    /// Removes every bar (the build ended).
    pub fn clear(&mut self, multi: &MultiProgress) {
        for (_, bar) in self.bars.drain() {
            bar.finish_and_clear();
            multi.remove(&bar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(phase: TransferPhase, done: u64) -> TransferEvent {
        TransferEvent {
            digest: Digest::of(b"layer"),
            direction: Direction::Pull,
            phase,
            done,
            total: 4_000_000,
        }
    }

    #[test]
    fn plain_shows_start_quarters_seconds_and_end() {
        let mut plain = PlainTransfers::default();
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let id = format!("sha256:{}", Digest::of(b"layer").short());
        let lines: Vec<String> = [
            (TransferPhase::Waiting, 0, 0),
            (TransferPhase::Downloading, 0, 0),
            (TransferPhase::Downloading, 500_000, 100),
            (TransferPhase::Downloading, 1_000_000, 200),
            (TransferPhase::Downloading, 1_100_000, 300),
            (TransferPhase::Downloading, 1_200_000, 1300),
            (TransferPhase::Downloading, 4_000_000, 1400),
            (TransferPhase::Extracting, 4_000_000, 1400),
            (TransferPhase::Done, 4_000_000, 1500),
        ]
        .into_iter()
        .filter_map(|(p, done, ms)| plain.line(5, &event(p, done), at(ms)))
        .collect();
        assert_eq!(
            lines,
            [
                format!("#5 {id} 0B / 4MB 0.0s"),
                format!("#5 {id} 1MB / 4MB 0.2s"),
                format!("#5 {id} 1.2MB / 4MB 1.3s"),
                format!("#5 {id} 4MB / 4MB 1.4s"),
                format!("#5 extracting {id}"),
                format!("#5 {id} 4MB / 4MB 1.5s done"),
            ]
        );
    }

    #[test]
    fn json_lines_carry_bytes_as_numbers() {
        let line = json_line(&event(TransferPhase::Downloading, 1234), 1.5);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], 1.5);
        assert_eq!(v["transfer"]["current"], 1234);
        assert_eq!(v["transfer"]["total"], 4_000_000);
        assert_eq!(v["transfer"]["phase"], "downloading");
        assert_eq!(v["transfer"]["direction"], "pull");
    }
}
