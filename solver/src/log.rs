//! Per-vertex log sink: forwards output as events and keeps the last lines for error reports.

use std::collections::VecDeque;
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
}

#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
    partial: Vec<u8>,
}

impl VertexLog {
    pub(crate) fn new(vertex: u32, sink: EventSink) -> Self {
        VertexLog {
            vertex,
            sink,
            tail: Mutex::new(Tail::default()),
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
}

impl LogSink for VertexLog {
    fn write(&self, stream: LogStream, data: &[u8]) {
        (self.sink)(Event::Log {
            vertex: self.vertex,
            stream,
            data: data.to_vec(),
        });
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
