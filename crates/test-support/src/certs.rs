//! Certificates for TLS tests, made with the `openssl` CLI in a directory of the test's own:
//! a self-signed CA, a server certificate it signs for `127.0.0.1` and `localhost`, and a
//! client certificate it signs (for registries that ask for one). EC P-256 keys, valid for
//! two days: quick to make, and what rustls/webpki accept (v3 extensions, a CA that says so).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::run_ok;
use crate::skip::require_tool;

/// The files of one test CA (all PEM).
#[derive(Clone, Debug)]
pub struct TestCerts {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestCerts {
    /// Makes a CA and its certificates in `dir`; `None` after a skip without `openssl`.
    pub fn generate(dir: &Path) -> Option<TestCerts> {
        let openssl = require_tool("openssl")?;
        let p = |name: &str| dir.join(name);
        let run = |args: &[&str]| {
            run_ok(
                Command::new(&openssl).args(args).current_dir(dir),
                &format!("openssl {args:?}"),
            )
        };
        let new_key = |name: &str| {
            run(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                name,
            ])
        };
        new_key("ca.key");
        run(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=rbuild test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        let sign = |name: &str, subject: &str, ext: &str| {
            new_key(&format!("{name}.key"));
            run(&[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                subject,
            ]);
            std::fs::write(p(&format!("{name}.ext")), ext).expect("write extensions");
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.pem"),
            ]);
        };
        sign(
            "server",
            "/CN=127.0.0.1",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        );
        sign(
            "client",
            "/CN=rbuild test client",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        );
        Some(TestCerts {
            ca: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
            client_cert: p("client.pem"),
            client_key: p("client.key"),
        })
    }
}
