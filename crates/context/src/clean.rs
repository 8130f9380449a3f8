//! Lexical path cleaning with Go's `path/filepath.Clean` rules, for `/`-separated strings:
//! [`clean`] is `rbuild_types::path_clean`'s; [`clean_within_root`] keeps a path inside the
//! context root.

pub use rbuild_types::path_clean::clean;

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
