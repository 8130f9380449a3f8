//! `--progress=rawjson`: BuildKit's raw status stream, as `buildctl`/`buildx --progress=rawjson`
//! print it: one `SolveStatus` JSON object per line on stderr, with `vertexes`
//! (`digest`, `name`, `started`, `completed`, `cached`, `error`), `statuses` (blob transfers:
//! `id`, `vertex`, `name`, `current`, `total`, `timestamp`, `started`, `completed`), `logs`
//! (`vertex`, `stream` 1 or 2, `data` base64 as Go encodes bytes, `timestamp`) and
//! `warnings` (`vertex`, `level`, `short` base64). Times are RFC 3339 with nanoseconds, UTC.
//!
//! Differences from BuildKit: a vertex's `digest` is an identifier in digest form
//! (`sha256:` and the vertex number in hex), not an LLB op digest, and `inputs` is left out;
//! each object carries one change (BuildKit batches several).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rbuild_oci::registry::TransferEvent;
use rbuild_solver::events::Event;
use rbuild_solver::ports::LogStream;
use serde_json::{json, Value};

/// What the stream remembers of each vertex: its name and when it started.
#[derive(Default)]
pub struct RawJson {
    vertexes: HashMap<String, (String, String)>,
    internal: u64,
    /// The vertex started last, which blob transfers are shown under.
    current: Option<String>,
}

/// The identifier of solver vertex `n`, in digest form.
fn vertex_id(n: u32) -> String {
    format!("sha256:{n:064x}")
}

/// RFC 3339 with nanoseconds (`2024-01-02T03:04:05.123456789Z`) of `t`.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = rbuild_oci::time::rfc3339(d.as_secs());
    format!("{}.{:09}Z", secs.trim_end_matches('Z'), d.subsec_nanos())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl RawJson {
    /// The line for a step event.
    pub fn event(&mut self, event: &Event, now: SystemTime) -> Value {
        let at = timestamp(now);
        match event {
            Event::Started { vertex, name } => {
                let id = vertex_id(*vertex);
                self.vertexes.insert(id.clone(), (name.clone(), at.clone()));
                self.current = Some(id.clone());
                json!({"vertexes": [{"digest": id, "name": name, "started": at}]})
            }
            Event::Cached { vertex, name } => {
                let id = vertex_id(*vertex);
                self.vertexes.insert(id.clone(), (name.clone(), at.clone()));
                json!({"vertexes": [{
                    "digest": id, "name": name, "started": at, "completed": at, "cached": true
                }]})
            }
            Event::Log {
                vertex,
                stream,
                data,
            } => {
                let stream = match stream {
                    LogStream::Stdout => 1,
                    LogStream::Stderr => 2,
                };
                json!({"logs": [{
                    "vertex": vertex_id(*vertex), "stream": stream, "data": b64(data),
                    "timestamp": at
                }]})
            }
            Event::Done { vertex, .. } => self.end(vertex_id(*vertex), at, None),
            Event::Failed { vertex, error, .. } => {
                self.end(vertex_id(*vertex), at, Some(error.clone()))
            }
            Event::Canceled { vertex, .. } => {
                self.end(vertex_id(*vertex), at, Some("context canceled".to_string()))
            }
            Event::CacheImportFailed { vertex, error, .. } => json!({"warnings": [{
                "vertex": vertex_id(*vertex), "level": 1,
                "short": b64(format!("cache import failed: {error}").as_bytes())
            }]}),
            Event::CacheMiss {
                vertex, reasons, ..
            } => {
                let text: String = reasons
                    .iter()
                    .map(|r| format!("CACHE MISS: {r}\n"))
                    .collect();
                json!({"logs": [{
                    "vertex": vertex_id(*vertex), "stream": 2, "data": b64(text.as_bytes()),
                    "timestamp": at
                }]})
            }
        }
    }

    /// The line for a step the builder performs itself (loading the Dockerfile, exporting),
    /// which ended `seconds` after it started.
    pub fn internal(&mut self, name: &str, seconds: f64, now: SystemTime) -> Value {
        self.internal += 1;
        let id = format!("sha256:{:032x}{:032x}", 1, self.internal);
        let started = now
            .checked_sub(std::time::Duration::from_secs_f64(seconds.max(0.0)))
            .unwrap_or(now);
        json!({"vertexes": [{
            "digest": id, "name": name, "started": timestamp(started),
            "completed": timestamp(now)
        }]})
    }

    /// The line for a blob transfer, under the vertex started last.
    pub fn transfer(&self, e: &TransferEvent, now: SystemTime) -> Value {
        let at = timestamp(now);
        let mut status = json!({
            "id": format!("{}", e.digest),
            "name": format!("{} sha256:{}", super::transfer::phase_name(e.phase), e.short_id()),
            "current": e.done,
            "total": e.total,
            "timestamp": at,
        });
        if let Some(v) = &self.current {
            status["vertex"] = json!(v);
        }
        json!({ "statuses": [status] })
    }

    fn end(&mut self, id: String, at: String, error: Option<String>) -> Value {
        let (name, started) = self
            .vertexes
            .get(&id)
            .cloned()
            .unwrap_or_else(|| (String::new(), at.clone()));
        let mut v = json!({"digest": id, "name": name, "started": started, "completed": at});
        if let Some(e) = error {
            v["error"] = json!(e);
        }
        json!({ "vertexes": [v] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solve_status_objects_as_buildkit_writes_them() {
        let t = UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        assert_eq!(timestamp(t), "2023-11-14T22:13:20.000000005Z");
        let mut raw = RawJson::default();
        let started = raw.event(
            &Event::Started {
                vertex: 3,
                name: "[2/2] RUN echo hi".into(),
            },
            t,
        );
        let id = started["vertexes"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
        assert_eq!(started["vertexes"][0]["started"], timestamp(t));
        let log = raw.event(
            &Event::Log {
                vertex: 3,
                stream: LogStream::Stdout,
                data: b"hi\n".to_vec(),
            },
            t,
        );
        assert_eq!(log["logs"][0]["data"], "aGkK");
        assert_eq!(log["logs"][0]["stream"], 1);
        assert_eq!(log["logs"][0]["vertex"], id.as_str());
        let done = raw.event(
            &Event::Failed {
                vertex: 3,
                seconds: 0.1,
                error: "exit code: 1".into(),
            },
            t,
        );
        let v = &done["vertexes"][0];
        assert_eq!(v["name"], "[2/2] RUN echo hi");
        assert_eq!(v["error"], "exit code: 1");
        assert!(v["completed"].is_string());
        let cached = raw.event(
            &Event::Cached {
                vertex: 4,
                name: "x".into(),
            },
            t,
        );
        assert_eq!(cached["vertexes"][0]["cached"], true);
        let internal = raw.internal("[internal] load build definition", 0.0, t);
        assert_ne!(internal["vertexes"][0]["digest"], id.as_str());
    }
}
