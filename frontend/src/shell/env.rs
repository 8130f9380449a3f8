//! Environments the lexer looks variables up in.

use std::collections::{BTreeMap, HashMap};

/// A read-only variable lookup. Names are case-sensitive (Linux semantics).
pub trait Env {
    /// The value of `name`, or `None` when it is unset (set-but-empty is `Some("")`).
    fn lookup(&self, name: &str) -> Option<String>;
}

impl Env for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Env for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// An ordered `KEY=VALUE` list, as an image config or a RUN step carries it.
///
/// Invariant (BuildKit's `getEnv`): a bare `KEY` without `=` is set to the empty string, and
/// the *last* entry for a name wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvList<'a>(pub &'a [String]);

impl Env for EnvList<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.0.iter().rev().find_map(|kv| match kv.split_once('=') {
            Some((k, v)) if k == name => Some(v.to_string()),
            None if kv == name => Some(String::new()),
            _ => None,
        })
    }
}

/// No variables at all.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmptyEnv;

impl Env for EmptyEnv {
    fn lookup(&self, _name: &str) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_list_last_wins_and_bare_key_is_empty() {
        let list = vec!["foo".to_string(), "car=hat".into(), "car=bike".into()];
        let env = EnvList(&list);
        assert_eq!(env.lookup("foo").as_deref(), Some(""));
        assert_eq!(env.lookup("car").as_deref(), Some("bike"));
        assert_eq!(env.lookup("nope"), None);
    }
}
