//! A forwarding proxy for an SSH agent socket, so that `RUN --mount=type=ssh,uid=…,gid=…,mode=…`
//! sees a socket with the owner and mode it asked for without touching the user's agent socket.
//!
//! The proxy listens on `agent.sock` in a private (0700) directory under the system temporary
//! directory (Unix socket paths are limited to 108 bytes, so not under the store). An accept
//! thread forwards each connection to the agent, byte for byte, on two threads. Dropping the
//! proxy stops accepting and removes the directory; connections still open end when either
//! side closes (the RUN's processes are gone by then).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the accept loop checks whether it should stop.
const POLL: Duration = Duration::from_millis(20);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A running proxy. Invariant: while it lives, [`SshProxy::socket`] accepts connections and
/// forwards them to the agent socket it was started with.
#[derive(Debug)]
pub(crate) struct SshProxy {
    dir: PathBuf,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl SshProxy {
    /// Listens on a new socket owned by `uid:gid` with permission bits `mode`, forwarding to
    /// `agent`.
    pub(crate) fn start(agent: &Path, uid: u32, gid: u32, mode: u32) -> io::Result<SshProxy> {
        let dir = private_dir()?;
        let socket = dir.join("agent.sock");
        let started = (|| {
            let listener = UnixListener::bind(&socket)?;
            std::os::unix::fs::chown(&socket, Some(uid), Some(gid))?;
            fs::set_permissions(&socket, fs::Permissions::from_mode(mode & 0o7777))?;
            listener.set_nonblocking(true)?;
            Ok::<_, io::Error>(listener)
        })();
        let listener = match started {
            Ok(l) => l,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (stop, agent) = (Arc::clone(&stop), agent.to_path_buf());
            std::thread::Builder::new()
                .name("rbuild-ssh-proxy".into())
                .spawn(move || accept_loop(&listener, &agent, &stop))?
        };
        Ok(SshProxy {
            dir,
            socket,
            stop,
            accept: Some(accept),
        })
    }

    /// The proxy's socket on the host.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for SshProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A new directory only root (this process) can enter.
fn private_dir() -> io::Result<PathBuf> {
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("rbuild-ssh-{}-{n}-{nanos}", std::process::id()));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn accept_loop(listener: &UnixListener, agent: &Path, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let agent = agent.to_path_buf();
                let _ = std::thread::Builder::new()
                    .name("rbuild-ssh-conn".into())
                    .spawn(move || forward(client, &agent));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // WouldBlock (nothing to accept) or a transient failure: wait and look again.
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Copies bytes both ways between a client and a new connection to the agent until both
/// directions are closed. A failure just closes the connection (the client sees EOF).
fn forward(client: UnixStream, agent: &Path) {
    if client.set_nonblocking(false).is_err() {
        return;
    }
    let Ok(upstream) = UnixStream::connect(agent) else {
        return;
    };
    let (Ok(mut client_r), Ok(mut upstream_w)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let to_agent = std::thread::spawn(move || {
        let _ = io::copy(&mut client_r, &mut upstream_w);
        let _ = upstream_w.shutdown(std::net::Shutdown::Write);
    });
    let (mut upstream_r, mut client_w) = (upstream, client);
    let _ = io::copy(&mut upstream_r, &mut client_w);
    let _ = client_w.shutdown(std::net::Shutdown::Write);
    let _ = to_agent.join();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn forwards_and_applies_mode() {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("agent");
        let listener = UnixListener::bind(&agent).unwrap();
        let echo = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
            c.write_all(&buf).unwrap();
        });
        let me = rbuild_test_support::privileges();
        let proxy = SshProxy::start(&agent, me.uid, me.gid, 0o600).unwrap();
        let md = fs::metadata(proxy.socket()).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o600);
        let mut c = UnixStream::connect(proxy.socket()).unwrap();
        c.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello");
        echo.join().unwrap();
        let path = proxy.socket().to_path_buf();
        drop(proxy);
        assert!(!path.exists());
    }
}
