//! Registries, CI-grade, through the CLI against the real `docker-registry` on loopback:
//! `rbuild login`/`logout` with htpasswd basic auth over TLS (a test CA given with `ca =` in
//! `RBUILD_CONFIG`), Docker's `config.json`, a credential helper (`docker-credential-test`, a
//! script on `PATH`), client certificates (`keypair`), and anonymous access.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rbuild_test_support::Security;
use support::*;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret pass";

/// A store, `config.toml` and Docker config directory of one test, around a registry.
struct World {
    env: Env,
    docker: PathBuf,
    /// Prepended to `PATH` (the credential helper lives there).
    bin: PathBuf,
    /// `HELPER_DIR` of the credential helper: what it stores and its log of calls.
    helper: PathBuf,
}

impl World {
    fn new(config_toml: &str) -> World {
        let env = Env::new();
        std::fs::write(&env.config, config_toml).expect("write config.toml");
        let docker = env.path("docker");
        let bin = env.path("bin");
        let helper = env.path("helper");
        for dir in [&bin, &helper] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        World {
            env,
            docker,
            bin,
            helper,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let path = std::env::var("PATH").unwrap_or_default();
        let mut c = self.env.cmd();
        c.args(args)
            .env("DOCKER_CONFIG", &self.docker)
            .env("HELPER_DIR", &self.helper)
            .env("PATH", format!("{}:{path}", s(&self.bin)));
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run rbuild")
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "rbuild {args:?} failed ({}):\n{}",
            out.status,
            stderr(&out)
        );
        out
    }

    /// Runs rbuild, which must fail saying `needle`; returns its stderr.
    fn fails(&self, args: &[&str], needle: &str) -> String {
        let out = self.run(args);
        let err = stderr(&out);
        assert!(!out.status.success(), "rbuild {args:?} succeeded");
        assert!(err.contains(needle), "rbuild {args:?}: {err}");
        err
    }

    /// `rbuild login SERVER -u USER --password-stdin` with `password` on stdin.
    fn login(&self, server: &str, password: &str) -> Output {
        let mut cmd = self.cmd(&["login", server, "-u", USER, "--password-stdin"]);
        output_with_stdin(&mut cmd, format!("{password}\n").as_bytes())
    }

    fn config_json(&self) -> serde_json::Value {
        json_file(&self.docker.join("config.json"))
    }

    /// Builds a one-file image `FROM scratch` named `name` into the store.
    fn build_image(&self, name: &str) {
        let ctx = self.env.context(
            "ctx",
            &[
                ("Dockerfile", "FROM scratch\nCOPY hello /hello\n"),
                ("hello", "hello from rbuild\n"),
            ],
        );
        self.ok(&["build", "-q", "-t", name, s(&ctx)]);
    }

    /// Pushes `name`, removes it from the store and pulls it back.
    fn push_rmi_pull(&self, name: &str) {
        self.ok(&["push", name]);
        self.ok(&["rmi", name]);
        self.ok(&["pull", "-q", name]);
    }
}

/// The base64 of `user:password`, as Docker writes `auths.<server>.auth`.
fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

fn secured(tls: bool, client_certs: bool) -> Security {
    Security {
        tls,
        client_certs,
        user: Some((USER.into(), PASSWORD.into())),
        ..Security::default()
    }
}

#[test]
fn login_over_tls_with_a_private_ca_then_push_pull_and_logout() {
    let Some(registry) = Registry::start_with(&secured(true, false)) else {
        return;
    };
    let addr = registry.addr.clone();
    let world = World::new(&registry.tls_config(true, false));
    let name = format!("{addr}/team/app:1");

    // A wrong password fails naming the registry and the status; nothing is written.
    let out = world.login(&addr, "wrong");
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&addr) && err.contains("401 Unauthorized"),
        "{err}"
    );
    assert!(err.contains("authentication required"), "{err}");
    assert!(!world.docker.join("config.json").exists());

    // Without credentials the registry refuses a push.
    world.build_image(&name);
    world.fails(&["push", &name], "401 Unauthorized");

    let out = world.login(&addr, PASSWORD);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Login Succeeded\n");
    let config = world.docker.join("config.json");
    let mode = std::fs::metadata(&config)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        world.config_json()["auths"][&addr]["auth"],
        basic_auth(USER, PASSWORD)
    );

    world.push_rmi_pull(&name);

    // Without the CA the registry's certificate is not trusted.
    let untrusted = World::new(&registry.tls_config(false, false));
    std::fs::create_dir_all(&untrusted.docker).expect("mkdir");
    std::fs::copy(&config, untrusted.docker.join("config.json")).expect("copy config.json");
    let err = untrusted.fails(&["pull", &name], "certificate");
    assert!(err.contains(&addr), "{err}");
    let out = untrusted.login(&addr, PASSWORD);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));

    // -p works too, with docker's warning.
    let out = world.run(&["login", &addr, "-u", USER, "-p", PASSWORD]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("Using --password via the CLI is insecure"));

    let out = world.ok(&["logout", &addr]);
    assert_eq!(
        stdout(&out),
        format!("Removing login credentials for {addr}\n")
    );
    assert!(world.config_json()["auths"].get(&addr).is_none());
    let out = world.ok(&["logout", &addr]);
    assert_eq!(stdout(&out), format!("Not logged in to {addr}\n"));
    world.ok(&["rmi", &name]);
    world.fails(&["pull", &name], "401 Unauthorized");
}

/// A credential helper that keeps one credential in `$HELPER_DIR/stored.json` and logs each
/// call (`action server`) to `$HELPER_DIR/log`.
const HELPER: &str = r#"#!/bin/sh
action="$1"
case "$action" in
  store)
    cat > "$HELPER_DIR/stored.json"
    echo "store" >> "$HELPER_DIR/log" ;;
  get)
    read -r server
    echo "get $server" >> "$HELPER_DIR/log"
    if [ -f "$HELPER_DIR/stored.json" ]; then cat "$HELPER_DIR/stored.json"
    else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase)
    read -r server
    echo "erase $server" >> "$HELPER_DIR/log"
    rm -f "$HELPER_DIR/stored.json" ;;
  *) exit 2 ;;
esac
"#;

#[test]
fn a_credential_helper_stores_gets_and_erases() {
    let Some(registry) = Registry::start_with(&secured(false, false)) else {
        return;
    };
    let addr = registry.addr.clone();
    let world = World::new("");
    let helper = world.bin.join("docker-credential-test");
    std::fs::write(&helper, HELPER).expect("write the helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::create_dir_all(&world.docker).expect("mkdir");
    std::fs::write(
        world.docker.join("config.json"),
        r#"{"credsStore":"test","currentContext":"kept"}"#,
    )
    .expect("write config.json");
    let helper_dir = &world.helper;
    let log = || std::fs::read_to_string(helper_dir.join("log")).unwrap_or_default();

    let out = world.login(&addr, PASSWORD);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("unencrypted"), "{}", stderr(&out));
    let stored = json_file(&helper_dir.join("stored.json"));
    assert_eq!(stored["ServerURL"], addr.as_str());
    assert_eq!(stored["Username"], USER);
    assert_eq!(stored["Secret"], PASSWORD);
    let config = world.config_json();
    assert_eq!(config["auths"][&addr], serde_json::json!({}));
    assert_eq!(config["currentContext"], "kept");
    assert_eq!(log(), "store\n");

    // Push and pull ask the helper.
    let name = format!("{addr}/helped/app:1");
    world.build_image(&name);
    world.push_rmi_pull(&name);
    assert!(log().contains(&format!("get {addr}\n")), "{}", log());

    world.ok(&["logout", &addr]);
    assert!(log().ends_with(&format!("erase {addr}\n")), "{}", log());
    assert!(!helper_dir.join("stored.json").exists());
    assert!(world.config_json()["auths"].get(&addr).is_none());
    // Logging out again: the helper's failure to erase is a warning, as with docker.
    std::fs::write(
        world.bin.join("docker-credential-test"),
        "#!/bin/sh\necho 'no such credential'\nexit 1\n",
    )
    .expect("replace the helper");
    let out = world.ok(&["logout", &addr]);
    assert_eq!(stdout(&out), format!("Not logged in to {addr}\n"));
    assert!(
        stderr(&out).contains("WARNING: could not erase credentials")
            && stderr(&out).contains("no such credential"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn client_certificates_come_from_keypair() {
    let security = Security {
        tls: true,
        client_certs: true,
        ..Security::default()
    };
    let Some(registry) = Registry::start_with(&security) else {
        return;
    };
    let name = format!("{}/mtls/app:1", registry.addr);
    let without = World::new(&registry.tls_config(true, false));
    without.build_image(&name);
    // The registry refuses the TLS handshake of a client without a certificate.
    without.fails(&["push", &name], &registry.addr);

    let with = World::new(&registry.tls_config(true, true));
    with.build_image(&name);
    with.push_rmi_pull(&name);
}

#[test]
fn a_bad_ca_path_is_an_error_naming_the_file() {
    let Some(registry) = Registry::start_with(&Security {
        tls: true,
        ..Security::default()
    }) else {
        return;
    };
    let missing = "/nonexistent/rbuild-test-ca.pem";
    let world = World::new(&format!(
        "[registry.\"{}\"]\nhttp = false\nca = [\"{missing}\"]\n",
        registry.addr
    ));
    let err = world.fails(&["pull", &format!("{}/x/y:1", registry.addr)], missing);
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn anonymous_access_needs_no_credentials() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let world = World::new("");
    assert!(!Path::new(&world.docker).exists());
    let name = format!("{}/open/app:1", registry.addr);
    world.build_image(&name);
    world.push_rmi_pull(&name);
    // Logging in to a registry that asks for nothing succeeds, as with docker.
    let out = world.login(&registry.addr, "anything");
    assert!(out.status.success(), "{}", stderr(&out));
    // Usage errors (exit 2): no user name, no password, both password flags.
    for (args, needle) in [
        (&["login", "--password-stdin"][..], "-u USER"),
        (&["login", "-u", USER][..], "--password-stdin"),
        (
            &["login", "-u", USER, "-p", "x", "--password-stdin"][..],
            "cannot be used with",
        ),
    ] {
        let err = world.fails(args, needle);
        assert_eq!(world.run(args).status.code(), Some(2), "{args:?}: {err}");
    }
}
