//! `--progress=tty`: a live view of the build (indicatif).
//!
//! Running steps are shown at the bottom, each with a spinner, its elapsed time and the last
//! line it printed; when a step finishes it collapses into one permanent line
//! (`#5 [2/3] RUN make  DONE 3.2s`); cached steps appear as `CACHED` lines. The logic lives in
//! [`TtyModel`], which turns events into permanent lines and the set of running steps, and is
//! tested without a terminal; [`TtyView`] draws the model with indicatif.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rbuild_oci::registry::TransferEvent;
use rbuild_solver::events::Event;

use super::transfer::TtyTransfers;

/// A step being shown as running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Running {
    /// Step number (`#N`).
    pub number: usize,
    pub name: String,
    /// The last complete (or partial, if none yet) line it printed.
    pub last_line: String,
}

/// What the view shows, independent of any terminal.
#[derive(Debug, Default)]
pub struct TtyModel {
    numbers: BTreeMap<u32, usize>,
    next: usize,
    running: BTreeMap<u32, Running>,
    partial: BTreeMap<u32, Vec<u8>>,
}

impl TtyModel {
    pub fn new() -> Self {
        TtyModel {
            next: 1,
            ..TtyModel::default()
        }
    }

    fn number(&mut self, vertex: u32) -> usize {
        let next = &mut self.next;
        *self.numbers.entry(vertex).or_insert_with(|| {
            let n = *next;
            *next += 1;
            n
        })
    }

    /// A step the binary performs itself: one permanent line.
    pub fn internal(&mut self, name: &str, seconds: f64) -> String {
        let n = self.next;
        self.next += 1;
        format!("#{n} {name}  DONE {seconds:.1}s")
    }

    /// Applies an event; returns the permanent lines to print above the live area.
    pub fn apply(&mut self, event: Event) -> Vec<String> {
        match event {
            Event::Started { vertex, name } => {
                let number = self.number(vertex);
                self.running.insert(
                    vertex,
                    Running {
                        number,
                        name,
                        last_line: String::new(),
                    },
                );
                vec![]
            }
            Event::Cached { vertex, name } => {
                let n = self.number(vertex);
                vec![format!("#{n} {name}  CACHED")]
            }
            Event::CacheImportFailed {
                vertex,
                name,
                error,
            } => {
                let n = self.number(vertex);
                vec![format!("#{n} {name}  cache import failed: {error}")]
            }
            Event::CacheMiss {
                vertex,
                name,
                reasons,
            } => {
                let n = self.number(vertex);
                let mut out = vec![format!("#{n} {name}  cache miss:")];
                out.extend(reasons.iter().map(|r| format!("#{n}   {r}")));
                out
            }
            Event::Log { vertex, data, .. } => {
                let buf = self.partial.entry(vertex).or_default();
                buf.extend_from_slice(&data);
                let last = match buf.iter().rposition(|&b| b == b'\n') {
                    Some(end) => {
                        let start = buf[..end]
                            .iter()
                            .rposition(|&b| b == b'\n')
                            .map_or(0, |p| p + 1);
                        let line = String::from_utf8_lossy(&buf[start..end]).into_owned();
                        buf.drain(..=end);
                        if buf.is_empty() {
                            Some(line)
                        } else {
                            Some(String::from_utf8_lossy(buf).into_owned())
                        }
                    }
                    None => Some(String::from_utf8_lossy(buf).into_owned()),
                };
                if let (Some(line), Some(r)) = (last, self.running.get_mut(&vertex)) {
                    // Carriage returns (progress bars of tools) keep only what is shown last.
                    let shown = line.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
                    if !shown.trim().is_empty() {
                        r.last_line = shown.trim_end().to_string();
                    }
                }
                vec![]
            }
            Event::Done { vertex, seconds } => self.finish(vertex, format!("DONE {seconds:.1}s")),
            Event::Failed {
                vertex,
                seconds,
                error,
            } => self.finish(vertex, format!("ERROR {seconds:.1}s: {error}")),
            Event::Canceled { vertex, seconds } => {
                self.finish(vertex, format!("CANCELED {seconds:.1}s"))
            }
        }
    }

    fn finish(&mut self, vertex: u32, status: String) -> Vec<String> {
        let n = self.number(vertex);
        self.partial.remove(&vertex);
        let name = self
            .running
            .remove(&vertex)
            .map(|r| r.name)
            .unwrap_or_default();
        vec![format!("#{n} {name}  {status}")]
    }

    /// The running steps, in step order.
    pub fn running(&self) -> Vec<(u32, Running)> {
        let mut out: Vec<(u32, Running)> =
            self.running.iter().map(|(v, r)| (*v, r.clone())).collect();
        out.sort_by_key(|(_, r)| r.number);
        out
    }
}

/// Running steps' names are shortened to this many characters in the live area (the
/// permanent lines keep them whole).
const PREFIX_CHARS: usize = 72;

/// `text` cut to `max` characters, with `…` marking the cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The model drawn on the terminal: one spinner per running step.
pub struct TtyView {
    inner: Mutex<Inner>,
}

struct Inner {
    model: TtyModel,
    multi: MultiProgress,
    bars: BTreeMap<u32, ProgressBar>,
    transfers: TtyTransfers,
}

impl TtyView {
    pub fn new() -> Self {
        TtyView {
            inner: Mutex::new(Inner {
                model: TtyModel::new(),
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
                bars: BTreeMap::new(),
                transfers: TtyTransfers::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn internal(&self, name: &str, seconds: f64) {
        let mut inner = self.lock();
        let line = inner.model.internal(name, seconds);
        let _ = inner.multi.println(line);
    }

    /// One bar per blob being pulled or pushed.
    pub fn transfer(&self, e: &TransferEvent) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.transfers.apply(&inner.multi, e);
    }

    pub fn event(&self, event: Event) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        for line in inner.model.apply(event) {
            let _ = inner.multi.println(line);
        }
        let running = inner.model.running();
        // Collapse finished steps.
        let gone: Vec<u32> = inner
            .bars
            .keys()
            .filter(|v| !running.iter().any(|(r, _)| r == *v))
            .copied()
            .collect();
        for v in gone {
            if let Some(bar) = inner.bars.remove(&v) {
                bar.finish_and_clear();
                inner.multi.remove(&bar);
            }
        }
        for (v, r) in running {
            let bar = inner.bars.entry(v).or_insert_with(|| {
                let bar = inner.multi.add(ProgressBar::new_spinner());
                let style = ProgressStyle::with_template(
                    "{spinner:.cyan} {prefix} {elapsed:>4}\n    {wide_msg:.dim}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
                bar.set_style(style);
                bar.set_prefix(format!("#{} {}", r.number, shorten(&r.name, PREFIX_CHARS)));
                bar.enable_steady_tick(Duration::from_millis(100));
                bar
            });
            bar.set_message(r.last_line.clone());
        }
    }
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

    #[test]
    fn running_steps_show_their_last_line_and_collapse_when_done() {
        let mut m = TtyModel::new();
        assert_eq!(
            m.internal("[internal] load build definition", 0.01),
            "#1 [internal] load build definition  DONE 0.0s"
        );
        assert!(m
            .apply(Event::Cached {
                vertex: 0,
                name: "[1/3] FROM busybox".into()
            })
            .eq(&["#2 [1/3] FROM busybox  CACHED".to_string()]));
        assert!(m
            .apply(Event::Started {
                vertex: 3,
                name: "[2/3] RUN make".into()
            })
            .is_empty());
        assert!(m
            .apply(Event::Started {
                vertex: 4,
                name: "[b 1/1] RUN x".into()
            })
            .is_empty());
        m.apply(log(3, "compiling a\ncompil"));
        assert_eq!(m.running()[0].1.last_line, "compil");
        m.apply(log(3, "ing b\n"));
        assert_eq!(m.running()[0].1.last_line, "compiling b");
        m.apply(log(3, "10%\r50%\r"));
        assert_eq!(m.running()[0].1.last_line, "50%");
        let numbers: Vec<usize> = m.running().iter().map(|(_, r)| r.number).collect();
        assert_eq!(numbers, [3, 4]);

        assert_eq!(
            m.apply(Event::Done {
                vertex: 3,
                seconds: 1.25
            }),
            ["#3 [2/3] RUN make  DONE 1.2s".to_string()]
        );
        assert_eq!(m.running().len(), 1);
        assert_eq!(
            m.apply(Event::Canceled {
                vertex: 4,
                seconds: 0.5
            }),
            ["#4 [b 1/1] RUN x  CANCELED 0.5s".to_string()]
        );
        assert!(m.running().is_empty());
    }

    #[test]
    fn long_names_are_shortened_in_the_live_area() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("ééééé", 3), "éé…");
    }

    #[test]
    fn cache_misses_and_failures_are_printed() {
        let mut m = TtyModel::new();
        let lines = m.apply(Event::CacheMiss {
            vertex: 7,
            name: "[2/2] RUN a".into(),
            reasons: vec![rbuild_solver::explain::MissReason::FirstRun],
        });
        assert_eq!(
            lines,
            [
                "#1 [2/2] RUN a  cache miss:".to_string(),
                "#1   no earlier build ran this step".to_string()
            ]
        );
        m.apply(Event::Started {
            vertex: 7,
            name: "[2/2] RUN a".into(),
        });
        assert_eq!(
            m.apply(Event::Failed {
                vertex: 7,
                seconds: 0.1,
                error: "exit code: 1".into()
            }),
            ["#1 [2/2] RUN a  ERROR 0.1s: exit code: 1".to_string()]
        );
    }
}
