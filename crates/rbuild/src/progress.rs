//! Rendering of a build's events: BuildKit-like plain lines, JSON lines, BuildKit's raw
//! `SolveStatus` stream (`rawjson`, in the `rawjson` submodule), or nothing for the steps; notices and warnings as their own lines on stderr whatever the mode.
//!
//! Plain output, as BuildKit prints it:
//! ```text
//! #2 [1/3] FROM docker.io/library/busybox:latest
//! #2 CACHED
//! #3 [2/3] RUN echo hi
//! #3 0.105 hi
//! #3 DONE 0.2s
//! ```
//! Steps are numbered in the order they first appear. Everything goes to stderr.
//! `tty` (the default when stderr is a terminal) is the live view of the `tty` submodule
//! (BuildKit's: a `[+] Building 1.2s (3/5)` header over every step, a final frame at the end);
//! without a terminal it falls back to plain lines. Blob transfers (base-image pulls,
//! pushes) are shown by the `transfer` submodule, in plain mode under the step that was
//! started last (or a number of their own, in `rbuild pull` and `rbuild push`).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use rbuild_builder::BuildEvent;
use rbuild_oci::registry::TransferEvent;
use rbuild_solver::events::Event;

use crate::cli::ProgressMode;
use crate::store_cmds::human_size;

mod json;
mod rawjson;
mod transfer;
mod tty;
use transfer::PlainTransfers;
use tty::TtyView;

/// Renders events in one of the modes. Safe to call from several threads.
pub struct Progress {
    mode: ProgressMode,
    state: Mutex<State>,
    tty: Option<TtyView>,
}

#[derive(Default)]
struct State {
    numbers: HashMap<u32, usize>,
    starts: HashMap<u32, Instant>,
    partial: HashMap<u32, Vec<u8>>,
    next: usize,
    /// The number of the step started last, under which transfers are shown.
    current: Option<usize>,
    transfers: PlainTransfers,
    raw: rawjson::RawJson,
    /// The number of the step that loaded the Dockerfile (plain mode's check warnings).
    definition_step: Option<usize>,
    /// The build checks' warnings, for the summary at the end.
    checks: Vec<(
        rbuild_builder::DockerfileSource,
        Vec<rbuild_frontend::lint::Lint>,
    )>,
}

impl Progress {
    /// Progress of blob transfers (`rbuild pull`, `rbuild push`): `auto` and `tty` are bars
    /// when stderr is a terminal, `plain` lines otherwise.
    pub fn new(mode: ProgressMode) -> Self {
        Self::with_view(mode, TtyView::transfers)
    }

    /// Progress of a build: on a terminal, BuildKit's live view with its
    /// `[+] Building 1.2s (3/5)` header; [`Progress::finish`] prints its final frame.
    pub fn build(mode: ProgressMode) -> Self {
        Self::with_view(mode, TtyView::build)
    }

    fn with_view(mode: ProgressMode, view: fn() -> TtyView) -> Self {
        use std::io::IsTerminal;
        let mode = effective_mode(mode, std::io::stderr().is_terminal());
        Progress {
            mode,
            state: Mutex::new(State {
                next: 1,
                ..State::default()
            }),
            tty: (mode == ProgressMode::Tty).then(view),
        }
    }

    /// The build ended (either way): the live view leaves its final frame, every step with
    /// its time, under `[+] Building 12.3s (9/9) FINISHED`. Nothing in the other modes.
    pub fn finish(&self) {
        if let Some(tty) = &self.tty {
            tty.finish();
        }
    }

    /// A line of its own on stderr, above the live view when there is one.
    fn line(&self, line: &str) {
        match &self.tty {
            Some(tty) => tty.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Shows one event of the build.
    pub fn render(&self, event: BuildEvent) {
        match event {
            BuildEvent::Step(e) => self.event(e),
            BuildEvent::Internal { name, seconds } => self.internal(&name, seconds),
            BuildEvent::Transfer(e) => self.transfer(&e),
            BuildEvent::Notice(note) => self.line(&format!("rbuild: {note}")),
            BuildEvent::AutoGc {
                keep_storage,
                report,
            } => self.line(&format!(
                "automatic garbage collection (keep-storage {}): {report}",
                human_size(keep_storage)
            )),
            BuildEvent::Warning(w) => self.line(&format!("warning: {w}")),
            BuildEvent::Checks { file, lints } => self.checks(file, lints),
        }
    }

    /// The summary of the build checks' warnings (buildx's, after the build; `expand`:
    /// each in full; in the JSON mode a `{"event":"warning",…}` line each), or nothing in
    /// the quiet and raw JSON modes or without warnings.
    pub fn check_summary(&self, expand: bool) -> String {
        use std::io::IsTerminal;
        if matches!(self.mode, ProgressMode::Quiet | ProgressMode::Rawjson) {
            return String::new();
        }
        let st = self.lock();
        if self.mode == ProgressMode::Json {
            // One JSON line per warning, like every other line of this mode.
            let mut out = String::new();
            for (file, lints) in &st.checks {
                for l in lints {
                    let mut v = serde_json::json!({
                        "event": "warning",
                        "rule": l.rule.name(),
                        "message": l.message,
                        "description": l.rule.description(),
                        "file": file.name,
                        "line": l.lines.0,
                    });
                    if let Some(url) = l.rule.url() {
                        v["url"] = url.into();
                    }
                    out.push_str(&format!("{v}\n"));
                }
            }
            return out;
        }
        crate::checks::summary(&st.checks, expand, std::io::stderr().is_terminal())
    }

    /// Prints a step that the builder itself performs (loading the Dockerfile, exporting).
    fn internal(&self, name: &str, seconds: f64) {
        if let Some(tty) = &self.tty {
            return tty.internal(name, seconds);
        }
        if self.mode == ProgressMode::Rawjson {
            let line = self.lock().raw.internal(name, seconds, SystemTime::now());
            let _ = writeln!(std::io::stderr().lock(), "{line}");
            return;
        }
        if !self.is_plain() {
            return;
        }
        let mut st = self.lock();
        let n = st.next;
        st.next += 1;
        if name.starts_with("[internal] load build definition") {
            st.definition_step = Some(n);
        }
        let _ = write!(
            std::io::stderr().lock(),
            "#{n} {name}\n#{n} DONE {seconds:.1}s\n\n"
        );
    }

    /// Keeps the build checks' warnings for the summary; in plain mode also shows each at
    /// once as BuildKit's plain progress does, as `#N WARN: Rule: message (line L)` under
    /// the step that loaded the Dockerfile.
    fn checks(
        &self,
        file: rbuild_builder::DockerfileSource,
        lints: Vec<rbuild_frontend::lint::Lint>,
    ) {
        let mut st = self.lock();
        if self.is_plain() && self.tty.is_none() {
            let prefix = st
                .definition_step
                .map_or(String::new(), |n| format!("#{n} "));
            let mut out = String::new();
            for l in &lints {
                out.push_str(&format!("{prefix}WARN: {}\n", crate::checks::short(l)));
            }
            out.push('\n');
            let _ = write!(std::io::stderr().lock(), "{out}");
        }
        st.checks.push((file, lints));
    }

    /// Shows the progress of one blob transfer.
    pub fn transfer(&self, e: &TransferEvent) {
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Rawjson => {
                let line = self.lock().raw.transfer(e, SystemTime::now());
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            ProgressMode::Json => {
                let time = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                let _ = writeln!(std::io::stderr().lock(), "{}", transfer::json_line(e, time));
            }
            ProgressMode::Tty if self.tty.is_some() => {
                if let Some(tty) = &self.tty {
                    tty.transfer(e);
                }
            }
            ProgressMode::Tty | ProgressMode::Auto | ProgressMode::Plain => {
                let mut guard = self.lock();
                let st = &mut *guard;
                let n = match st.current {
                    Some(n) => n,
                    None => {
                        let n = st.next;
                        st.next += 1;
                        st.current = Some(n);
                        n
                    }
                };
                if let Some(line) = st.transfers.line(n, e, Instant::now()) {
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
            }
        }
    }

    fn is_plain(&self) -> bool {
        matches!(self.mode, ProgressMode::Auto | ProgressMode::Plain)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(&self, event: Event) {
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Rawjson => {
                let line = self.lock().raw.event(&event, SystemTime::now());
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            ProgressMode::Json => {
                let time = SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                if let Some(line) = json::event_line(&event, time) {
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
            }
            ProgressMode::Tty => match &self.tty {
                Some(tty) => tty.event(event),
                None => self.plain(event),
            },
            ProgressMode::Auto | ProgressMode::Plain => self.plain(event),
        }
    }

    fn plain(&self, event: Event) {
        let mut st = self.lock();
        let mut err = std::io::stderr().lock();
        match event {
            Event::Started { vertex, name } => {
                let n = st.number(vertex);
                st.current = Some(n);
                st.starts.insert(vertex, Instant::now());
                let _ = writeln!(err, "#{n} {name}");
            }
            Event::Cached { vertex, name } => {
                let n = st.number(vertex);
                let _ = write!(err, "#{n} {name}\n#{n} CACHED\n\n");
            }
            Event::Log { vertex, data, .. } => {
                let n = st.number(vertex);
                let elapsed = st
                    .starts
                    .get(&vertex)
                    .map_or(0.0, |s| s.elapsed().as_secs_f64());
                let buf = st.partial.entry(vertex).or_default();
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let text = String::from_utf8_lossy(&line[..line.len() - 1]);
                    let _ = writeln!(err, "#{n} {elapsed:.3} {text}");
                }
            }
            Event::Done { vertex, seconds } => {
                let n = st.finish(vertex, &mut err);
                let _ = write!(err, "#{n} DONE {seconds:.1}s\n\n");
            }
            Event::Failed {
                vertex,
                seconds,
                error,
            } => {
                let n = st.finish(vertex, &mut err);
                let _ = write!(err, "#{n} ERROR: {error}\n#{n} FAILED {seconds:.1}s\n\n");
            }
            Event::Canceled { vertex, seconds } => {
                let n = st.finish(vertex, &mut err);
                let _ = write!(err, "#{n} CANCELED {seconds:.1}s\n\n");
            }
            Event::CacheImportFailed {
                vertex,
                name,
                error,
            } => {
                let n = st.number(vertex);
                let _ = writeln!(err, "#{n} {name}");
                let _ = writeln!(err, "#{n} WARNING: cache import failed: {error}");
            }
            Event::CacheMiss {
                vertex,
                name,
                reasons,
            } => {
                let n = st.number(vertex);
                let _ = writeln!(err, "#{n} {name}");
                for r in reasons {
                    let _ = writeln!(err, "#{n} CACHE MISS: {r}");
                }
            }
        }
    }
}

/// The mode progress is shown in. The live view needs a terminal: without one (stderr
/// redirected to a file or a pipe) it would draw nothing at all, so `tty` falls back to
/// `plain`, as `docker build --progress=tty` does with BuildKit 0.8 (buildx ≥ 0.13 refuses
/// with "failed to get console" instead).
fn effective_mode(requested: ProgressMode, stderr_is_terminal: bool) -> ProgressMode {
    match requested {
        ProgressMode::Auto | ProgressMode::Tty if stderr_is_terminal => ProgressMode::Tty,
        ProgressMode::Auto | ProgressMode::Tty => ProgressMode::Plain,
        other => other,
    }
}

impl State {
    fn number(&mut self, vertex: u32) -> usize {
        let next = &mut self.next;
        *self.numbers.entry(vertex).or_insert_with(|| {
            let n = *next;
            *next += 1;
            n
        })
    }

    /// The number of a vertex that ended, after writing what is left of its last log line.
    fn finish(&mut self, vertex: u32, err: &mut impl Write) -> usize {
        let n = self.number(vertex);
        if let Some(rest) = self.partial.remove(&vertex).filter(|b| !b.is_empty()) {
            let _ = writeln!(err, "#{n} {}", String::from_utf8_lossy(&rest));
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_view_needs_a_terminal() {
        use ProgressMode::*;
        assert_eq!(effective_mode(Auto, true), Tty);
        assert_eq!(effective_mode(Auto, false), Plain);
        assert_eq!(effective_mode(Tty, true), Tty);
        assert_eq!(effective_mode(Tty, false), Plain);
        for other in [Plain, Json, Rawjson, Quiet] {
            assert_eq!(effective_mode(other, true), other);
            assert_eq!(effective_mode(other, false), other);
        }
    }
}
