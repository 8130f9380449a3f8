//! Client tests: against a real registry of the test's own (Debian's docker-registry on a free
//! loopback port, with the offline busybox image) and against the in-process fake server for
//! auth flows, fallback and corrupt content.

use rbuild_types::{Digest, ImageRef, Platform};

use super::auth::{Credential, Credentials, DockerCredentials};
use super::testutil::{FakeServer, Reply};
use super::{Client, RegistryConfig, RegistryError, CONFIG_LIMIT};
use crate::manifest::OCI_MANIFEST;

fn amd64() -> Platform {
    "linux/amd64".parse().expect("platform")
}

fn no_creds() -> DockerCredentials {
    DockerCredentials::default()
}

/// A registry with busybox as `library/busybox` and `busybox` (tag `latest`); returns from
/// the test after a skip when docker-registry or busybox-static is missing.
macro_rules! require_registry {
    () => {
        match rbuild_test_support::Registry::with_busybox() {
            Some(registry) => registry,
            None => return,
        }
    };
}

#[test]
fn resolves_busybox_through_a_docker_hub_mirror() {
    let registry = require_registry!();
    let cfg = RegistryConfig::from_toml_str(&registry.mirror_config()).unwrap();
    let client = Client::new(cfg).with_credentials(no_creds());
    let image = ImageRef::parse("busybox").unwrap();
    let pulled = client.resolve(&image, &Platform::host()).unwrap();
    assert_eq!(pulled.registry_host, registry.addr);
    assert_eq!(pulled.manifest.digest, Digest::of(&pulled.manifest.bytes));
    assert!(!pulled.image.layers.is_empty());
    let config = client
        .fetch_blob_bytes(&image, &pulled.image.config.digest, CONFIG_LIMIT)
        .unwrap();
    assert_eq!(Digest::of(&config), pulled.image.config.digest);
    let layer = &pulled.image.layers[0];
    let mut sink = Vec::new();
    let n = client
        .fetch_blob(&image, &layer.digest, Some(layer.size), &mut sink)
        .unwrap();
    assert_eq!(n, layer.size);
    assert_eq!(Digest::of(&sink), layer.digest);
}

#[test]
fn resolves_a_loopback_registry_directly_over_http_by_default() {
    let registry = require_registry!();
    let client = Client::new(RegistryConfig::default()).with_credentials(no_creds());
    let image = ImageRef::parse(&format!("{}/busybox:latest", registry.addr)).unwrap();
    let pulled = client.resolve(&image, &amd64()).unwrap();
    assert_eq!(pulled.registry_host, registry.addr);
    assert_eq!(pulled.image.layers.len(), 1);
    // Resolving by the digest gives the same manifest.
    let by_digest = ImageRef::parse(&format!(
        "{}/busybox@{}",
        registry.addr, pulled.manifest.digest
    ))
    .unwrap();
    let again = client.resolve(&by_digest, &amd64()).unwrap();
    assert_eq!(again.manifest.digest, pulled.manifest.digest);
}

#[test]
fn not_found_names_registry_repository_and_status() {
    let registry = require_registry!();
    let client = Client::new(RegistryConfig::default()).with_credentials(no_creds());
    let image = ImageRef::parse(&format!("{}/library/nope", registry.addr)).unwrap();
    let err = client.resolve(&image, &amd64()).unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}/library/nope: manifest latest: 404 Not Found: \
             manifest unknown (MANIFEST_UNKNOWN)",
            registry.addr
        )
    );
}

#[test]
fn dead_and_missing_mirrors_fall_back_to_the_next_endpoint() {
    let registry = require_registry!();
    // A mirror that answers 404 for everything.
    let empty = FakeServer::start(8, |_, _| Reply::new(404, "{}"));
    let cfg = RegistryConfig::from_toml_str(&format!(
        "[registry.\"{}\"]\nmirrors = [\"127.0.0.1:1\", \"http://{}\"]\n",
        registry.addr,
        empty.host()
    ))
    .unwrap();
    let client = Client::new(cfg).with_credentials(no_creds());
    let image = ImageRef::parse(&format!("{}/library/busybox", registry.addr)).unwrap();
    let pulled = client.resolve(&image, &amd64()).unwrap();
    assert_eq!(pulled.registry_host, registry.addr);
    let asked: Vec<String> = empty.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(asked, vec!["/v2/library/busybox/manifests/latest"]);
}

fn manifest_body() -> (Vec<u8>, Vec<u8>) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[]}}"#,
        Digest::of(&config),
        config.len()
    );
    (manifest.into_bytes(), config)
}

#[test]
fn bearer_token_flow() {
    let (manifest, config) = manifest_body();
    let config_digest = Digest::of(&config);
    let server = FakeServer::start(10, move |req, addr| {
        if req.target.starts_with("/token?") {
            return Reply::new(200, r#"{"token":"tok123"}"#);
        }
        if req.header("authorization") != Some("Bearer tok123") {
            return Reply::new(401, "{}").header(
                "WWW-Authenticate",
                &format!(
                    r#"Bearer realm="http://{addr}/token",service="fake",scope="repository:team/app:pull""#
                ),
            );
        }
        if req.target == "/v2/team/app/manifests/v1" {
            Reply::new(200, manifest.clone()).header("Content-Type", OCI_MANIFEST)
        } else if req.target == format!("/v2/team/app/blobs/{config_digest}") {
            Reply::new(200, config.clone())
        } else {
            Reply::new(404, "{}")
        }
    });
    let client = Client::new(RegistryConfig::default()).with_credentials(no_creds());
    let image = ImageRef::parse(&format!("{}/team/app:v1", server.host())).unwrap();
    let pulled = client.resolve(&image, &amd64()).unwrap();
    assert_eq!(pulled.image.config.digest, config_digest);
    client
        .fetch_blob_bytes(&image, &config_digest, CONFIG_LIMIT)
        .unwrap();
    let reqs = server.requests();
    let targets: Vec<&str> = reqs.iter().map(|r| r.target.as_str()).collect();
    // 401, token, manifest with token, then the blob straight away with the cached token.
    assert_eq!(targets.len(), 4, "{targets:?}");
    assert!(targets[1].contains("service=fake"), "{}", targets[1]);
    assert!(
        targets[1].contains("scope=repository%3Ateam%2Fapp%3Apull"),
        "{}",
        targets[1]
    );
    assert!(reqs.iter().all(|r| r.method == "GET" && r.body.is_empty()));
    assert!(reqs[1].header("authorization").is_none());
    assert_eq!(reqs[3].header("authorization"), Some("Bearer tok123"));
}

#[test]
fn each_scope_of_a_challenge_goes_to_the_token_realm_as_a_parameter_of_its_own() {
    let (manifest, _) = manifest_body();
    let server = FakeServer::start(10, move |req, addr| {
        if req.target.starts_with("/token?") {
            return Reply::new(200, r#"{"token":"tok2"}"#);
        }
        if req.header("authorization") == Some("Bearer tok2") {
            return Reply::new(200, manifest.clone()).header("Content-Type", OCI_MANIFEST);
        }
        // As docker-registry challenges a cross-repository mount: two scopes, one string.
        Reply::new(401, "{}").header(
            "WWW-Authenticate",
            &format!(
                r#"Bearer realm="http://{addr}/token",service="fake",scope="repository:team/app:pull repository:team/base:pull""#
            ),
        )
    });
    let client = Client::new(RegistryConfig::default()).with_credentials(no_creds());
    let image = ImageRef::parse(&format!("{}/team/app:v1", server.host())).unwrap();
    client.resolve(&image, &amd64()).unwrap();
    let reqs = server.requests();
    let token = reqs
        .iter()
        .find(|r| r.target.starts_with("/token?"))
        .expect("token request");
    assert_eq!(
        token.target,
        "/token?service=fake&scope=repository%3Ateam%2Fapp%3Apull\
         &scope=repository%3Ateam%2Fbase%3Apull"
    );
}

#[test]
fn token_request_uses_basic_credentials_and_basic_challenge_is_answered() {
    let (manifest, _) = manifest_body();
    let server = FakeServer::start(10, move |req, _| {
        if req.header("authorization") == Some("Basic dTpw") {
            Reply::new(200, manifest.clone()).header("Content-Type", OCI_MANIFEST)
        } else {
            Reply::new(401, "{}").header("WWW-Authenticate", r#"Basic realm="fake""#)
        }
    });
    let image = ImageRef::parse(&format!("{}/app:v1", server.host())).unwrap();
    // Without credentials a Basic challenge is a 401 error.
    let anonymous = Client::new(RegistryConfig::default()).with_credentials(no_creds());
    let err = anonymous.resolve(&image, &amd64()).unwrap_err();
    assert!(err.to_string().ends_with("401 Unauthorized"), "{err}");
    let mut creds = DockerCredentials::default();
    creds.insert(
        &server.host(),
        Credentials {
            username: "u".into(),
            password: "p".into(),
        },
    );
    let client = Client::new(RegistryConfig::default()).with_credentials(creds);
    client.resolve(&image, &amd64()).unwrap();
}

#[test]
fn identity_tokens_are_exchanged_through_the_refresh_token_grant() {
    let (manifest, _) = manifest_body();
    let server = FakeServer::start(10, move |req, addr| {
        if req.target == "/token" {
            let form = String::from_utf8_lossy(&req.body);
            return if req.method == "POST"
                && form.contains("grant_type=refresh_token")
                && form.contains("refresh_token=refresh-1")
                && form.contains("client_id=rbuild")
                && form.contains("service=fake")
            {
                Reply::new(200, r#"{"access_token":"acc-1","expires_in":300}"#)
            } else {
                Reply::new(
                    400,
                    r#"{"error":"invalid_grant","error_description":"unknown refresh token"}"#,
                )
            };
        }
        if req.header("authorization") == Some("Bearer acc-1") {
            return Reply::new(200, manifest.clone()).header("Content-Type", OCI_MANIFEST);
        }
        Reply::new(401, "{}").header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="http://{addr}/token",service="fake""#),
        )
    });
    let image = ImageRef::parse(&format!("{}/team/app:v1", server.host())).unwrap();
    let with_token = |token: &str| {
        let mut creds = DockerCredentials::default();
        creds.insert_credential(&server.host(), Credential::IdentityToken(token.into()));
        Client::new(RegistryConfig::default()).with_credentials(creds)
    };
    with_token("refresh-1").resolve(&image, &amd64()).unwrap();
    let reqs = server.requests();
    let token_req = reqs
        .iter()
        .find(|r| r.target == "/token")
        .expect("token request");
    let form = String::from_utf8_lossy(&token_req.body);
    assert!(
        form.contains("scope=repository%3Ateam%2Fapp%3Apull"),
        "{form}"
    );
    // A refused grant shows what the token endpoint said.
    let err = with_token("stale").resolve(&image, &amd64()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&server.host())
            && msg.contains("400 Bad Request")
            && msg.contains("unknown refresh token (invalid_grant)"),
        "{msg}"
    );
}

#[test]
fn failed_requests_show_the_registry_errors() {
    let server = FakeServer::start(4, |_, _| {
        Reply::new(
            403,
            r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied","detail":null}]}"#,
        )
    });
    let client = Client::new(RegistryConfig::default()).with_credentials(no_creds());
    let image = ImageRef::parse(&format!("{}/team/app:v1", server.host())).unwrap();
    let err = client.resolve(&image, &amd64()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}/team/app: manifest v1: 403 Forbidden: \
             requested access to the resource is denied (DENIED)",
            server.host()
        )
    );
}

#[test]
fn blob_with_wrong_content_is_rejected() {
    let claimed = Digest::of(b"the real content");
    let server = FakeServer::start(4, |_, _| Reply::new(200, "tampered content"));
    let client = Client::new(RegistryConfig::default()).with_credentials(no_creds());
    let image = ImageRef::parse(&format!("{}/app:v1", server.host())).unwrap();
    let mut sink = Vec::new();
    let err = client
        .fetch_blob(&image, &claimed, None, &mut sink)
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { expected, .. } if expected == claimed),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&server.host()) && msg.contains("/app: blob sha256:"),
        "{msg}"
    );
}

#[test]
fn manifest_fetched_by_digest_must_match_it() {
    let (manifest, _) = manifest_body();
    let server = FakeServer::start(4, move |_, _| {
        Reply::new(200, manifest.clone()).header("Content-Type", OCI_MANIFEST)
    });
    let client = Client::new(RegistryConfig::default()).with_credentials(no_creds());
    let wrong = Digest::of(b"something else");
    let image = ImageRef::parse(&format!("{}/app@{wrong}", server.host())).unwrap();
    let err = client.resolve(&image, &amd64()).unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn index_without_the_platform_lists_what_it_has() {
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}}]}}"#,
        Digest::of(b"x")
    );
    let server = FakeServer::start(4, move |_, _| {
        Reply::new(200, index.clone())
            .header("Content-Type", "application/vnd.oci.image.index.v1+json")
    });
    let client = Client::new(RegistryConfig::default()).with_credentials(no_creds());
    let image = ImageRef::parse(&format!("{}/app:v1", server.host())).unwrap();
    let err = client.resolve(&image, &amd64()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("linux/amd64") && msg.contains("linux/arm/v7"),
        "{msg}"
    );
}

#[test]
fn pushes_blobs_once_and_a_manifest_that_resolves_back() {
    let Some(registry) = rbuild_test_support::Registry::start() else {
        return;
    };
    let client = Client::new(RegistryConfig::default()).with_credentials(no_creds());
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let image = ImageRef::parse(&format!("{}/rbuild-test/push:v1", registry.addr)).unwrap();
    let layer = format!("layer content {unique}").into_bytes();
    let layer_digest = Digest::of(&layer);
    assert!(!client.blob_exists(&image, &layer_digest).unwrap());
    let owned = layer.clone();
    let open = move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(owned.clone())))
    };
    assert!(client
        .push_blob(&image, &layer_digest, layer.len() as u64, &open)
        .unwrap());
    assert!(client.blob_exists(&image, &layer_digest).unwrap());
    // HEAD-before-upload: the second push uploads nothing.
    assert!(!client
        .push_blob(&image, &layer_digest, layer.len() as u64, &open)
        .unwrap());
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}},"config":{{"Labels":{{"run":"{unique}"}}}}}}"#
    )
    .into_bytes();
    let config_digest = client.push_blob_bytes(&image, &config).unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    )
    .into_bytes();
    let pushed = client
        .push_manifest(&image, "v1", OCI_MANIFEST, &manifest)
        .unwrap();
    let back = client.resolve(&image, &amd64()).unwrap();
    assert_eq!(back.manifest.digest, pushed);
    assert_eq!(back.image.config.digest, config_digest);
}

#[test]
fn push_follows_a_relative_upload_location_and_reports_rejection() {
    let server = FakeServer::start(10, |req, _| {
        match (req.method.as_str(), req.target.as_str()) {
            ("HEAD", _) => Reply::new(404, ""),
            ("POST", "/v2/app/blobs/uploads/") => {
                Reply::new(202, "").header("Location", "/v2/app/blobs/uploads/abc?state=x")
            }
            // This registry takes no chunks: the blob goes up in one PUT.
            ("PATCH", _) => Reply::new(405, ""),
            ("PUT", t) if t.starts_with("/v2/app/blobs/uploads/abc?state=x&digest=sha256%3A") => {
                if req.body == b"data" {
                    Reply::new(201, "")
                } else {
                    Reply::new(400, "")
                }
            }
            ("PUT", "/v2/app/manifests/v1") => Reply::new(400, "{}"),
            _ => Reply::new(404, ""),
        }
    });
    let client = Client::new(RegistryConfig::default()).with_credentials(no_creds());
    let image = ImageRef::parse(&format!("{}/app:v1", server.host())).unwrap();
    client.push_blob_bytes(&image, b"data").unwrap();
    let err = client
        .push_manifest(&image, "v1", OCI_MANIFEST, b"{}")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}/app: manifest v1: 400 Bad Request", server.host())
    );
}

#[test]
fn uploads_in_chunks_following_each_location() {
    let server = FakeServer::start(10, |req, _| {
        let range = req.header("content-range").unwrap_or_default().to_string();
        match (req.method.as_str(), req.target.as_str()) {
            ("HEAD", _) => Reply::new(404, ""),
            ("POST", "/v2/app/blobs/uploads/") => {
                Reply::new(202, "").header("Location", "/v2/app/blobs/uploads/s?n=0")
            }
            ("PATCH", "/v2/app/blobs/uploads/s?n=0") if range == "0-2" && req.body == b"hel" => {
                Reply::new(202, "").header("Location", "/v2/app/blobs/uploads/s?n=1")
            }
            ("PATCH", "/v2/app/blobs/uploads/s?n=1") if range == "3-4" && req.body == b"lo" => {
                Reply::new(202, "").header("Location", "/v2/app/blobs/uploads/s?n=2")
            }
            ("PUT", t)
                if t.starts_with("/v2/app/blobs/uploads/s?n=2&digest=") && req.body.is_empty() =>
            {
                Reply::new(201, "")
            }
            _ => Reply::new(400, ""),
        }
    });
    let client = Client::new(RegistryConfig::default())
        .with_credentials(no_creds())
        .with_upload_chunk(3);
    let image = ImageRef::parse(&format!("{}/app:v1", server.host())).unwrap();
    client.push_blob_bytes(&image, b"hello").unwrap();
    let methods: Vec<String> = server.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["HEAD", "POST", "PATCH", "PATCH", "PUT"]);
}
