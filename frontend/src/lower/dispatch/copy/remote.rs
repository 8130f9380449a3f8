//! Which COPY/ADD sources are remote, as BuildKit's `dockerfile2llb` tells them apart.
//!
//! A source is a **git** source when BuildKit's `gitutil.ParseGitRef` accepts it and it is not
//! "indistinguishable from local": a URL with scheme `git://` or `ssh://`, an `http(s)://` URL
//! whose path ends in `.git`, or an SCP-style `user@host:path`; never `./…`, `../…` or
//! `github.com/…` (a local path for COPY/ADD). Its fragment is `#ref[:subdir]`, or the CSV form
//! `##ref=…,subdir=…,commit=…`. Any other `http://`/`https://` source is an **http** source
//! whose file is named after the last segment of the URL's path (`__unnamed__` when there is
//! none). Everything else is local.

/// A git source: what `git` is given, and the fragment's parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GitSource {
    pub remote: String,
    pub reference: Option<String>,
    pub subdir: Option<String>,
}

/// What one (expanded) COPY/ADD source names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SourceKind {
    Local,
    Http { filename: String },
    Git(GitSource),
}

/// Classifies `src`; `Err` is a git source with a malformed fragment (the problem).
pub(crate) fn classify(src: &str) -> Result<SourceKind, String> {
    if let Some(git) = git_source(src)? {
        return Ok(SourceKind::Git(git));
    }
    if src.starts_with("http://") || src.starts_with("https://") {
        return Ok(SourceKind::Http {
            filename: url_filename(src),
        });
    }
    Ok(SourceKind::Local)
}

/// BuildKit's `ParseGitRef`, minus the forms it treats as local for COPY/ADD.
fn git_source(src: &str) -> Result<Option<GitSource>, String> {
    if src.starts_with("./") || src.starts_with("../") || src.starts_with("github.com/") {
        return Ok(None);
    }
    let (remote, fragment) = match src.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (src, None),
    };
    if let Some(scheme) = url_scheme(src) {
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "git" | "ssh" => {}
            "http" | "https" => {
                let after = &remote[scheme.len() + 3..];
                let path = after.find('/').map_or("", |i| &after[i..]);
                let path = path.split('?').next().unwrap_or(path);
                if !path.ends_with(".git") {
                    return Ok(None);
                }
            }
            _ => return Ok(None),
        }
    } else if !is_scp_style(remote) {
        return Ok(None);
    }
    let (reference, subdir) = match fragment {
        None | Some("") => (None, None),
        Some(f) => match f.strip_prefix('#') {
            Some(csv) => csv_fragment(csv)?,
            None => {
                let (r, s) = f.split_once(':').unwrap_or((f, ""));
                (non_empty(r), non_empty(s))
            }
        },
    };
    if reference.as_deref().is_some_and(|r| r.starts_with('-')) {
        return Err("a git reference cannot start with '-'".to_string());
    }
    if remote.starts_with('-') {
        return Err("a repository URL cannot start with '-'".to_string());
    }
    let subdir = subdir
        .map(|s| s.trim_matches('/').to_string())
        .filter(|s| !s.is_empty() && s != ".");
    Ok(Some(GitSource {
        remote: remote.to_string(),
        reference,
        subdir,
    }))
}

/// `ref=…,commit=…,subdir=…` (keys case-insensitive; `commit` alone is the ref).
fn csv_fragment(csv: &str) -> Result<(Option<String>, Option<String>), String> {
    let (mut reference, mut commit, mut subdir) = (None, None, None);
    for field in csv.split(',').filter(|f| !f.is_empty()) {
        let Some((key, value)) = field.split_once('=') else {
            return Err(format!("invalid field '{field}' must be a key=value pair"));
        };
        match key.to_ascii_lowercase().as_str() {
            "ref" => reference = non_empty(value),
            "commit" => commit = non_empty(value),
            "subdir" => subdir = non_empty(value),
            other => {
                return Err(format!(
                    "unexpected key '{other}' in '{field}' (supported keys: ref, commit, subdir)"
                ))
            }
        }
    }
    Ok((reference.or(commit), subdir))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The scheme of `^[a-zA-Z0-9]+://`, if the source starts with one.
fn url_scheme(src: &str) -> Option<&str> {
    let end = src.find("://")?;
    let scheme = &src[..end];
    (!scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(scheme)
}

/// `^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):` — git's SCP-like `user@host:path`.
fn is_scp_style(remote: &str) -> bool {
    let Some((user, rest)) = remote.split_once('@') else {
        return false;
    };
    let Some((host, _)) = rest.split_once(':') else {
        return false;
    };
    let user_ok = !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    user_ok && host_ok
}

/// The file name BuildKit gives a download: `path.Base` of the URL's (percent-decoded)
/// path, `__unnamed__` when that is empty, `.`, `/`, or not a usable file name.
pub(crate) fn url_filename(url: &str) -> String {
    const UNNAMED: &str = "__unnamed__";
    let after = url.split_once("://").map_or(url, |(_, a)| a);
    let end = after.find(['?', '#']).unwrap_or(after.len());
    let after = &after[..end];
    let Some(slash) = after.find('/') else {
        return UNNAMED.to_string();
    };
    let Some(path) = percent_decode(&after[slash..]) else {
        return UNNAMED.to_string();
    };
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    match base {
        "" | "." | ".." => UNNAMED.to_string(),
        b if b.contains('\0') => UNNAMED.to_string(),
        b => b.to_string(),
    }
}

/// `%XX` decoding as Go's `url.Parse` does for paths; `None` for a malformed escape or a
/// result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(src: &str) -> GitSource {
        match classify(src) {
            Ok(SourceKind::Git(g)) => g,
            other => panic!("{src} is not a git source: {other:?}"),
        }
    }

    #[test]
    fn git_sources_follow_parse_git_ref() {
        let g = git("https://example.com/repo.git#v1.2:docker/app");
        assert_eq!(g.remote, "https://example.com/repo.git");
        assert_eq!(g.reference.as_deref(), Some("v1.2"));
        assert_eq!(g.subdir.as_deref(), Some("docker/app"));
        assert_eq!(
            git("git@github.com:o/r.git").remote,
            "git@github.com:o/r.git"
        );
        assert_eq!(git("git://h/r#main").reference.as_deref(), Some("main"));
        assert_eq!(git("ssh://git@h/r").remote, "ssh://git@h/r");
        assert_eq!(git("GIT://h/r").remote, "GIT://h/r");
        let g = git("https://h/r.git##ref=v2,subdir=/x/");
        assert_eq!(
            (g.reference.as_deref(), g.subdir.as_deref()),
            (Some("v2"), Some("x"))
        );
        assert_eq!(
            git("https://h/r.git##commit=abc").reference.as_deref(),
            Some("abc")
        );
        assert_eq!(git("https://h/r.git#:sub").reference, None);
        assert!(classify("https://h/r.git##bogus=1").is_err());
        assert!(classify("https://h/r.git#--upload-pack=x").is_err());
    }

    #[test]
    fn others_are_http_or_local() {
        for local in [
            "github.com/o/r",
            "./a@b:c",
            "file.txt",
            "ftp://h/x.git",
            "a@b",
        ] {
            assert_eq!(classify(local), Ok(SourceKind::Local), "{local}");
        }
        let http = |f: &str| SourceKind::Http {
            filename: f.to_string(),
        };
        assert_eq!(classify("https://h/dir/f.tar.gz?x=1"), Ok(http("f.tar.gz")));
        assert_eq!(classify("https://h/r.git/x"), Ok(http("x")));
        assert_eq!(classify("http://h"), Ok(http("__unnamed__")));
        assert_eq!(classify("http://h/"), Ok(http("__unnamed__")));
        assert_eq!(classify("http://h/d/"), Ok(http("d")));
        assert_eq!(classify("http://h/a%20b"), Ok(http("a b")));
        assert_eq!(classify("http://h/%2e%2e"), Ok(http("__unnamed__")));
        assert_eq!(classify("http://h/a%zz"), Ok(http("__unnamed__")));
    }
}
