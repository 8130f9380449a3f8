//! Plain HTTP/1.1 on loopback with std only: a one-request client (enough to push an image to
//! a registry), [`serve`], a server that answers every connection with the same body, and
//! [`serve_raw`], one that answers with the same bytes and hands out the requests it read; and
//! [`ServerRequest::read`], how a test server reads one request; and [`host_global_ipv4`], the
//! address a sandboxed RUN reaches the host by.

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// The host's first global IPv4 address (`ip -4 addr show scope global`), if it has one: how
/// a sandboxed RUN behind slirp4netns, which gives no way to the host's loopback, reaches a
/// server on the host.
pub fn host_global_ipv4() -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    Some(word.split('/').next()?.to_string())
}

/// One response: its status, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request as a test server read it.
#[derive(Clone, Debug)]
pub struct ServerRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Lower-cased header names.
    pub headers: Vec<(String, String)>,
    /// As long as its `Content-Length` says.
    pub body: Vec<u8>,
}

impl ServerRequest {
    /// Reads the request line, the headers and the body; `None` on a malformed or cut request.
    pub fn read(reader: &mut impl BufRead) -> Option<ServerRequest> {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let mut parts = line.split_whitespace();
        let method = parts.next()?.to_string();
        let target = parts.next()?.to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).ok()? == 0 {
                return None;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let request = ServerRequest {
            method,
            target,
            headers,
            body: Vec::new(),
        };
        let len: usize = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
        Some(ServerRequest { body, ..request })
    }

    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request to `addr` (`host:port`) on a new connection and reads the whole answer.
/// `target` is the path and query, or a full `http://addr/...` URL.
pub fn request(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let target = target
        .strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(target);
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{method} {target}: not an HTTP response"),
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Response {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

/// Serves `body` with `status` (e.g. `"200 OK"`) to each of the next `n` connections on a
/// loopback port, from a background thread; returns the `host:port`.
pub fn serve(status: &'static str, body: Vec<u8>, n: usize) -> String {
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    serve_raw(response, n).0
}

/// Answers each of the next `n` connections on a loopback port with the bytes `response`
/// (status line, headers and body, as written), from a background thread; returns the
/// `host:port` and a receiver of each request as read (its head, up to 4 KiB).
pub fn serve_raw(response: Vec<u8>, n: usize) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let Ok(mut conn) = stream else { continue };
            let mut req = [0u8; 4096];
            let got = conn.read(&mut req).unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&req[..got]).into_owned());
            let _ = conn.write_all(&response);
        }
    });
    (addr.to_string(), rx)
}
