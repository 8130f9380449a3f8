//! Per-vertex log sink: forwards output as events, writes all of it to the step's log file,
//! and keeps the last lines for error reports.
//!
//! The log file (`<build logs>/<vertex>-<name>.log`) is created on the first write, so steps
//! that print nothing leave no file. Nothing is clipped: every byte written goes to the file.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::events::Event;
use crate::ports::{LogSink, LogStream};
use crate::EventSink;

/// How many trailing lines of output a failure report carries.
pub const TAIL_LINES: usize = 10;

pub(crate) struct VertexLog {
    vertex: u32,
    sink: EventSink,
    tail: Mutex<Tail>,
    file: Mutex<LogFile>,
}

#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
    partial: Vec<u8>,
}

/// The on-disk log: not yet created, open, or failed (the first error is kept).
struct LogFile {
    path: Option<PathBuf>,
    out: Option<BufWriter<File>>,
    error: Option<std::io::Error>,
}

/// A file name for a step's log: its vertex index and a readable slug of its name.
pub(crate) fn log_file_name(vertex: u32, name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if slug.len() >= 48 {
            break;
        }
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    if slug.is_empty() {
        format!("{vertex}.log")
    } else {
        format!("{vertex}-{slug}.log")
    }
}

impl VertexLog {
    /// `dir`: the build's log directory (`None`: keep no file).
    pub(crate) fn new(vertex: u32, name: &str, dir: Option<&Path>, sink: EventSink) -> Self {
        VertexLog {
            vertex,
            sink,
            tail: Mutex::new(Tail::default()),
            file: Mutex::new(LogFile {
                path: dir.map(|d| d.join(log_file_name(vertex, name))),
                out: None,
                error: None,
            }),
        }
    }

    /// The last lines written (an unterminated last line included).
    pub(crate) fn tail(&self) -> Vec<String> {
        let t = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let mut lines: Vec<String> = t.lines.iter().cloned().collect();
        if !t.partial.is_empty() {
            lines.push(String::from_utf8_lossy(&t.partial).into_owned());
        }
        let skip = lines.len().saturating_sub(TAIL_LINES);
        lines.split_off(skip)
    }

    /// Flushes the log file. Returns its path if the step wrote anything, or the first error
    /// writing it hit.
    pub(crate) fn finish(&self) -> Result<Option<PathBuf>, (PathBuf, std::io::Error)> {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let path = f.path.clone().unwrap_or_default();
        if let Some(e) = f.error.take() {
            return Err((path, e));
        }
        match f.out.as_mut() {
            None => Ok(None),
            Some(out) => match out.flush() {
                Ok(()) => Ok(Some(path)),
                Err(e) => Err((path, e)),
            },
        }
    }

    fn write_file(&self, data: &[u8]) {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if f.error.is_some() {
            return;
        }
        let LogFile { path, out, error } = &mut *f;
        let Some(path) = path.as_ref() else {
            return;
        };
        if out.is_none() {
            match File::create(path) {
                Ok(file) => *out = Some(BufWriter::new(file)),
                Err(e) => {
                    *error = Some(e);
                    return;
                }
            }
        }
        if let Some(Err(e)) = out.as_mut().map(|o| o.write_all(data)) {
            *error = Some(e);
        }
    }
}

impl LogSink for VertexLog {
    fn write(&self, stream: LogStream, data: &[u8]) {
        (self.sink)(Event::Log {
            vertex: self.vertex,
            stream,
            data: data.to_vec(),
        });
        self.write_file(data);
        let mut t = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        for &b in data {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&t.partial).into_owned();
                t.partial.clear();
                t.lines.push_back(line);
                if t.lines.len() > TAIL_LINES {
                    t.lines.pop_front();
                }
            } else {
                t.partial.push(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn names_are_readable_and_safe() {
        assert_eq!(
            log_file_name(7, "[build 2/4] RUN make -j4 && ./x"),
            "7-build-2-4-RUN-make-j4-.-x.log"
        );
        assert_eq!(log_file_name(3, "///"), "3.log");
        assert!(log_file_name(1, &"a".repeat(500)).len() < 60);
    }

    #[test]
    fn keeps_everything_on_disk_and_the_tail_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let log = VertexLog::new(1, "RUN x", Some(dir.path()), Arc::new(|_| {}));
        assert_eq!(log.finish().unwrap(), None, "no output, no file");
        for i in 0..100 {
            log.write(LogStream::Stdout, format!("line {i}\n").as_bytes());
        }
        log.write(LogStream::Stderr, b"partial");
        let path = log.finish().unwrap().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 101);
        assert!(text.starts_with("line 0\n") && text.ends_with("partial"));
        let tail = log.tail();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail.last().unwrap(), "partial");
    }
}
