//! Path handling with Go's `path.Clean` semantics (Linux paths only; [`clean`] is
//! `rbuild_types::path_clean`'s).

pub use rbuild_types::path_clean::clean;

/// `clean(dir + "/" + p)`.
pub fn join(dir: &str, p: &str) -> String {
    clean(&format!("{dir}/{p}"))
}

/// A COPY/ADD destination: absolute, joined with the working directory when relative, with
/// a trailing `/` kept (a trailing `/` or `/.` means "into this directory").
pub fn copy_dest(workdir: &str, dest: &str) -> String {
    let dest = if dest.is_empty() || dest == "." {
        "./"
    } else {
        dest
    };
    let mut out = if dest.starts_with('/') {
        clean(dest)
    } else {
        join(workdir, dest)
    };
    if (dest.ends_with('/') || dest.ends_with("/.")) && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// A COPY source in the build context: cleaned and relative to the context root (`.` = all).
pub fn context_src(src: &str) -> String {
    let abs = join("/", src);
    match abs.trim_start_matches('/') {
        "" => ".".to_string(),
        rel => rel.to_string(),
    }
}

/// A COPY source in a stage or image: cleaned and absolute.
pub fn fs_src(src: &str) -> String {
    join("/", src)
}

/// WORKDIR: relative paths are relative to the current working directory (cleaned).
pub fn workdir(current: &str, requested: &str) -> String {
    clean(&workdir_config(current, requested))
}

/// The `WorkingDir` BuildKit records for WORKDIR `requested` (`NormalizeWorkdir`): an absolute
/// path as written (`/home/app/` keeps its slash), a relative one joined to the current
/// working directory and cleaned.
pub fn workdir_config(current: &str, requested: &str) -> String {
    if requested.starts_with('/') {
        requested.to_string()
    } else {
        clean(&format!("/{current}/{requested}"))
    }
}

/// Whether a source path has wildcards (`*`, `?`, `[`), skipping `\`-escaped characters.
pub fn has_wildcards(p: &str) -> bool {
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' | '[' => return true,
            '\\' => {
                chars.next();
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        assert_eq!(clean(""), ".");
        assert_eq!(clean("a/../.."), "..");
        assert_eq!(clean("/../a//b/./c/"), "/a/b/c");
        assert_eq!(clean("./"), ".");
    }

    #[test]
    fn dests_and_sources() {
        assert_eq!(copy_dest("/app", "."), "/app/");
        assert_eq!(copy_dest("/", "x"), "/x");
        assert_eq!(copy_dest("/app", "sub/"), "/app/sub/");
        assert_eq!(copy_dest("/app", "/abs/../y/"), "/y/");
        assert_eq!(copy_dest("/", "/"), "/");
        assert_eq!(context_src("./a/../b.txt"), "b.txt");
        assert_eq!(context_src("."), ".");
        assert_eq!(context_src("../../x"), "x");
        assert_eq!(fs_src("bin/app"), "/bin/app");
        assert_eq!(workdir("/a", "b/../c"), "/a/c");
        assert_eq!(workdir("", "x"), "/x");
        assert!(has_wildcards("*.txt"));
        assert!(!has_wildcards("a\\*"));
    }
}
