//! Fakes of the ports and builders of graph values, for tests that need no root, sandbox or
//! network: [`FakeExecutor`] (RUN as a tiny command language), [`FakeImages`] (every
//! reference resolves to a one-layer image), [`NoRemote`] (a remote source without a
//! network), [`Collect`] (a log sink that keeps the output), and [`exec_op`] / [`sh`] /
//! [`copy_op`] / [`busybox_op`] / [`context_op`] / [`vertex`].

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use rbuild_cache::Store;
use rbuild_graph::{
    CopyAction, ExecOp, FileAction, FileOp, ImageConfig, ImageOp, NetworkMode, Op, Vertex, VertexId,
};
use rbuild_ports::{
    ExecError, ExecRequest, Executor, GitCheckout, GitError, GitRef, GitResolve, GitSource,
    HttpError, HttpFetch, HttpSource, ImageSource, LogSink, LogStream, MountSource, ResolvedImage,
    ResolvedMount, SourceError, Validators,
};
use rbuild_types::{Digest, ImageRef, Platform, SnapshotId};

/// A RUN with these args and nothing else: no environment, `/` as working directory, root,
/// no network, no mounts, the default sandbox.
pub fn exec_op<S: AsRef<str>>(args: &[S]) -> ExecOp {
    ExecOp {
        platform: rbuild_types::Platform::host(),
        args: args.iter().map(|s| s.as_ref().into()).collect(),
        env: vec![],
        cwd: "/".into(),
        user: String::new(),
        network: NetworkMode::None,
        mounts: vec![],
        security: Default::default(),
        proxy_env: Default::default(),
        meta: Default::default(),
    }
}

/// [`exec_op`] of `/bin/sh -c script`.
pub fn sh(script: &str) -> ExecOp {
    exec_op(&["/bin/sh", "-c", script])
}

/// A COPY of `src` from input `source` to `dest`, with no flags.
pub fn copy_action(source: usize, src: &str, dest: &str) -> CopyAction {
    CopyAction {
        source,
        src: src.into(),
        dest: dest.into(),
        chown: None,
        chmod: None,
        allow_empty_wildcard: false,
        unpack: false,
        exclude: vec![],
        parents: None,
    }
}

/// A file op of one [`copy_action`].
pub fn copy_op(source: usize, src: &str, dest: &str) -> Op {
    Op::File(FileOp {
        actions: vec![FileAction::Copy(copy_action(source, src, dest))],
    })
}

/// `FROM busybox` for the host's platform.
pub fn busybox_op() -> Op {
    Op::Image(ImageOp {
        reference: ImageRef::parse("busybox").unwrap_or_else(|e| panic!("busybox: {e}")),
        platform: Platform::host(),
    })
}

/// The main build context.
pub fn context_op() -> Op {
    Op::Context {
        name: "context".into(),
    }
}

/// A vertex named `name` running `op` on the vertices `inputs`.
pub fn vertex(op: Op, inputs: &[u32], name: &str) -> Vertex {
    Vertex {
        op,
        inputs: inputs.iter().map(|&i| VertexId(i)).collect(),
        name: name.to_string(),
        span: None,
        ignore_cache: false,
        origin: origin_of(name),
    }
}

/// The origin the frontend gives a step named `[stage i/n] …` (`[i/n] …`: `stage-0`); `None`
/// for other names (internal vertices).
pub fn origin_of(name: &str) -> Option<rbuild_graph::Origin> {
    let inside = name.strip_prefix('[')?.split_once(']')?.0;
    let (stage, frac) = inside.rsplit_once(' ').unwrap_or(("stage-0", inside));
    let index = frac.split_once('/')?.0.parse().ok()?;
    Some(rbuild_graph::Origin {
        stage: stage.to_string(),
        index,
        instruction: rbuild_graph::Instruction::Run,
        onbuild: false,
    })
}

/// Keeps everything a command writes.
#[derive(Default)]
pub struct Collect {
    pub out: Mutex<Vec<u8>>,
    pub err: Mutex<Vec<u8>>,
}

impl LogSink for Collect {
    fn write(&self, stream: LogStream, data: &[u8]) {
        let target = match stream {
            LogStream::Stdout => &self.out,
            LogStream::Stderr => &self.err,
        };
        target.lock().expect("log lock").extend_from_slice(data);
    }
}

impl Collect {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().expect("log lock")).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().expect("log lock")).into_owned()
    }
}

/// What one run of a [`FakeExecutor`] was handed, and when it ran.
#[derive(Clone, Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub mounts: Vec<ResolvedMount>,
    pub started: Instant,
    pub ended: Instant,
}

/// An executor without a sandbox. A RUN's args are a command of its own:
///
/// - `write PATH [CONTENT]`: writes CONTENT (`x` when left out) to PATH in the new layer;
/// - `print N`: N lines `line <i>` on stdout;
/// - `fail CODE [MESSAGE]`: MESSAGE as a line on stderr, then exit code CODE;
/// - `block`: waits until the build cancels the run (then "killed by signal 9");
/// - `hold MS`: sleeps MS milliseconds;
/// - `barrier`: waits until another run reaches a `barrier` too;
/// - `cache-append NAME`: appends the line `run` to NAME in the first directory mount;
/// - `ssh-echo`: sends `ping` through the first socket mount and fails unless it comes back;
/// - anything else: does nothing.
///
/// Every run is recorded ([`FakeExecutor::runs`]). [`FakeExecutor::echoing`] first writes
/// `running <args>` to stdout.
pub struct FakeExecutor {
    runs: Mutex<Vec<Run>>,
    barrier: Barrier,
    echo: bool,
}

impl Default for FakeExecutor {
    fn default() -> Self {
        FakeExecutor {
            runs: Mutex::new(Vec::new()),
            barrier: Barrier::new(2),
            echo: false,
        }
    }
}

impl FakeExecutor {
    /// One that writes `running <args>` to stdout before each command.
    pub fn echoing() -> Self {
        FakeExecutor {
            echo: true,
            ..FakeExecutor::default()
        }
    }

    /// The runs so far, in the order they ended.
    pub fn runs(&self) -> Vec<Run> {
        self.runs.lock().expect("runs lock").clone()
    }

    /// How many runs there were.
    pub fn count(&self) -> usize {
        self.runs.lock().expect("runs lock").len()
    }

    fn command(&self, args: &[String], req: &ExecRequest<'_>) -> Result<(), ExecError> {
        let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
        let number = |i: usize| {
            arg(i)
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("fake executor: {args:?} wants a number"))
        };
        match arg(0) {
            "write" => {
                let p = req.upper.join(arg(1).trim_start_matches('/'));
                std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                let content = args.get(2).map_or("x", String::as_str);
                std::fs::write(p, content).expect("write");
            }
            "print" => {
                for i in 0..number(1) {
                    req.log
                        .write(LogStream::Stdout, format!("line {i}\n").as_bytes());
                }
            }
            "fail" => {
                if let Some(message) = args.get(2) {
                    req.log
                        .write(LogStream::Stderr, format!("{message}\n").as_bytes());
                }
                return Err(ExecError::Exit(number(1) as i32));
            }
            "block" => {
                // Like the sandbox: a cancel callback "kills" the command.
                let (tx, rx) = mpsc::channel::<()>();
                let tx = Mutex::new(Some(tx));
                let _guard = req.cancel.on_cancel(move || {
                    tx.lock().expect("cancel lock").take();
                });
                req.log.write(LogStream::Stdout, b"blocking\n");
                // Returns when the cancel callback drops the sender.
                let _ = rx.recv();
                return Err(ExecError::Signal(9));
            }
            "hold" => std::thread::sleep(Duration::from_millis(number(1))),
            "barrier" => {
                self.barrier.wait();
            }
            "cache-append" => {
                let p = first_dir(req.mounts).join(arg(1));
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .expect("open the cache file");
                writeln!(f, "run").expect("append");
            }
            "ssh-echo" => {
                let sock = req
                    .mounts
                    .iter()
                    .find_map(|m| match &m.source {
                        MountSource::Socket(p) => Some(p.clone()),
                        _ => None,
                    })
                    .expect("a socket mount");
                let mut c = UnixStream::connect(sock).expect("connect to the agent");
                c.write_all(b"ping").expect("send");
                let mut back = [0u8; 4];
                c.read_exact(&mut back).expect("receive");
                if &back != b"ping" {
                    return Err(ExecError::Exit(1));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The host directory of the first directory mount (a cache mount).
pub fn first_dir(mounts: &[ResolvedMount]) -> PathBuf {
    mounts
        .iter()
        .find_map(|m| match &m.source {
            MountSource::Dir(p) => Some(p.clone()),
            _ => None,
        })
        .expect("a cache mount")
}

impl Executor for FakeExecutor {
    fn run(&self, req: ExecRequest<'_>) -> Result<(), ExecError> {
        let started = Instant::now();
        let args: Vec<String> = req.op.args.iter().map(|a| a.lossy().into()).collect();
        if self.echo {
            req.log.write(
                LogStream::Stdout,
                format!("running {}\n", args.join(" ")).as_bytes(),
            );
        }
        let result = self.command(&args, &req);
        self.runs.lock().expect("runs lock").push(Run {
            args,
            env: req.op.env.clone(),
            mounts: req.mounts.to_vec(),
            started,
            ended: Instant::now(),
        });
        result
    }
}

type FillLayer = dyn Fn(&ResolvedImage, &Path) + Send + Sync;

/// An image source without a registry: every reference resolves, with a default config, to
/// one image whose manifest digest is the digest of the reference's text (or the one given to
/// [`FakeImages::set_manifest`]), and whose one layer (snapshot `fake base layer`) is empty or
/// written by [`FakeImages::with_layer`] when first pulled.
pub struct FakeImages {
    store: Arc<Store>,
    manifest: Mutex<Option<Digest>>,
    fill: Box<FillLayer>,
    unpacked: Mutex<Vec<SnapshotId>>,
}

impl FakeImages {
    pub fn new(store: Arc<Store>) -> Self {
        FakeImages {
            store,
            manifest: Mutex::new(None),
            fill: Box::new(|_, _| {}),
            unpacked: Mutex::new(Vec::new()),
        }
    }

    /// The lazy snapshots [`ImageSource::unpack`] has unpacked (as empty directories), in
    /// order.
    pub fn unpacked(&self) -> Vec<SnapshotId> {
        self.unpacked.lock().expect("unpacked lock").clone()
    }

    /// The base layer gets what `fill` writes into the directory it is given.
    pub fn with_layer(
        mut self,
        fill: impl Fn(&ResolvedImage, &Path) + Send + Sync + 'static,
    ) -> Self {
        self.fill = Box::new(fill);
        self
    }

    /// From now on every reference resolves to the manifest `digest` (the base image
    /// "changed upstream").
    pub fn set_manifest(&self, digest: Digest) {
        *self.manifest.lock().expect("manifest lock") = Some(digest);
    }
}

impl ImageSource for FakeImages {
    fn resolve(
        &self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<ResolvedImage, SourceError> {
        let manifest = *self.manifest.lock().expect("manifest lock");
        Ok(ResolvedImage {
            reference: reference.clone(),
            platform: platform.clone(),
            manifest_digest: manifest
                .unwrap_or_else(|| Digest::of(reference.to_string().as_bytes())),
            config: ImageConfig::default(),
        })
    }

    fn pull(&self, image: &ResolvedImage) -> Result<Vec<SnapshotId>, SourceError> {
        let id = SnapshotId(Digest::of(b"fake base layer"));
        if self.store.snapshots().path(&id).is_none() {
            let p = self
                .store
                .snapshots()
                .prepare()
                .expect("prepare the base layer");
            (self.fill)(image, &p.upper);
            self.store
                .snapshots()
                .commit(p, &id)
                .expect("commit the base layer");
        }
        Ok(vec![id])
    }

    /// Snapshots in the store are skipped; a lazy one (`store.lazy_layers()`) becomes an empty
    /// snapshot; anything else is an error naming it.
    fn unpack(&self, layers: &[SnapshotId]) -> Result<(), SourceError> {
        for id in layers {
            if self.store.snapshots().path(id).is_some() {
                continue;
            }
            let lazy = self.store.lazy_layers().get(id).map_err(|e| SourceError {
                reference: "layers".into(),
                source: Box::new(e),
            })?;
            if lazy.is_none() {
                return Err(SourceError {
                    reference: "layers".into(),
                    source: format!("snapshot {} is neither unpacked nor lazy", id.0).into(),
                });
            }
            let p = self
                .store
                .snapshots()
                .prepare()
                .expect("prepare a lazy layer");
            self.store
                .snapshots()
                .commit(p, id)
                .expect("commit a lazy layer");
            self.unpacked.lock().expect("unpacked lock").push(*id);
        }
        Ok(())
    }
}

/// A `RemoteSource` without a network: every GET and git operation fails, naming what was
/// asked for. For solves whose graphs have no remote sources, and for code that must not
/// reach the network.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRemote;

const NO_NETWORK: &str = "no network in this test";

impl HttpSource for NoRemote {
    fn http_get(&self, url: &str, _: Option<&Validators>) -> Result<HttpFetch, HttpError> {
        Err(HttpError::Transport {
            url: url.to_string(),
            detail: NO_NETWORK.to_string(),
        })
    }
}

impl GitSource for NoRemote {
    fn git_resolve(&self, resolve: &GitResolve<'_>) -> Result<GitRef, GitError> {
        Err(GitError::Command {
            remote: resolve.remote.to_string(),
            command: format!("ls-remote {}", resolve.reference),
            detail: NO_NETWORK.to_string(),
        })
    }

    fn git_checkout(&self, checkout: &GitCheckout<'_>) -> Result<(), GitError> {
        Err(GitError::Command {
            remote: checkout.remote.to_string(),
            command: format!("fetch {:?}", checkout.revision),
            detail: NO_NETWORK.to_string(),
        })
    }
}
