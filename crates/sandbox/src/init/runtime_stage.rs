//! The init side of the OCI-runtime adapter (`launch::runc`): [`runtime_stage`].
//!
//! The init unshares only a mount namespace, mounts the overlay root there, creates (and
//! reports) the mount points, resolves the user against the rootfs, writes `config.json` into
//! the scratch dir (the bundle) and runs `<runtime> run`. The runtime sets up namespaces,
//! mounts, capabilities and loopback itself. The overlay disappears with the mount namespace.
//!
//! Exit codes come from the runtime, which reports a command killed by signal N as exit code
//! 128+N (as Docker does); a runtime error (logged at level "error") is a setup error.
//! Cancellation: rbuild sends the init SIGTERM (and the init asks for SIGTERM as its
//! parent-death signal), on which the init force-deletes the container (`<runtime> delete
//! --force`, which kills it) until `<runtime> run` has returned: nothing outlives the build,
//! even when rbuild is killed (`init::runc_stop`).

use std::path::Path;
use std::process::{Command, Stdio};

use nix::sched::{unshare, CloneFlags};
use oci_spec::runtime::{Spec, UserBuilder};

use crate::init::command::env_for;
use crate::init::mounts;
use crate::init::placeholders::PlaceholderTracker;
use crate::init::root::mount_root;
use crate::init::run_mounts;
use crate::init::runc_stop::StopSignal;
use crate::init::status::{release_output, StatusWriter};
use crate::init::user;
use crate::shared::error::{Result, SetupError};
use crate::shared::paths::secure_join;
use crate::shared::protocol::{InitConfig, Status};
use crate::shared::runtime_spec::need;

fn read_in_root(rootfs: &Path, path: &str) -> Result<String> {
    let host = secure_join(rootfs, Path::new(path))?;
    match std::fs::read(&host) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(SetupError::io("read", host, e)),
    }
}

/// The init side of the runtime adapter (see the module docs). Returns the init's exit code.
pub(crate) fn runtime_stage(
    cfg: &InitConfig,
    runtime: &Path,
    status: &mut StatusWriter,
) -> Result<i32> {
    if cfg.argv.is_some() {
        // rbuild refuses this before starting the init; config.json could not carry it.
        return Err(SetupError::NonUtf8ForRuntime {
            runtime: runtime.to_path_buf(),
        });
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| SetupError::sys("unshare mount namespace", e))?;
    mounts::make_private()?;
    let rootfs = need(cfg.spec.root().as_ref(), "root")?.path().clone();
    mount_root(cfg, &rootfs)?;

    // Create the mount points ourselves so they are known placeholders; skip those inside
    // another mount (e.g. /dev/pts inside the /dev tmpfs).
    let mut mounts = cfg.spec.mounts().clone().unwrap_or_default();
    let prepared = run_mounts::prepare(&cfg.scratch, &cfg.run_mounts)?;
    mounts.extend(run_mounts::oci_mounts(&prepared)?);
    let mut tracker = PlaceholderTracker::new(&rootfs, &cfg.upper_abs);
    run_mounts::precreate(&prepared, &mut tracker)?;
    for m in &mounts {
        let dest = m.destination();
        let nested = mounts
            .iter()
            .any(|o| o.destination() != dest && dest.starts_with(o.destination()));
        if nested {
            continue;
        }
        let bind = m.typ().as_deref() == Some("bind");
        let file = bind && m.source().as_ref().is_some_and(|s| !s.is_dir());
        tracker.ensure(dest, file)?;
    }
    for (path, stamp) in tracker.placeholders() {
        status.send(&Status::Placeholder { path, stamp });
    }

    let passwd = read_in_root(&rootfs, "/etc/passwd")?;
    let group = read_in_root(&rootfs, "/etc/group")?;
    let user = user::resolve(&cfg.user, &passwd, &group)?;
    let mut spec = spec_for_user(&cfg.spec, &user)?;
    spec.set_mounts(Some(mounts));
    let config = cfg.scratch.join("config.json");
    let json = serde_json::to_vec_pretty(&spec).map_err(|source| SetupError::Protocol {
        what: "encode config.json",
        source,
    })?;
    std::fs::write(&config, json).map_err(|e| SetupError::io("write", &config, e))?;

    let id = format!(
        "rbuild-{}-{}",
        std::process::id(),
        unique_suffix(&cfg.scratch)
    );
    let state = cfg.scratch.join("runtime-state");
    let log = cfg.scratch.join("runtime.log");
    let base_args = |cmd: &mut Command| {
        cmd.arg("--root")
            .arg(&state)
            .arg("--log")
            .arg(&log)
            .arg("--log-format")
            .arg("json");
    };
    // From here on SIGTERM (rbuild cancelling, or dying) means "kill the
    // container", which the runtime would not do by itself.
    let stop = StopSignal::install()?;
    let mut cmd = Command::new(runtime);
    base_args(&mut cmd);
    cmd.arg("run")
        .arg("--bundle")
        .arg(&cfg.scratch)
        .arg(&id)
        .stdin(Stdio::null());
    let result = cmd
        .spawn()
        .and_then(|child| {
            stop.wait(child, || {
                let mut kill = Command::new(runtime);
                base_args(&mut kill);
                kill.arg("delete").arg("--force").arg(&id);
                kill
            })
        })
        .map_err(|e| SetupError::Runtime {
            runtime: runtime.to_path_buf(),
            step: "run",
            detail: e.to_string(),
        });
    // Remove the container whatever happened; a failure here leaves nothing we can fix.
    let mut delete = Command::new(runtime);
    base_args(&mut delete);
    let _ = delete
        .arg("delete")
        .arg("--force")
        .arg(&id)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let exit = result?;

    let end = match exit.code() {
        Some(0) => Status::Exited(0),
        Some(code) => match runtime_error(&log) {
            Some(msg) => Status::SetupFailed(format!("{} run: {msg}", runtime.display())),
            None => Status::Exited(code),
        },
        None => {
            use std::os::unix::process::ExitStatusExt;
            Status::Signaled(exit.signal().unwrap_or(libc::SIGKILL))
        }
    };
    // The runtime has deleted the container: nothing runs any more. Let rbuild go on without
    // waiting for this process's mount namespace to be torn down.
    release_output();
    status.send(&end);
    status.release();
    Ok(0)
}

/// The spec with the resolved user, HOME, and (for a non-root user) no effective, permitted
/// or inheritable capabilities, as Docker does.
fn spec_for_user(spec: &Spec, user: &user::ExecUser) -> Result<Spec> {
    let mut spec = spec.clone();
    let mut process = need(spec.process().clone(), "process")?;
    process.set_user(
        UserBuilder::default()
            .uid(user.uid)
            .gid(user.gid)
            .additional_gids(user.additional_gids.clone())
            .build()?,
    );
    process.set_env(Some(env_for(&process, user)));
    if user.uid != 0 {
        if let Some(mut caps) = process.capabilities().clone() {
            caps.set_effective(None);
            caps.set_permitted(None);
            caps.set_inheritable(None);
            caps.set_ambient(None);
            process.set_capabilities(Some(caps));
        }
    }
    spec.set_process(Some(process));
    Ok(spec)
}

/// The last message the runtime logged at level "error", if any.
fn runtime_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v.get("level").and_then(|l| l.as_str()) == Some("error"))
        .filter_map(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
        .next()
}

/// The random part of the scratch dir's name, to make container ids unique.
fn unique_suffix(scratch: &Path) -> String {
    scratch
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .rsplit('-')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}
