//! ARG/ENV scoping helpers: environments as ordered `KEY=value` lists (BuildKit's `EnvList`),
//! the automatic platform args, and splitting `ARG` words.

use rbuild_types::Platform;

/// Sets `key` in an ordered `KEY=value` list, replacing in place or appending
/// (BuildKit's `AddOrReplace` / image `addEnv`).
pub fn set(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == key)
    {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

/// The value of `key` in an ordered list (the last entry wins).
pub fn get<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter().rev().find_map(|kv| match kv.split_once('=') {
        Some((k, v)) if k == key => Some(v),
        None if kv == key => Some(""),
        _ => None,
    })
}

/// The automatic args BuildKit defines in the global scope (usable in FROM without a
/// declaration, and inside a stage once declared with a bare `ARG NAME`).
pub fn platform_args(build: &Platform, target: &Platform, target_stage: &str) -> Vec<String> {
    let mut env = Vec::new();
    for (prefix, p) in [("BUILD", build), ("TARGET", target)] {
        set(&mut env, &format!("{prefix}PLATFORM"), &p.to_string());
        set(&mut env, &format!("{prefix}OS"), &p.os);
        set(&mut env, &format!("{prefix}ARCH"), &p.architecture);
        set(
            &mut env,
            &format!("{prefix}VARIANT"),
            p.variant.as_deref().unwrap_or(""),
        );
    }
    set(&mut env, "TARGETSTAGE", target_stage);
    env
}

/// Splits one raw `ARG` word into its name and optional default (`a=b` → `("a", Some("b"))`).
pub fn split_arg(word: &str) -> (&str, Option<&str>) {
    match word.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (word, None),
    }
}

/// The default `PATH` BuildKit gives Linux containers whose config has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_in_place() {
        let mut e = vec!["A=1".to_string(), "B=2".into()];
        set(&mut e, "A", "3");
        set(&mut e, "C", "4");
        assert_eq!(e, vec!["A=3", "B=2", "C=4"]);
        assert_eq!(get(&e, "C"), Some("4"));
        assert_eq!(split_arg("x=y=z"), ("x", Some("y=z")));
    }

    #[test]
    fn platform_args_cover_build_and_target() {
        let p: Platform = "linux/arm/v7".parse().unwrap();
        let e = platform_args(&Platform::host(), &p, "app");
        assert_eq!(get(&e, "TARGETPLATFORM"), Some("linux/arm/v7"));
        assert_eq!(get(&e, "TARGETVARIANT"), Some("v7"));
        assert_eq!(get(&e, "BUILDOS"), Some("linux"));
    }
}
