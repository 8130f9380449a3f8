//! Lexical cleaning of `/`-separated paths with Go's `path.Clean` rules (and so
//! `path/filepath.Clean`'s on Unix), which BuildKit applies to Dockerfile and context paths:
//! the one cleaner of the frontend and the context.
//!
//! Invariant: the result never contains empty, `.` or (unless unrooted and leading) `..`
//! segments, has no trailing `/` (except the root `/` itself), and is `.` when nothing is left.

/// Cleans `path` exactly like Go's `path.Clean`.
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
}
