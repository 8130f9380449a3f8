//! `--progress=tty`: BuildKit's live view of a build (its `progressui` tty display), drawn
//! with indicatif.
//!
//! ```text
//! [+] Building 12.3s (7/9)
//!  => [internal] load build definition                                        0.0s
//!  => CACHED [1/3] FROM docker.io/library/busybox                              0.0s
//!  => [2/3] RUN make                                                           3.2s
//!  => => # compiling b
//! ```
//! The header counts the steps that ended (done, cached, failed or canceled) against the
//! steps seen so far, with the time since the build started; below it every step with its
//! time (a running one's still counting, with the last six lines it printed). When the terminal
//! is too short, finished steps give way to running ones, as in BuildKit. When the build
//! ends, the live area is replaced by the final frame: the header with `FINISHED` when every
//! step ended, and every step with its time (`=> CACHED …`, `=> ERROR …`, `=> CANCELED …`),
//! so the scrollback keeps the whole build. The logic lives in [`TtyModel`], which turns
//! events into frames and is tested without a terminal; [`TtyView`] draws it with indicatif.
//! Blob transfers (pulls, pushes) are bars of their own below the frame (see `transfer`);
//! a finished transfer becomes a `=> => sha256:…` line under the step seen last.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rbuild_oci::registry::TransferEvent;
use rbuild_solver::events::Event;

use super::transfer::TtyTransfers;

/// Where a step is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Status {
    /// Seen (a cache miss explained, a cache import that failed) but not started.
    Pending,
    Running {
        since: Instant,
    },
    Done {
        seconds: f64,
    },
    Cached,
    Failed {
        seconds: f64,
    },
    Canceled {
        seconds: f64,
    },
}

impl Status {
    fn ended(self) -> bool {
        !matches!(self, Status::Pending | Status::Running { .. })
    }
}

/// One step of the view.
#[derive(Clone, Debug)]
struct Job {
    name: String,
    status: Status,
    /// The last [`LOG_LINES`] complete lines the step printed (shown while it runs).
    tail: VecDeque<String>,
    /// The line it is printing (no newline yet).
    partial_line: String,
    /// Lines shown under the step: cache-miss reasons, failed cache imports, transfers.
    notes: Vec<String>,
}

/// A running step shows this many of its last output lines, as BuildKit's tty display does.
const LOG_LINES: usize = 6;

/// What a line of a tool's output shows on a terminal: after its last carriage return (progress
/// bars redraw that way), without trailing blanks; `None` when that is empty.
fn shown_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let shown = text.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
    let shown = shown.trim_end();
    (!shown.trim().is_empty()).then(|| shown.to_string())
}

/// What the view shows, independent of any terminal.
#[derive(Debug)]
pub struct TtyModel {
    start: Instant,
    /// Steps by vertex → their number (the order they were first seen).
    numbers: BTreeMap<u32, usize>,
    jobs: BTreeMap<usize, Job>,
    partial: BTreeMap<u32, Vec<u8>>,
    next: usize,
    /// Lines the live area below the frame takes (transfer bars).
    below: usize,
}

/// BuildKit hides a step's time under 0.05 s.
fn shown_seconds(seconds: f64) -> f64 {
    if seconds < 0.05 {
        0.0
    } else {
        seconds
    }
}

/// `left`, padded (or cut, with `…`) so that `left right` is `width` characters wide.
fn align(left: &str, right: &str, width: usize) -> String {
    let room = width.saturating_sub(right.chars().count() + 1).max(1);
    let left = shorten(left, room);
    let pad = room - left.chars().count();
    format!("{left}{} {right}", " ".repeat(pad))
}

/// `text` cut to `max` characters, with `…` marking the cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl TtyModel {
    /// A model of a build that starts at `start`.
    pub fn new(start: Instant) -> Self {
        TtyModel {
            start,
            numbers: BTreeMap::new(),
            jobs: BTreeMap::new(),
            partial: BTreeMap::new(),
            next: 1,
            below: 0,
        }
    }

    fn job(&mut self, vertex: u32, name: Option<&str>) -> &mut Job {
        let next = &mut self.next;
        let n = *self.numbers.entry(vertex).or_insert_with(|| {
            let n = *next;
            *next += 1;
            n
        });
        let job = self.jobs.entry(n).or_insert_with(|| Job {
            name: String::new(),
            status: Status::Pending,
            tail: VecDeque::new(),
            partial_line: String::new(),
            notes: Vec::new(),
        });
        if let Some(name) = name {
            job.name = name.to_string();
        }
        job
    }

    /// A step the binary performs itself, which took `seconds`.
    pub fn internal(&mut self, name: &str, seconds: f64) {
        let n = self.next;
        self.next += 1;
        self.jobs.insert(
            n,
            Job {
                name: name.to_string(),
                status: Status::Done { seconds },
                tail: VecDeque::new(),
                partial_line: String::new(),
                notes: Vec::new(),
            },
        );
    }

    /// A line under the step seen last (a finished blob transfer).
    pub fn note(&mut self, line: String) {
        if let Some(mut last) = self.jobs.last_entry() {
            last.get_mut().notes.push(line);
        }
    }

    /// Applies an event that happened at `now`.
    pub fn apply(&mut self, event: Event, now: Instant) {
        match event {
            Event::Started { vertex, name } => {
                self.job(vertex, Some(&name)).status = Status::Running { since: now };
            }
            Event::Cached { vertex, name } => {
                self.job(vertex, Some(&name)).status = Status::Cached;
            }
            Event::CacheImportFailed {
                vertex,
                name,
                error,
            } => {
                let job = self.job(vertex, Some(&name));
                job.notes.push(format!("cache import failed: {error}"));
            }
            Event::CacheMiss {
                vertex,
                name,
                reasons,
            } => {
                let job = self.job(vertex, Some(&name));
                job.notes
                    .extend(reasons.iter().map(|r| format!("cache miss: {r}")));
            }
            Event::Log { vertex, data, .. } => self.log(vertex, &data),
            Event::Done { vertex, seconds } => self.end(vertex, Status::Done { seconds }),
            Event::Failed {
                vertex,
                seconds,
                // The error itself is the report's, printed after the final frame.
                error: _,
            } => self.end(vertex, Status::Failed { seconds }),
            Event::Canceled { vertex, seconds } => self.end(vertex, Status::Canceled { seconds }),
        }
    }

    fn log(&mut self, vertex: u32, data: &[u8]) {
        let mut buf = self.partial.remove(&vertex).unwrap_or_default();
        buf.extend_from_slice(data);
        let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let lines: Vec<String> = buf[..complete]
            .split(|&b| b == b'\n')
            .filter_map(shown_line)
            .collect();
        buf.drain(..complete);
        let partial = shown_line(&buf).unwrap_or_default();
        self.partial.insert(vertex, buf);
        let job = self.job(vertex, None);
        for line in lines {
            if job.tail.len() == LOG_LINES {
                job.tail.pop_front();
            }
            job.tail.push_back(line);
        }
        job.partial_line = partial;
    }

    fn end(&mut self, vertex: u32, status: Status) {
        self.partial.remove(&vertex);
        let job = self.job(vertex, None);
        job.status = status;
        job.tail.clear();
        job.partial_line.clear();
    }

    /// `(ended, seen)`: the steps that ended and all steps seen so far.
    pub fn counts(&self) -> (usize, usize) {
        let ended = self.jobs.values().filter(|j| j.status.ended()).count();
        (ended, self.jobs.len())
    }

    /// The header line at `now` (BuildKit's `[+] Building 12.3s (7/9)`); `last` is the final
    /// frame's, which says `FINISHED` when every step ended.
    pub fn header(&self, now: Instant, last: bool) -> String {
        let (ended, seen) = self.counts();
        let secs = now.saturating_duration_since(self.start).as_secs_f64();
        let mut out = format!("[+] Building {secs:.1}s ({ended}/{seen})");
        if last && ended > 0 && ended == seen {
            out.push_str(" FINISHED");
        }
        out
    }

    /// The lines of one step at `now`, `width` characters wide; `live` adds its last output line.
    fn job_lines(&self, job: &Job, now: Instant, width: usize, live: bool) -> Vec<String> {
        let (prefix, seconds) = match job.status {
            Status::Pending => return vec![],
            Status::Running { since } => ("", now.saturating_duration_since(since).as_secs_f64()),
            Status::Done { seconds } => ("", seconds),
            Status::Cached => ("CACHED ", 0.0),
            Status::Failed { seconds } => ("ERROR ", seconds),
            Status::Canceled { seconds } => ("CANCELED ", seconds),
        };
        let timer = format!("{:.1}s", shown_seconds(seconds));
        let mut out = vec![align(&format!(" => {prefix}{}", job.name), &timer, width)];
        out.extend(
            job.notes
                .iter()
                .map(|n| shorten(&format!(" => => {n}"), width)),
        );
        if live {
            // The partial line counts as one of the shown lines.
            let partial = (!job.partial_line.is_empty()).then_some(&job.partial_line);
            let skip = (job.tail.len() + usize::from(partial.is_some())).saturating_sub(LOG_LINES);
            for line in job.tail.iter().skip(skip).chain(partial) {
                out.push(shorten(&format!(" => => # {line}"), width));
            }
        }
        out
    }

    /// The live frame at `now`: the header and as many steps as fit in `height` lines (running
    /// steps first: finished ones at the top give way), each `width` characters wide.
    pub fn frame(&self, now: Instant, width: usize, height: usize) -> Vec<String> {
        let mut jobs: Vec<(bool, Vec<String>)> = self
            .jobs
            .values()
            .map(|j| (j.status.ended(), self.job_lines(j, now, width, true)))
            .filter(|(_, lines)| !lines.is_empty())
            .collect();
        let room = height.saturating_sub(1 + self.below).max(1);
        let mut count: usize = jobs.iter().map(|(_, l)| l.len()).sum();
        while count > room && !jobs.is_empty() {
            let drop = jobs.iter().position(|(ended, _)| *ended).unwrap_or(0);
            count -= jobs.remove(drop).1.len();
        }
        let mut out = vec![shorten(&self.header(now, false), width)];
        out.extend(jobs.into_iter().flat_map(|(_, lines)| lines));
        out
    }

    /// The final frame, at `now`: the header (`FINISHED` when every step ended) and every step.
    pub fn last_frame(&self, now: Instant, width: usize) -> Vec<String> {
        let mut out = vec![self.header(now, true)];
        for job in self.jobs.values() {
            out.extend(self.job_lines(job, now, width, false));
        }
        out
    }
}

/// The size of the terminal on stderr as `(columns, rows)` (80×24 when it tells none).
fn terminal_size() -> (usize, usize) {
    let (rows, cols) = console::Term::stderr().size();
    (usize::from(cols.max(20)), usize::from(rows.max(4)))
}

/// The live view on the terminal: for a build, the frame of a [`TtyModel`] as one
/// multi-line indicatif bar redrawn ten times a second; blob transfers as bars below it.
pub struct TtyView {
    multi: MultiProgress,
    /// The build's frame; `None` for `rbuild pull`/`push`, which show only transfers.
    frame: Option<(Arc<Mutex<TtyModel>>, ProgressBar)>,
    transfers: Mutex<TtyTransfers>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TtyView {
    /// A view of blob transfers only.
    pub fn transfers() -> Self {
        TtyView {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
            frame: None,
            transfers: Mutex::new(TtyTransfers::default()),
        }
    }

    /// The view of a build starting now.
    pub fn build() -> Self {
        let mut view = TtyView::transfers();
        let model = Arc::new(Mutex::new(TtyModel::new(Instant::now())));
        let drawn = Arc::clone(&model);
        // The frame is computed when indicatif draws (the running steps' times move on);
        // nothing that draws may be called while the model is locked.
        let style = ProgressStyle::with_template("{frame}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key(
                "frame",
                move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let (width, height) = terminal_size();
                    let lines = lock(&drawn).frame(Instant::now(), width.saturating_sub(1), height);
                    let _ = w.write_str(&lines.join("\n"));
                },
            );
        let bar = view.multi.add(ProgressBar::new_spinner());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(100));
        view.frame = Some((model, bar));
        view
    }

    /// A line above the live area (notices and warnings).
    pub fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }

    pub fn internal(&self, name: &str, seconds: f64) {
        if let Some((model, bar)) = &self.frame {
            lock(model).internal(name, seconds);
            bar.tick();
        }
    }

    /// One bar per blob being pulled or pushed; a finished one becomes a line.
    pub fn transfer(&self, e: &TransferEvent) {
        let (line, bars) = {
            let mut transfers = lock(&self.transfers);
            (transfers.apply(&self.multi, e), transfers.bar_count())
        };
        match &self.frame {
            Some((model, bar)) => {
                {
                    let mut model = lock(model);
                    model.below = bars;
                    if let Some(line) = line {
                        model.note(line);
                    }
                }
                bar.tick();
            }
            None => {
                if let Some(line) = line {
                    let _ = self.multi.println(line);
                }
            }
        }
    }

    pub fn event(&self, event: Event) {
        if let Some((model, bar)) = &self.frame {
            lock(model).apply(event, Instant::now());
            bar.tick();
        }
    }

    /// Replaces the live area by the final frame (every step with its time).
    pub fn finish(&self) {
        let Some((model, bar)) = &self.frame else {
            return;
        };
        bar.finish_and_clear();
        lock(&self.transfers).clear(&self.multi);
        let _ = self.multi.clear();
        let (width, _) = terminal_size();
        let lines = lock(model).last_frame(Instant::now(), width.saturating_sub(1));
        let mut err = std::io::stderr().lock();
        for line in lines {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
}

/// The frame as plain text, for tests and debugging.
#[cfg(test)]
fn text(lines: &[String]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for l in lines {
        let _ = writeln!(out, "{}", l.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbuild_solver::ports::LogStream;

    fn log(vertex: u32, data: &str) -> Event {
        Event::Log {
            vertex,
            stream: LogStream::Stdout,
            data: data.as_bytes().to_vec(),
        }
    }

    fn started(vertex: u32, name: &str) -> Event {
        Event::Started {
            vertex,
            name: name.into(),
        }
    }

    #[test]
    fn the_frame_has_buildkits_header_and_a_line_per_step() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut m = TtyModel::new(t0);
        m.internal("[internal] load build definition", 0.01);
        m.apply(
            Event::Cached {
                vertex: 0,
                name: "[1/3] FROM busybox".into(),
            },
            at(10),
        );
        m.apply(started(3, "[2/3] RUN make"), at(100));
        m.apply(started(4, "[b 1/1] RUN x"), at(200));
        m.apply(log(3, "compiling a\ncompil"), at(300));
        assert_eq!(m.counts(), (2, 4));
        assert_eq!(
            text(&m.frame(at(1500), 50, 24)),
            "[+] Building 1.5s (2/4)\n\
             \x20=> [internal] load build definition          0.0s\n\
             \x20=> CACHED [1/3] FROM busybox                 0.0s\n\
             \x20=> [2/3] RUN make                            1.4s\n\
             \x20=> => # compiling a\n\
             \x20=> => # compil\n\
             \x20=> [b 1/1] RUN x                             1.3s\n"
        );
        m.apply(log(3, "ing b\n"), at(1600));
        m.apply(log(3, "10%\r50%\r"), at(1600));
        assert!(text(&m.frame(at(1600), 50, 24)).contains(" => => # 50%\n"));

        m.apply(
            Event::Done {
                vertex: 3,
                seconds: 1.25,
            },
            at(1700),
        );
        m.apply(
            Event::Failed {
                vertex: 4,
                seconds: 0.5,
                error: "exit code: 1".into(),
            },
            at(1700),
        );
        assert_eq!(m.counts(), (4, 4));
        assert_eq!(
            text(&m.last_frame(at(2000), 50)),
            "[+] Building 2.0s (4/4) FINISHED\n\
             \x20=> [internal] load build definition          0.0s\n\
             \x20=> CACHED [1/3] FROM busybox                 0.0s\n\
             \x20=> [2/3] RUN make                            1.2s\n\
             \x20=> ERROR [b 1/1] RUN x                       0.5s\n"
        );
    }

    #[test]
    fn a_running_step_shows_its_last_six_lines() {
        let t0 = Instant::now();
        let mut m = TtyModel::new(t0);
        m.apply(started(1, "[1/1] RUN make"), t0);
        m.apply(log(1, "1\n2\n3\n\n4\n5\r\n6\n7\n8"), t0);
        let shown: Vec<String> = m.frame(t0, 40, 24)[2..].to_vec();
        assert_eq!(
            shown,
            ["3", "4", "5", "6", "7", "8"]
                .iter()
                .map(|l| format!(" => => # {l}"))
                .collect::<Vec<_>>()[..]
        );
        m.apply(log(1, "\n"), t0);
        assert_eq!(m.frame(t0, 40, 24).len(), 2 + 6);
        // Gone when it ends.
        m.apply(
            Event::Done {
                vertex: 1,
                seconds: 1.0,
            },
            t0,
        );
        assert_eq!(m.frame(t0, 40, 24).len(), 2);
    }

    #[test]
    fn finished_only_when_every_step_ended() {
        let t0 = Instant::now();
        let mut m = TtyModel::new(t0);
        assert_eq!(m.header(t0, true), "[+] Building 0.0s (0/0)");
        m.apply(started(1, "[1/1] RUN sleep"), t0);
        assert_eq!(m.header(t0, true), "[+] Building 0.0s (0/1)");
        m.apply(
            Event::Canceled {
                vertex: 1,
                seconds: 0.2,
            },
            t0,
        );
        assert_eq!(m.header(t0, false), "[+] Building 0.0s (1/1)");
        assert_eq!(m.header(t0, true), "[+] Building 0.0s (1/1) FINISHED");
        assert!(text(&m.last_frame(t0, 40)).contains(" => CANCELED [1/1] RUN sleep"));
    }

    #[test]
    fn a_short_terminal_keeps_the_running_steps() {
        let t0 = Instant::now();
        let mut m = TtyModel::new(t0);
        for v in 0..5 {
            m.apply(started(v, &format!("[{v}/9] RUN done")), t0);
            m.apply(
                Event::Done {
                    vertex: v,
                    seconds: 0.1,
                },
                t0,
            );
        }
        m.apply(started(7, "[8/9] RUN running"), t0);
        let frame = m.frame(t0, 40, 4);
        assert_eq!(frame.len(), 4, "{frame:?}");
        assert!(frame[0].starts_with("[+] Building"));
        assert!(frame[3].contains("RUN running"), "{frame:?}");
        assert!(frame[2].contains("[4/9] RUN done"), "{frame:?}");
    }

    #[test]
    fn cache_misses_failures_and_transfers_are_lines_under_their_step() {
        let t0 = Instant::now();
        let mut m = TtyModel::new(t0);
        m.apply(
            Event::CacheMiss {
                vertex: 7,
                name: "[2/2] RUN a".into(),
                reasons: vec![rbuild_solver::explain::MissReason::FirstRun],
            },
            t0,
        );
        // Seen, not started: counted, not shown.
        assert_eq!(m.counts(), (0, 1));
        assert_eq!(m.frame(t0, 60, 24).len(), 1);
        m.apply(started(7, "[2/2] RUN a"), t0);
        m.note("sha256:3f1a2b4c5d6e 2MB done".into());
        assert_eq!(
            text(&m.last_frame(t0, 60)),
            "[+] Building 0.0s (0/1)\n\
             \x20=> [2/2] RUN a                                         0.0s\n\
             \x20=> => cache miss: no earlier build ran this step\n\
             \x20=> => sha256:3f1a2b4c5d6e 2MB done\n"
        );
    }

    #[test]
    fn long_names_are_shortened() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("ééééé", 3), "éé…");
        assert_eq!(
            align(" => RUN a-long-command", "1.0s", 16),
            " => RUN a-… 1.0s"
        );
    }
}
