//! Reading `.dockerignore` files: Docker's `ReadAll` rules and which file applies.

use std::io;
use std::path::{Path, PathBuf};

use crate::clean::clean;

/// Turns the bytes of an ignore file into its pattern list, Docker's `ReadAll` rules:
/// a UTF-8 BOM is stripped; a line whose first character is `#` is a comment (a `#` after
/// leading spaces is a pattern); lines are trimmed and empty ones skipped; after a `!` the rest
/// is trimmed again; the path is cleaned and one leading `/` dropped. A lone `!` is kept (the
/// matcher rejects it).
pub fn parse_ignore_file(content: &str) -> Vec<String> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut out = Vec::new();
    for line in content.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let mut invert = false;
        if let Some(rest) = pattern.strip_prefix('!') {
            invert = true;
            pattern = rest.trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            let c = clean(pattern);
            cleaned = match c.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_string(),
                _ => c,
            };
        }
        out.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    out
}

/// Which ignore file applies: `<dockerfile-name>.dockerignore` next to the Dockerfile if it
/// exists, else `<root>/.dockerignore` if it exists, else none.
pub fn find_ignore_file(root: &Path, dockerfile: Option<&Path>) -> io::Result<Option<PathBuf>> {
    if let Some(df) = dockerfile {
        if let Some(name) = df.file_name() {
            let mut candidate_name = name.to_os_string();
            candidate_name.push(".dockerignore");
            let candidate = df.with_file_name(candidate_name);
            if exists(&candidate)? {
                return Ok(Some(candidate));
            }
        }
    }
    let default = root.join(".dockerignore");
    Ok(exists(&default)?.then_some(default))
}

fn exists(path: &Path) -> io::Result<bool> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readall_rules() {
        let got = parse_ignore_file(
            "\u{feff}test1\n/test2\n/a/file/here\n\nlastfile\n# c\n  #x\n! /inv/abs\n!\n! \r\n",
        );
        assert_eq!(
            got,
            vec![
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "#x",
                "!inv/abs",
                "!",
                "!"
            ]
        );
    }

    #[test]
    fn dockerfile_specific_file_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join(".dockerignore"), "a\n").expect("write");
        let df = root.join("sub").join("Dockerfile.dev");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(&df, "FROM scratch\n").expect("write");
        assert_eq!(
            find_ignore_file(root, Some(&df)).expect("lookup"),
            Some(root.join(".dockerignore"))
        );
        std::fs::write(root.join("sub/Dockerfile.dev.dockerignore"), "b\n").expect("write");
        assert_eq!(
            find_ignore_file(root, Some(&df)).expect("lookup"),
            Some(root.join("sub/Dockerfile.dev.dockerignore"))
        );
    }
}
