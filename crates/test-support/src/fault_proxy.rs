//! A fault-injecting HTTP proxy in front of a test's registry: std `TcpListener` threads, one
//! per connection, each request forwarded to the upstream `host:port` on a new connection and
//! its answer relayed with `Connection: close`. Clients may use it as the registry itself
//! (`GET /v2/...`) or as a forward proxy through `HTTP_PROXY` (`GET http://host/v2/...`);
//! either way the request goes to the upstream, its `Host` kept, so that the registry's
//! upload `Location`s point back through the proxy.
//!
//! [`FaultProxy::inject`] arms a [`Fault`] for the next requests matching a method and a path
//! fragment: answer a status of its own (with `Retry-After` and a registry error body),
//! close the connection without answering, or relay the answer cut off halfway through its
//! body. Every request is logged with what was done to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer `code` without asking the registry, with this `Retry-After` value if any and
    /// the body `{"errors":[{"code":"FAULT","message":"injected <code>"}]}`.
    Status {
        code: u16,
        retry_after: Option<String>,
    },
    /// Read the request, then close the connection without an answer.
    Drop,
    /// Relay the registry's answer, but close the connection halfway through its body.
    CutBody,
}

/// One request as the proxy saw it: `METHOD /path?query`, and the fault applied, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub fault: Option<Fault>,
}

struct Rule {
    method: String,
    path_contains: String,
    fault: Fault,
    times: usize,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

/// A running proxy; it serves until the test process ends.
pub struct FaultProxy {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr").to_string();
        let shared = Arc::new(Shared::default());
        let upstream = upstream.to_string();
        let state = Arc::clone(&shared);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = Arc::clone(&state);
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &upstream, &state);
                });
            }
        });
        FaultProxy { addr, shared }
    }

    /// Applies `fault` to the next `times` requests whose method is `method` (any when empty)
    /// and whose path contains `path_contains`. Rules apply in the order they were armed.
    pub fn inject(&self, method: &str, path_contains: &str, fault: Fault, times: usize) {
        lock(&self.shared.rules).push(Rule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            fault,
            times,
        });
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.seen).clone()
    }

    /// How many requests got a fault.
    pub fn faults_applied(&self) -> usize {
        self.seen().iter().filter(|s| s.fault.is_some()).count()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The fault armed for `method path`, used up by one.
fn take_fault(shared: &Shared, method: &str, path: &str) -> Option<Fault> {
    let mut rules = lock(&shared.rules);
    let rule = rules.iter_mut().find(|r| {
        r.times > 0
            && (r.method.is_empty() || r.method == method)
            && path.contains(&r.path_contains)
    })?;
    rule.times -= 1;
    Some(rule.fault.clone())
}

/// Serves one connection: one request, one answer, closed.
fn serve(conn: TcpStream, upstream: &str, shared: &Shared) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(());
    };
    let method = method.to_string();
    // A forward proxy's request names the whole URL; the upstream wants the path.
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]).to_string(),
        None => target.to_string(),
    };
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let name = h.split(':').next().unwrap_or_default().to_ascii_lowercase();
        if name == "content-length" {
            length = h[name.len() + 1..].trim().parse().unwrap_or(0);
        }
        if !matches!(
            name.as_str(),
            "connection" | "proxy-connection" | "keep-alive"
        ) {
            head.push_str(h);
            head.push_str("\r\n");
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;

    let fault = take_fault(shared, &method, &path);
    lock(&shared.seen).push(Seen {
        method: method.clone(),
        path: path.clone(),
        fault: fault.clone(),
    });
    let mut out = conn;
    match fault {
        Some(Fault::Drop) => return out.shutdown(Shutdown::Both),
        Some(Fault::Status { code, retry_after }) => {
            let body = format!(r#"{{"errors":[{{"code":"FAULT","message":"injected {code}"}}]}}"#);
            let mut answer = format!(
                "HTTP/1.1 {code} Fault\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some(after) = retry_after {
                answer.push_str(&format!("Retry-After: {after}\r\n"));
            }
            answer.push_str("\r\n");
            answer.push_str(&body);
            return out.write_all(answer.as_bytes());
        }
        Some(Fault::CutBody) | None => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(head.as_bytes())?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |i| i + 4);
    let (head, rest) = answer.split_at(end);
    let head = String::from_utf8_lossy(head);
    let mut relayed: String = head
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    relayed.push_str("Connection: close\r\n\r\n");
    out.write_all(relayed.as_bytes())?;
    if fault == Some(Fault::CutBody) {
        out.write_all(&rest[..rest.len() / 2])?;
        out.flush()?;
        return out.shutdown(Shutdown::Both);
    }
    out.write_all(rest)
}
