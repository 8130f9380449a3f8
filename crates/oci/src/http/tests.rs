//! The HTTP half of the `RemoteSource` port against canned answers of a loopback server.

use std::io::Read;

use rbuild_ports::{HttpError, HttpFetch, HttpSource, Validators};
use rbuild_test_support::http::serve_raw;

use super::HttpRemote;
use crate::registry::RegistryConfig;

fn remote() -> HttpRemote {
    HttpRemote::new(RegistryConfig::default())
}

#[test]
fn a_success_hands_out_body_length_and_validators() {
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"v1\"\r\n\
                  Last-Modified: Thu, 02 Jan 2020 03:04:05 GMT\r\nConnection: close\r\n\r\nhello";
    let (addr, requests) = serve_raw(answer.as_bytes().to_vec(), 1);
    let url = format!("http://{addr}/f");
    let HttpFetch::Body(mut got) = remote().http_get(&url, None).expect("get") else {
        panic!("a 200 is a body");
    };
    assert_eq!(got.content_length, Some(5));
    assert_eq!(got.etag.as_deref(), Some("\"v1\""));
    assert_eq!(
        got.last_modified.as_deref(),
        Some("Thu, 02 Jan 2020 03:04:05 GMT")
    );
    let mut body = String::new();
    got.body.read_to_string(&mut body).expect("read");
    assert_eq!(body, "hello");
    let request = requests.recv().expect("request").to_ascii_lowercase();
    assert!(request.starts_with("get /f "), "{request}");
    assert!(request.contains("user-agent: rbuild/"), "{request}");
    assert!(!request.contains("if-none-match"), "{request}");
}

#[test]
fn not_modified_only_answers_validators() {
    let answer = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (addr, requests) = serve_raw(answer.to_vec(), 2);
    let url = format!("http://{addr}/f");
    let validators = Validators {
        etag: Some("\"v1\"".into()),
        last_modified: Some("Thu, 02 Jan 2020 03:04:05 GMT".into()),
    };
    let got = remote().http_get(&url, Some(&validators)).expect("get");
    assert!(matches!(got, HttpFetch::NotModified), "{got:?}");
    let request = requests.recv().expect("request").to_ascii_lowercase();
    assert!(request.contains("if-none-match: \"v1\""), "{request}");
    assert!(
        request.contains("if-modified-since: thu, 02 jan 2020 03:04:05 gmt"),
        "{request}"
    );
    // Unasked, a 304 is just a status that is not a success.
    let err = remote()
        .http_get(&url, None)
        .expect_err("304 without validators");
    assert!(matches!(err, HttpError::Status { .. }), "{err:?}");
}

#[test]
fn failures_name_the_url_and_the_status() {
    let answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno";
    let (addr, _requests) = serve_raw(answer.to_vec(), 1);
    let url = format!("http://{addr}/missing");
    let err = remote().http_get(&url, None).expect_err("404");
    assert_eq!(
        err.to_string(),
        format!("fetching {url}: server answered 404 Not Found")
    );
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/x");
    let err = remote().http_get(&url, None).expect_err("refused");
    assert!(matches!(err, HttpError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[test]
fn hosts_configured_insecure_skip_verification() {
    let config = RegistryConfig::from_toml_str(
        "[registry.\"self-signed.example:8443\"]\ninsecure = true\n\
         [registry.\"plain.example\"]\ninsecure = true\n",
    )
    .expect("config");
    let remote = HttpRemote::new(config);
    assert!(remote.insecure("https://self-signed.example:8443/f.tar"));
    assert!(remote.insecure("https://plain.example/f.tar"));
    assert!(!remote.insecure("https://self-signed.example/f.tar"));
    assert!(!remote.insecure("https://other.example/f.tar"));
    assert!(!remote.insecure("not a url"));
}
