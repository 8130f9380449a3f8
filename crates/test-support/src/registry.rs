//! A registry of the test's own: Debian's `docker-registry` on a free loopback port, with
//! storage in a temporary directory, stopped when the [`Registry`] is dropped (and killed with
//! the test process if that dies first). [`Registry::with_busybox`] also pushes the offline
//! busybox image ([`crate::images::busybox_layout`]); [`Registry::with_busybox_multi`] also an
//! image index of it for amd64 and arm64. [`Registry::start_with`] starts one
//! that serves HTTPS with a test CA's certificate ([`crate::certs`]), may ask for client
//! certificates, and may ask for htpasswd basic authentication (a bcrypt line, the only kind
//! docker-registry reads) or for bearer tokens from a token server of its own
//! ([`crate::token_server`], `auth.token` in its configuration).

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rbuild_types::Digest;

use crate::certs::TestCerts;
use crate::http::request;
use crate::images::{
    blob, busybox_layout, busybox_multi_layout, index_children, is_index, manifest_blobs,
    LayoutImage, OCI_INDEX, OCI_MANIFEST,
};
use crate::skip::require_tool;
use crate::token_server::{TokenAuth, TokenServer};

/// A running `docker-registry serve` on `addr` (`127.0.0.1:<port>`): plain HTTP unless
/// started with [`Security::tls`].
pub struct Registry {
    child: Child,
    pub addr: String,
    dir: tempfile::TempDir,
    certs: Option<TestCerts>,
    token_server: Option<TokenServer>,
}

/// How a [`Registry`] of [`Registry::start_with`] is secured; the default is plain HTTP,
/// anonymous.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// Serve HTTPS with a certificate of a test CA made for this registry.
    pub tls: bool,
    /// Also require a client certificate signed by that CA (with `tls`).
    pub client_certs: bool,
    /// htpasswd basic authentication with this user name and password.
    pub user: Option<(String, String)>,
    /// Bearer tokens from a [`TokenServer`] serving these users (instead of `user`).
    pub token: Option<TokenAuth>,
}

/// The repositories [`Registry::with_busybox`] pushes the busybox image to, with tag `latest`:
/// under `library/` as Docker Hub names it (`busybox` through a docker.io mirror), and at the
/// top level as a registry of one's own would.
pub const BUSYBOX_REPOS: [&str; 2] = ["library/busybox", "busybox"];

/// The repository [`Registry::with_busybox_multi`] pushes the busybox image index (amd64 and
/// arm64, [`busybox_multi_layout`]) to, with tag `latest`.
pub const BUSYBOX_MULTI_REPO: &str = "library/busybox-multi";

impl Registry {
    /// Starts an empty registry; `None` after a skip when `docker-registry` is not installed.
    pub fn start() -> Option<Registry> {
        Self::start_with(&Security::default())
    }

    /// Starts an empty registry secured as `security` says; `None` after a skip when
    /// `docker-registry` (or, for TLS or tokens, `openssl`) is not installed.
    pub fn start_with(security: &Security) -> Option<Registry> {
        let exe = require_tool("docker-registry")?;
        let dir = tempfile::Builder::new()
            .prefix("rbuild-test-registry-")
            .tempdir()
            .expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let certs = if security.tls {
            Some(TestCerts::generate(dir.path())?)
        } else {
            None
        };
        let token_server = match &security.token {
            Some(auth) => Some(TokenServer::start(dir.path(), auth)?),
            None => None,
        };
        let config = dir.path().join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some(certs) = &certs {
            let _ = write!(
                yaml,
                "  tls:\n    certificate: {}\n    key: {}\n",
                certs.server_cert.display(),
                certs.server_key.display()
            );
            if security.client_certs {
                let _ = write!(yaml, "    clientcas:\n      - {}\n", certs.ca.display());
            }
        }
        if let Some((user, password)) = &security.user {
            let htpasswd = dir.path().join("htpasswd");
            let hash = bcrypt::hash(password, 4).expect("bcrypt");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("write htpasswd");
            let _ = write!(
                yaml,
                "auth:\n  htpasswd:\n    realm: rbuild-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        if let Some(server) = &token_server {
            yaml.push_str(&server.registry_config());
        }
        std::fs::write(&config, yaml).expect("write the registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe. The registry dies with the thread that started
        // it, the test's, should the test process be killed before the Drop below runs.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let child = cmd.spawn().expect("start docker-registry");
        let mut registry = Registry {
            child,
            addr,
            dir,
            certs,
            token_server,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if registry.answers() {
                return Some(registry);
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!("docker-registry exited ({status}): {}", registry.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on {}: {}",
                registry.addr,
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A registry with the busybox image as `<addr>/library/busybox:latest` and
    /// `<addr>/busybox:latest` ([`BUSYBOX_REPOS`]); `None` after a skip when docker-registry
    /// or busybox-static is missing.
    pub fn with_busybox() -> Option<Registry> {
        let layout = busybox_layout()?;
        let registry = Registry::start()?;
        for repo in BUSYBOX_REPOS {
            registry.push_layout(&layout, repo, "latest");
        }
        Some(registry)
    }

    /// [`Registry::with_busybox`], plus the image index of busybox for linux/amd64 and
    /// linux/arm64/v8 ([`busybox_multi_layout`]) as `<addr>/library/busybox-multi:latest`
    /// ([`BUSYBOX_MULTI_REPO`]), so that `FROM <addr>/library/busybox-multi` picks each
    /// platform's. `None` after a skip when docker-registry, busybox-static or
    /// busybox-static:arm64's package file is missing.
    pub fn with_busybox_multi() -> Option<Registry> {
        let multi = busybox_multi_layout()?;
        let registry = Registry::with_busybox()?;
        registry.push_layout(&multi, BUSYBOX_MULTI_REPO, "latest");
        Some(registry)
    }

    /// Whether the registry answers: `/v2/` over plain HTTP (`401` when it asks for a
    /// password), or a TCP connection for HTTPS.
    fn answers(&self) -> bool {
        if self.certs.is_some() {
            return TcpStream::connect(&self.addr).is_ok();
        }
        request(&self.addr, "GET", "/v2/", &[], b"").is_ok_and(|r| matches!(r.status, 200 | 401))
    }

    /// The token server of a registry in token mode ([`Security::token`]).
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token_server.as_ref()
    }

    /// The test CA of a registry serving HTTPS.
    pub fn certs(&self) -> Option<&TestCerts> {
        self.certs.as_ref()
    }

    /// A BuildKit-style config for this HTTPS registry: `http = false` (a loopback registry is
    /// plain HTTP by default), with the test CA as `ca` when `ca`, and the client certificate
    /// as `keypair` when `keypair`.
    pub fn tls_config(&self, ca: bool, keypair: bool) -> String {
        let mut out = format!("[registry.\"{}\"]\nhttp = false\n", self.addr);
        if let Some(certs) = &self.certs {
            if ca {
                let _ = writeln!(out, "ca = [\"{}\"]", certs.ca.display());
            }
            if keypair {
                let _ = write!(
                    out,
                    "[[registry.\"{}\".keypair]]\nkey = \"{}\"\ncert = \"{}\"\n",
                    self.addr,
                    certs.client_key.display(),
                    certs.client_cert.display()
                );
            }
        }
        out
    }

    /// A BuildKit-style config that makes this registry Docker Hub's mirror, over plain HTTP.
    pub fn mirror_config(&self) -> String {
        format!(
            "[registry.\"docker.io\"]\nmirrors = [\"{0}\"]\n[registry.\"{0}\"]\nhttp = true\n",
            self.addr
        )
    }

    /// Pushes the image (or image index) of the OCI layout at `layout` as `repo:tag`; returns
    /// its manifest digest. An index's manifests go first, by digest, each with its blobs.
    pub fn push_layout(&self, layout: &Path, repo: &str, tag: &str) -> Digest {
        let image = LayoutImage::read(layout);
        self.push_manifest(layout, repo, tag, &image.manifest, &image.manifest_bytes);
        image.manifest_digest
    }

    /// Pushes `bytes` (the manifest or index `manifest`) of `layout` as `repo:reference`,
    /// after what it refers to.
    fn push_manifest(
        &self,
        layout: &Path,
        repo: &str,
        reference: &str,
        manifest: &serde_json::Value,
        bytes: &[u8],
    ) {
        let default_type = if is_index(manifest) {
            for (_, child) in index_children(manifest) {
                let child_bytes = blob(layout, &child);
                let child_manifest =
                    serde_json::from_slice(&child_bytes).expect("parse a child manifest");
                self.push_manifest(
                    layout,
                    repo,
                    &child.to_string(),
                    &child_manifest,
                    &child_bytes,
                );
            }
            OCI_INDEX
        } else {
            for digest in manifest_blobs(manifest) {
                self.push_blob(repo, &digest, &blob(layout, &digest));
            }
            OCI_MANIFEST
        };
        let media_type = manifest["mediaType"].as_str().unwrap_or(default_type);
        let put = request(
            &self.addr,
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            bytes,
        )
        .expect("PUT manifest");
        assert_eq!(put.status, 201, "PUT manifest {repo}:{reference}: {put:?}");
    }

    /// Uploads one blob in a single request unless the repository has it.
    fn push_blob(&self, repo: &str, digest: &Digest, bytes: &[u8]) {
        let blob_path = format!("/v2/{repo}/blobs/{digest}");
        let head = request(&self.addr, "HEAD", &blob_path, &[], b"").expect("HEAD blob");
        if head.status == 200 {
            return;
        }
        let start = request(
            &self.addr,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            b"",
        )
        .expect("POST upload");
        assert_eq!(start.status, 202, "start upload to {repo}: {start:?}");
        let location = start.header("location").expect("upload Location");
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = request(
            &self.addr,
            "PUT",
            &format!("{location}{sep}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        )
        .expect("PUT blob");
        assert_eq!(put.status, 201, "upload {digest} to {repo}: {put:?}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
