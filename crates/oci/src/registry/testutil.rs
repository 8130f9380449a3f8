//! Test helper: a tiny in-process HTTP/1.1 server (std `TcpListener` on 127.0.0.1:0, one
//! thread, bounded lifetime) that answers with a handler and logs the requests. Tests against
//! a real registry start their own (`rbuild_test_support::Registry`).

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the fake server saw it.
pub use rbuild_test_support::http::ServerRequest as Request;

/// What the handler answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

/// A running fake server; its thread stops by itself after `lifetime`.
pub struct FakeServer {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<Request>>>,
}

impl FakeServer {
    /// Starts serving `handler` (at most `max_requests` connections, at most 30 s).
    pub fn start(
        max_requests: usize,
        handler: impl Fn(&Request, SocketAddr) -> Reply + Send + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let log = Arc::new(Mutex::new(Vec::new()));
        let thread_log = log.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut served = 0;
            while served < max_requests && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        served += 1;
                        serve_one(stream, &handler, addr, &thread_log);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeServer { addr, log }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn serve_one(
    stream: TcpStream,
    handler: &impl Fn(&Request, SocketAddr) -> Reply,
    addr: SocketAddr,
    log: &Mutex<Vec<Request>>,
) -> Option<()> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = Request::read(&mut BufReader::new(stream.try_clone().ok()?))?;
    let reply = handler(&req, addr);
    // Logged before replying: a client that has its answer must find its request in the log.
    if let Ok(mut l) = log.lock() {
        l.push(req);
    }
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes()).ok()?;
    out.write_all(&reply.body).ok()?;
    out.flush().ok()?;
    Some(())
}
