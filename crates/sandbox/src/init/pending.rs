//! What the init leaves until just before the command starts: the go-ahead of the user-mode
//! network rbuild attaches meanwhile (slirp4netns takes milliseconds to configure tap0, which
//! pid 1's mounts overlap), and stdin pointed at /dev/null once that line is read.

use std::fs::File;
use std::io::BufRead;
use std::os::fd::AsRawFd;

use crate::shared::error::{Result, SetupError};
use crate::shared::protocol::NETWORK_GO;
use crate::shared::trace;

/// What `init::start`'s namespace entry leaves for later (see the module docs).
pub(crate) struct Pending {
    pub(crate) network: bool,
    pub(crate) null: File,
}

impl Pending {
    /// Waits for the network's go-ahead (if one was asked for), then points stdin at /dev/null:
    /// call before anything of the command runs.
    pub(crate) fn settle(self) -> Result<()> {
        if self.network {
            wait_for_network()?;
            trace::mark("init: network ready");
        }
        nix::unistd::dup2(self.null.as_raw_fd(), 0)
            .map_err(|e| SetupError::sys("dup2 /dev/null", e))?;
        Ok(())
    }
}

/// Waits for rbuild's go-ahead line once it has set up the network of the new namespace.
fn wait_for_network() -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| SetupError::io("read network go-ahead from", "stdin", e))?;
    if line.trim_end() != NETWORK_GO {
        return Err(SetupError::NetworkNotReady);
    }
    Ok(())
}
