//! A token server for a [`crate::Registry`] in token mode: the `realm` of the registry's
//! `Bearer` challenges, as Docker Hub's, GHCR's or Harbor's auth service is. std
//! `TcpListener` threads, plain HTTP/1.1 on loopback, one request per connection.
//!
//! - `GET /token?service=..&scope=..[&scope=..][&account=..]`, with HTTP basic credentials
//!   or none, as docker/distribution's token specification says: each `scope` parameter is
//!   one `type:name:actions` (a value with spaces in it is refused, `400`, as
//!   cesanta/docker_auth refuses it). The user and password given in [`TokenAuth`] get what
//!   they ask of `pull` and `push`; an anonymous request gets `pull` only, or a `401` when
//!   [`TokenAuth::anonymous_pull`] is off; wrong credentials get a `401`.
//! - `POST /token` with OAuth2's refresh-token grant (`grant_type=refresh_token`,
//!   `refresh_token`, `service`, space-separated `scope`): the identity token of
//!   [`TokenAuth::refresh_token`] stands for the user.
//!
//! The answer is `{"token", "access_token", "expires_in": 300, "issued_at"}` with a JWT that
//! docker-registry 2.8's `auth.token` accepts: `RS256`, signed with the `openssl` CLI by a
//! key whose self-signed certificate is both the header's `x5c` and the registry's
//! `rootcertbundle`; claims `iss` ([`ISSUER`]), `sub`, `aud` ([`SERVICE`]), `exp`, `nbf`,
//! `iat`, `jti` and `access`. Every request is recorded ([`TokenServer::requests`]).

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::http::ServerRequest;
use crate::run::run_ok;
use crate::skip::require_tool;

/// The `service` of the registry's challenges and the tokens' audience.
pub const SERVICE: &str = "rbuild-test-registry";
/// The tokens' issuer, which the registry trusts.
pub const ISSUER: &str = "rbuild-test-token-server";
/// How long a token lives, in seconds.
pub const EXPIRES_IN: u64 = 300;

/// Who a token server serves.
#[derive(Clone, Debug)]
pub struct TokenAuth {
    /// The user name and password it accepts (HTTP basic on `GET /token`).
    pub user: (String, String),
    /// Anonymous requests get a pull-only token (else a `401`).
    pub anonymous_pull: bool,
    /// An identity token that the refresh-token grant (`POST /token`) accepts for the user.
    pub refresh_token: Option<String>,
}

/// One request the token server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub method: String,
    pub path: String,
    /// The query's parameters (`GET`) or the form's (`POST`), decoded, in order.
    pub params: Vec<(String, String)>,
    /// The user name of the request's basic credentials, right or wrong.
    pub basic_user: Option<String>,
    /// Whether it was a refresh-token grant.
    pub refresh: bool,
    /// The status answered.
    pub status: u16,
    /// The scopes granted (`repository:team/app:pull,push`), when a token was issued.
    pub granted: Vec<String>,
}

impl TokenRequest {
    /// The values of the `scope` parameters.
    pub fn scopes(&self) -> Vec<&str> {
        self.param_all("scope")
    }

    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.param_all(name).into_iter().next()
    }

    fn param_all(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether the request carried credentials (basic, or a refresh token).
    pub fn had_credentials(&self) -> bool {
        self.basic_user.is_some() || self.refresh
    }
}

struct Signer {
    openssl: PathBuf,
    key: PathBuf,
    /// The base64 (standard, padded) of the certificate's DER, for `x5c`.
    cert_der_b64: String,
}

struct Shared {
    auth: TokenAuth,
    signer: Signer,
    seen: Mutex<Vec<TokenRequest>>,
    next_jti: AtomicU64,
}

/// A running token server; it serves until the test process ends.
pub struct TokenServer {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// The signer's certificate (PEM): the registry's `rootcertbundle`.
    pub cert: PathBuf,
    shared: Arc<Shared>,
}

impl TokenServer {
    /// Makes a signing key and certificate in `dir` and starts serving; `None` after a skip
    /// without `openssl`.
    pub fn start(dir: &Path, auth: &TokenAuth) -> Option<TokenServer> {
        let openssl = require_tool("openssl")?;
        let key = dir.join("token-signer.key");
        let cert = dir.join("token-signer.pem");
        let run = |args: &[&std::ffi::OsStr]| {
            run_ok(
                Command::new(&openssl).args(args).current_dir(dir),
                &format!("openssl {args:?}"),
            )
        };
        run(&[
            "genpkey".as_ref(),
            "-algorithm".as_ref(),
            "RSA".as_ref(),
            "-pkeyopt".as_ref(),
            "rsa_keygen_bits:2048".as_ref(),
            "-out".as_ref(),
            key.as_os_str(),
        ]);
        run(&[
            "req".as_ref(),
            "-x509".as_ref(),
            "-new".as_ref(),
            "-key".as_ref(),
            key.as_os_str(),
            "-out".as_ref(),
            cert.as_os_str(),
            "-days".as_ref(),
            "2".as_ref(),
            "-subj".as_ref(),
            "/CN=rbuild test token signer".as_ref(),
        ]);
        let pem = std::fs::read_to_string(&cert).expect("read the signer's certificate");
        // The body of a PEM certificate is the standard base64 of its DER, as x5c wants it.
        let cert_der_b64: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr").to_string();
        let shared = Arc::new(Shared {
            auth: auth.clone(),
            signer: Signer {
                openssl,
                key,
                cert_der_b64,
            },
            seen: Mutex::new(Vec::new()),
            next_jti: AtomicU64::new(1),
        });
        let serving = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(conn) = stream else { continue };
                let shared = serving.clone();
                std::thread::spawn(move || handle(&shared, conn));
            }
        });
        Some(TokenServer { addr, cert, shared })
    }

    /// The `realm` of the registry's challenges.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The `auth` section of a docker-registry configuration that trusts this server.
    pub fn registry_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    \
             rootcertbundle: {}\n",
            self.realm(),
            self.cert.display()
        )
    }

    /// The requests answered so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        lock(&self.shared.seen).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One parsed request: method, path, query, lower-case headers, body.
struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn read(conn: &TcpStream) -> Option<Request> {
        conn.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let request = ServerRequest::read(&mut BufReader::new(conn))?;
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((&request.target, ""));
        Some(Request {
            path: path.to_string(),
            query: query.to_string(),
            method: request.method,
            headers: request.headers,
            body: request.body,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer: status, JSON body, extra headers.
struct Answer {
    status: u16,
    body: String,
    headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn error(status: u16, code: &str, message: &str) -> Answer {
        Answer {
            status,
            body: serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string(),
            headers: Vec::new(),
        }
    }
}

fn handle(shared: &Shared, mut conn: TcpStream) {
    let Some(req) = Request::read(&conn) else {
        return;
    };
    let mut seen = TokenRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        params: Vec::new(),
        basic_user: None,
        refresh: false,
        status: 0,
        granted: Vec::new(),
    };
    let answer = answer(shared, &req, &mut seen);
    seen.status = answer.status;
    lock(&shared.seen).push(seen);
    let reason = match answer.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for (k, v) in &answer.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(answer.body.as_bytes());
}

/// Who a request authenticates as: `Some(user)`, `None` for anonymous, or the answer
/// refusing it.
type Subject = Result<Option<String>, Answer>;

fn answer(shared: &Shared, req: &Request, seen: &mut TokenRequest) -> Answer {
    if req.path != "/token" {
        return Answer::error(404, "NOT_FOUND", "no such endpoint");
    }
    let auth = &shared.auth;
    let (subject, scopes): (Subject, Vec<String>) = match req.method.as_str() {
        "GET" => {
            seen.params = decode_form(&req.query);
            let basic = req.header("authorization").and_then(decode_basic);
            seen.basic_user = basic.as_ref().map(|(u, _)| u.clone());
            let subject = match basic {
                Some((u, p)) if (u.as_str(), p.as_str()) == (&auth.user.0, &auth.user.1) => {
                    Ok(Some(u))
                }
                Some(_) => Err(unauthorized("invalid user name or password")),
                None if auth.anonymous_pull => Ok(None),
                None => Err(unauthorized("authentication required")),
            };
            (
                subject,
                seen.scopes().iter().map(|s| s.to_string()).collect(),
            )
        }
        "POST" => {
            seen.params = decode_form(&String::from_utf8_lossy(&req.body));
            seen.refresh = seen.param("grant_type") == Some("refresh_token");
            let subject = match (seen.param("grant_type"), seen.param("refresh_token")) {
                (Some("refresh_token"), Some(t)) if auth.refresh_token.as_deref() == Some(t) => {
                    Ok(Some(auth.user.0.clone()))
                }
                (Some("refresh_token"), _) => Err(oauth_error("invalid_grant", "unknown token")),
                _ => Err(oauth_error(
                    "unsupported_grant_type",
                    "only refresh_token is supported",
                )),
            };
            // OAuth2: one parameter, scopes separated by spaces.
            let scopes = seen
                .param("scope")
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default();
            (subject, scopes)
        }
        _ => return Answer::error(405, "UNSUPPORTED", "GET or POST"),
    };
    if seen.param("service") != Some(SERVICE) {
        return Answer::error(400, "INVALID_SERVICE", "unknown or missing service");
    }
    let subject = match subject {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let mut access = Vec::new();
    for scope in &scopes {
        let Some(granted) = grant(scope, subject.is_some()) else {
            return Answer::error(400, "INVALID_SCOPE", &format!("invalid scope: {scope:?}"));
        };
        if let Some((name, actions)) = granted {
            seen.granted
                .push(format!("repository:{name}:{}", actions.join(",")));
            access.push(serde_json::json!({
                "type": "repository", "name": name, "actions": actions,
            }));
        }
    }
    let token = sign_token(shared, subject.as_deref().unwrap_or(""), access);
    let now = unix_now();
    Answer {
        status: 200,
        body: serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": EXPIRES_IN,
            "issued_at": rfc3339(now),
        })
        .to_string(),
        headers: Vec::new(),
    }
}

fn unauthorized(message: &str) -> Answer {
    let mut a = Answer::error(401, "UNAUTHORIZED", message);
    a.headers.push((
        "WWW-Authenticate",
        "Basic realm=\"rbuild-test-token\"".to_string(),
    ));
    a
}

fn oauth_error(error: &str, description: &str) -> Answer {
    Answer {
        status: 400,
        body: serde_json::json!({"error": error, "error_description": description}).to_string(),
        headers: Vec::new(),
    }
}

/// What one scope `type:name:actions` grants: `None` when it is malformed (spaces in it, too
/// few parts), `Some(None)` for a type other than `repository` (nothing), else the
/// repository and the actions asked of `pull` and `push` (`pull` only when anonymous).
#[allow(clippy::type_complexity)]
fn grant(scope: &str, authenticated: bool) -> Option<Option<(String, Vec<String>)>> {
    if scope.chars().any(char::is_whitespace) {
        return None;
    }
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if name.is_empty() {
        return None;
    }
    if kind != "repository" {
        return Some(None);
    }
    let allowed: &[&str] = if authenticated {
        &["pull", "push"]
    } else {
        &["pull"]
    };
    let actions = actions
        .split(',')
        .filter(|a| allowed.contains(a))
        .map(str::to_string)
        .collect();
    Some(Some((name.to_string(), actions)))
}

/// A JWT for `subject` with these `access` entries, signed `RS256` by the server's key.
fn sign_token(shared: &Shared, subject: &str, access: Vec<serde_json::Value>) -> String {
    let now = unix_now();
    let jti = shared.next_jti.fetch_add(1, Ordering::Relaxed);
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "RS256",
        "x5c": [shared.signer.cert_der_b64],
    });
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + EXPIRES_IN,
        "nbf": now,
        "iat": now,
        "jti": format!("rbuild-test-{jti}-{now}"),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature = openssl_sign(&shared.signer, signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(&signature))
}

/// `openssl dgst -sha256 -sign key`: an RSA PKCS#1 v1.5 signature of SHA-256(`data`).
fn openssl_sign(signer: &Signer, data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(&signer.openssl)
        .arg("dgst")
        .arg("-sha256")
        .arg("-sign")
        .arg(&signer.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl dgst");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write to openssl");
    let out = child.wait_with_output().expect("openssl dgst");
    assert!(
        out.status.success(),
        "openssl dgst -sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The user name and password of `Basic <base64>`.
fn decode_basic(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// `a=1&b=x%20y+z` → `[(a, 1), (b, x y z)]`.
fn decode_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// `2026-12-07T08:37:36Z` for seconds since the epoch (the civil calendar of Howard
/// Hinnant's `civil_from_days`).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_forms() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_632_656), "2026-12-07T08:37:36Z");
        assert_eq!(rfc3339(951_825_600), "2000-02-29T12:00:00Z");
        assert_eq!(
            decode_form("scope=repository%3Ateam%2Fapp%3Apull%2Cpush&x=a+b&bad=%zz&end=%4"),
            vec![
                ("scope".into(), "repository:team/app:pull,push".into()),
                ("x".into(), "a b".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
            ]
        );
    }

    #[test]
    fn grants_pull_and_push_to_users_and_pull_to_anonymous() {
        let g = |s, a| grant(s, a);
        assert_eq!(
            g("repository:team/app:pull,push,delete", true),
            Some(Some((
                "team/app".into(),
                vec!["pull".into(), "push".into()]
            )))
        );
        assert_eq!(
            g("repository:127.0.0.1:5000/x:pull,push", false),
            Some(Some(("127.0.0.1:5000/x".into(), vec!["pull".into()])))
        );
        assert_eq!(g("registry:catalog:*", true), Some(None));
        assert_eq!(g("repository:a:pull repository:b:pull", true), None);
        assert_eq!(g("repository", true), None);
    }
}
