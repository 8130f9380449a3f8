//! Lexical path cleaning with Go's `path/filepath.Clean` rules, for `/`-separated strings.
//!
//! Invariant: the result never contains empty, `.` or (unless unrooted and leading) `..` segments,
//! has no trailing `/` (except the root `/` itself), and is `.` when nothing is left.

/// Cleans `path` exactly like Go's `filepath.Clean` on Unix.
///
/// `a//b/../c/` → `a/c`, `/../x` → `/x`, `../x` → `../x`, `` → `.`.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Cleans `path` as a path inside a root: `..` can never climb above it and a leading `/` or
/// `./` is ignored. Returns `.` for the root itself, otherwise a relative path without `/` at
/// either end.
pub fn clean_within_root(path: &str) -> String {
    let rooted = clean(&format!("/{path}"));
    match rooted.strip_prefix('/') {
        Some("") | None => ".".to_string(),
        Some(rest) => rest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_clean_table() {
        let table = [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//", "/"),
            ("abc", "abc"),
            ("abc/", "abc"),
            ("a//b/../c/", "a/c"),
            ("/../x", "/x"),
            ("../x", "../x"),
            ("../../x/..", "../.."),
            ("a/../..", ".."),
            ("./a/./b", "a/b"),
            ("/abc/def/..", "/abc"),
            ("abc/./../def", "def"),
        ];
        for (input, want) in table {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn within_root_never_escapes() {
        let table = [
            ("", "."),
            ("/", "."),
            ("./", "."),
            ("../../etc/passwd", "etc/passwd"),
            ("/a/b/", "a/b"),
            ("./a/../b", "b"),
            ("a/../../..", "."),
        ];
        for (input, want) in table {
            assert_eq!(
                clean_within_root(input),
                want,
                "clean_within_root({input:?})"
            );
        }
    }
}
