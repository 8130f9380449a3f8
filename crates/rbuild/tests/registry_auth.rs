//! Registries, CI-grade, through the CLI against the real `docker-registry` on loopback:
//! `rbuild login`/`logout` with htpasswd basic auth over TLS (a test CA given with `ca =` in
//! `RBUILD_CONFIG`), Docker's `config.json`, a credential helper (`docker-credential-test`, a
//! script on `PATH`), client certificates (`keypair`), anonymous access, and the bearer
//! token flow against a token server of the test's own (`rbuild_test_support::token_server`:
//! JWTs the registry verifies, basic credentials or an identity token for them, anonymous
//! pull-only tokens).

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rbuild_test_support::token_server::{TokenRequest, SERVICE};
use rbuild_test_support::{Security, TokenAuth};
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

/// The identity token (OAuth2 refresh token) the token server accepts for [`USER`].
const REFRESH_TOKEN: &str = "refresh-0123";

/// A registry asking for bearer tokens from a token server of its own that knows [`USER`]
/// (and [`REFRESH_TOKEN`]); anonymous requests get pull-only tokens when `anonymous_pull`.
fn token_registry(anonymous_pull: bool) -> Option<Registry> {
    Registry::start_with(&Security {
        token: Some(TokenAuth {
            user: (USER.into(), PASSWORD.into()),
            anonymous_pull,
            refresh_token: Some(REFRESH_TOKEN.into()),
        }),
        ..Security::default()
    })
}

/// What the token server of `registry` was asked since `from` (an index of its log).
fn token_requests(registry: &Registry, from: usize) -> Vec<TokenRequest> {
    let all = registry.token_server().expect("a token server").requests();
    all[from.min(all.len())..].to_vec()
}

#[test]
fn the_bearer_token_flow_against_a_token_server() {
    let Some(registry) = token_registry(true) else {
        return;
    };
    let addr = registry.addr.clone();
    let realm = registry.token_server().expect("token server").realm();
    let world = World::new("");

    // A wrong password: the token server refuses it, and the error names the registry, the
    // realm, the status and what the token server said. Nothing is written.
    let out = world.login(&addr, "wrong");
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&addr) && err.contains(&realm) && err.contains("401 Unauthorized"),
        "{err}"
    );
    assert!(err.contains("invalid user name or password"), "{err}");
    assert!(!world.docker.join("config.json").exists());

    // The right one: a token for no scope, asked with basic credentials for the service of
    // the registry's challenge.
    let seen = token_requests(&registry, 0).len();
    let out = world.login(&addr, PASSWORD);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Login Succeeded\n");
    let asked = token_requests(&registry, seen);
    assert!(
        asked.iter().any(|r| r.method == "GET"
            && r.basic_user.as_deref() == Some(USER)
            && r.param("service") == Some(SERVICE)
            && r.status == 200),
        "{asked:#?}"
    );

    // build --push: the blobs and the manifest go up with a token for pull and push.
    let name = format!("{addr}/team/app:1");
    let ctx = world.env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM scratch\nCOPY hello /hello\n"),
            ("hello", "hello through tokens\n"),
        ],
    );
    let seen = token_requests(&registry, 0).len();
    world.ok(&["build", "-q", "--push", "-t", &name, s(&ctx)]);
    let asked = token_requests(&registry, seen);
    assert!(
        asked.iter().any(|r| r.had_credentials()
            && r.scopes().contains(&"repository:team/app:pull,push")
            && r.granted
                .iter()
                .any(|g| g == "repository:team/app:pull,push")),
        "{asked:#?}"
    );

    // Read back by another client with the same credentials.
    if let Some(skopeo) = require_tool("skopeo") {
        let out = Command::new(skopeo)
            .args(["inspect", "--tls-verify=false", "--creds"])
            .arg(format!("{USER}:{PASSWORD}"))
            .arg(format!("docker://{name}"))
            .output()
            .expect("run skopeo");
        assert!(out.status.success(), "skopeo inspect: {}", stderr(&out));
        let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(inspected["Layers"].as_array().map(Vec::len), Some(1));
    }

    // Pushing the image under another name mounts its blobs from team/app: the registry's
    // challenge then names two repositories.
    let copy = format!("{addr}/team/copy:1");
    world.ok(&["tag", &name, &copy]);
    let seen = token_requests(&registry, 0).len();
    world.ok(&["push", &copy]);
    let asked = token_requests(&registry, seen);
    assert!(
        asked.iter().any(|r| r.status == 200
            && r.scopes().contains(&"repository:team/app:pull")
            && r.granted
                .iter()
                .any(|g| g == "repository:team/copy:pull,push")),
        "{asked:#?}"
    );

    // Anonymous: a fresh store without credentials pulls with a pull-only token...
    let anonymous = World::new("");
    let seen = token_requests(&registry, 0).len();
    anonymous.ok(&["pull", "-q", &name]);
    let asked = token_requests(&registry, seen);
    assert!(
        asked
            .iter()
            .all(|r| !r.had_credentials() && r.status == 200),
        "{asked:#?}"
    );
    assert!(
        asked
            .iter()
            .any(|r| r.granted.iter().any(|g| g == "repository:team/app:pull")),
        "{asked:#?}"
    );
    // ... and cannot push: the registry's 401 and its message.
    let anon_name = format!("{addr}/team/anon:1");
    anonymous.build_image(&anon_name);
    let err = anonymous.fails(&["push", &anon_name], "401 Unauthorized");
    assert!(
        err.contains(&addr) && err.contains("authentication required"),
        "{err}"
    );

    // An identity token in config.json is exchanged through the refresh-token grant.
    let identity = World::new("");
    std::fs::create_dir_all(&identity.docker).expect("mkdir");
    std::fs::write(
        identity.docker.join("config.json"),
        serde_json::json!({"auths": {&addr: {"identitytoken": REFRESH_TOKEN}}}).to_string(),
    )
    .expect("write config.json");
    let seen = token_requests(&registry, 0).len();
    let pushed = format!("{addr}/team/identity:1");
    identity.build_image(&pushed);
    identity.push_rmi_pull(&pushed);
    let asked = token_requests(&registry, seen);
    assert!(
        asked.iter().any(|r| r.method == "POST"
            && r.refresh
            && r.status == 200
            && r.granted
                .iter()
                .any(|g| g == "repository:team/identity:pull,push")),
        "{asked:#?}"
    );
}

#[test]
fn a_token_server_that_refuses_anonymous_requests() {
    let Some(registry) = token_registry(false) else {
        return;
    };
    let addr = registry.addr.clone();
    let realm = registry.token_server().expect("token server").realm();
    let world = World::new("");
    let err = world.fails(&["pull", &format!("{addr}/team/app:1")], "401 Unauthorized");
    assert!(
        err.contains(&addr) && err.contains(&realm) && err.contains("authentication required"),
        "{err}"
    );
    // A stale identity token: the token server's OAuth2 error is shown.
    std::fs::create_dir_all(&world.docker).expect("mkdir");
    std::fs::write(
        world.docker.join("config.json"),
        serde_json::json!({"auths": {&addr: {"identitytoken": "stale"}}}).to_string(),
    )
    .expect("write config.json");
    let err = world.fails(&["pull", &format!("{addr}/team/app:1")], "invalid_grant");
    assert!(err.contains(&realm) && err.contains("400"), "{err}");
}
