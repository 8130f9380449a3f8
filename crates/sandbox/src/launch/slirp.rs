//! User-mode networking for `NetworkMode::Default` with slirp4netns: outbound TCP/UDP through
//! the host's network stack, DNS forwarded at 10.0.2.3, the host's own loopback unreachable
//! (`--disable-host-loopback`). Without a usable slirp4netns ([`outbound`] says why: not
//! installed, or `/dev/net/tun` missing or not openable), `Default` falls back to a
//! loopback-only namespace like `None`, and [`no_outbound_note`] is what the build says about
//! it once, before any RUN fails obscurely inside apt-get. `RBUILD_SLIRP4NETNS` names the
//! binary ([`SLIRP_ENV`]; empty: none), instead of looking it up.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;

use crate::shared::error::{Result, SetupError};

/// The DNS server slirp4netns offers inside the namespace.
pub const DNS: &str = "10.0.2.3";

/// Environment variable naming the slirp4netns binary; set and empty, there is none.
pub const SLIRP_ENV: &str = "RBUILD_SLIRP4NETNS";

/// Why `NetworkMode::Default` has no outbound network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoOutbound {
    #[error("slirp4netns is not installed")]
    NotInstalled,
    #[error("slirp4netns is turned off ({SLIRP_ENV} is set and empty)")]
    Disabled,
    #[error("{SLIRP_ENV}={0} is not a file")]
    Missing(PathBuf),
    #[error("/dev/net/tun cannot be opened for reading and writing ({0}); slirp4netns needs it")]
    NoTun(String),
    #[error("the OCI runtime adapter gives RUN loopback only")]
    OciRuntime,
}

/// The slirp4netns to use: [`SLIRP_ENV`] when set, else the first in `PATH` or the usual
/// directories.
pub fn find() -> std::result::Result<PathBuf, NoOutbound> {
    if let Some(value) = std::env::var_os(SLIRP_ENV) {
        if value.is_empty() {
            return Err(NoOutbound::Disabled);
        }
        let path = PathBuf::from(value);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(NoOutbound::Missing(path))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/local/bin".into()])
        .map(|dir| dir.join("slirp4netns"))
        .find(|p| p.is_file())
        .ok_or(NoOutbound::NotInstalled)
}

/// The slirp4netns that gives `NetworkMode::Default` its outbound network, or why there is
/// none: it also needs `/dev/net/tun` (root or not; unprivileged, mode 0666 as udev makes it
/// on most systems).
pub fn outbound() -> std::result::Result<PathBuf, NoOutbound> {
    let exe = find()?;
    tun_openable().map_err(NoOutbound::NoTun)?;
    Ok(exe)
}

/// Whether `/dev/net/tun` is readable and writable by the caller.
fn tun_openable() -> std::result::Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map(drop)
        .map_err(|e| e.to_string())
}

/// What a build whose RUN steps use the default network says once when they will get
/// loopback only (`why`).
pub fn no_outbound_note(why: &NoOutbound) -> String {
    format!(
        "RUN has no outbound network: {why}, so RUN with the default network gets loopback \
         only (package managers will fail to connect); --network=host gives RUN the host's \
         network, --network=none says loopback only explicitly"
    )
}

/// A running slirp4netns attached to one sandbox; told to stop on drop, and reaped off the
/// build's path (its shutdown takes ~20 ms, which every RUN used to wait for).
pub struct Slirp {
    child: Option<Child>,
    exit_w: Option<OwnedFd>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SetupError::sys("create slirp4netns pipe", e))
}

impl Slirp {
    /// Attaches slirp4netns to the network namespace of `pid` and waits until `tap0` is
    /// configured in it.
    pub fn start(exe: &Path, pid: u32) -> Result<Slirp> {
        let err = |reason: String| SetupError::Slirp {
            exe: exe.to_path_buf(),
            reason,
        };
        let (ready_r, ready_w) = pipe()?;
        let (exit_r, exit_w) = pipe()?;
        let (ready_fd, exit_fd) = (ready_w.as_raw_fd(), exit_r.as_raw_fd());
        let mut cmd = Command::new(exe);
        cmd.arg("--configure")
            .arg("--mtu=65520")
            .arg("--disable-host-loopback")
            .arg(format!("--ready-fd={ready_fd}"))
            .arg(format!("--exit-fd={exit_fd}"))
            .arg(pid.to_string())
            .arg("tap0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: the closure only calls async-signal-safe functions (fcntl, prctl).
        unsafe {
            cmd.pre_exec(move || {
                for fd in [ready_fd, exit_fd] {
                    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
                }
                set_pdeathsig(Signal::SIGKILL)?;
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| err(e.to_string()))?;
        drop(ready_w);
        drop(exit_r);
        let mut byte = [0u8; 1];
        let ready = File::from(ready_r).read(&mut byte).unwrap_or(0) == 1;
        let mut slirp = Slirp {
            child: Some(child),
            exit_w: Some(exit_w),
        };
        if !ready {
            let status = slirp.stop();
            return Err(err(format!(
                "exited before the network was ready ({status})"
            )));
        }
        Ok(slirp)
    }

    /// Tells slirp4netns to exit (by closing its exit fd), reaps it and says how it ended.
    fn stop(&mut self) -> String {
        self.exit_w = None;
        match self.child.take().map(|mut c| c.wait()) {
            Some(Ok(status)) => status.to_string(),
            Some(Err(e)) => e.to_string(),
            None => "already stopped".to_string(),
        }
    }
}

impl Drop for Slirp {
    fn drop(&mut self) {
        // Closing the exit fd tells slirp4netns to exit; a thread of its own reaps it, so
        // the next RUN does not wait for its shutdown (it dies with rbuild anyway: PDEATHSIG).
        self.exit_w = None;
        if let Some(mut child) = self.child.take() {
            // Without a thread to spare, the child stays a zombie until rbuild exits.
            let _ = std::thread::Builder::new()
                .name("slirp-reaper".into())
                .spawn(move || {
                    let _ = child.wait();
                });
        }
    }
}
