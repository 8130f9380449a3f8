//! A stage's variables while it is lowered: an ordered `KEY=value` list (what RUN and the
//! image config get, order kept) with an index of its keys, so that `ENV`, `ARG` and every
//! `$VAR` expansion cost the same with 3 variables in scope or 3,000 (a list scan per
//! instruction made a long Dockerfile's lowering quadratic).
//!
//! Same results as [`super::args::set`] and [`super::args::get`] on the list: setting a key
//! replaces its first entry in place (or appends), a lookup reads its last entry (they differ
//! only in a base image's env that names a key twice).

use std::collections::HashMap;

use crate::shell::Env;

/// An ordered `KEY=value` list with its keys indexed (see the module docs).
#[derive(Clone, Debug, Default)]
pub(crate) struct Vars {
    list: Vec<String>,
    /// Key → index of its first entry (the one [`Vars::set`] replaces).
    first: HashMap<String, usize>,
    /// Key → index of its last entry (the one [`Vars::get`] reads).
    last: HashMap<String, usize>,
}

/// The key of a `KEY=value` entry (an entry without `=` is all key, with an empty value).
fn key_of(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

impl Vars {
    /// The variables of `list`, in its order.
    pub(crate) fn from_list(list: Vec<String>) -> Vars {
        let mut first = HashMap::with_capacity(list.len());
        let mut last = HashMap::with_capacity(list.len());
        for (i, entry) in list.iter().enumerate() {
            let key = key_of(entry);
            first.entry(key.to_string()).or_insert(i);
            last.insert(key.to_string(), i);
        }
        Vars { list, first, last }
    }

    /// Sets `key` to `value`: its first entry is replaced in place, or one is appended.
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self.first.get(key) {
            Some(&i) => self.list[i] = entry,
            None => {
                let i = self.list.len();
                self.list.push(entry);
                self.first.insert(key.to_string(), i);
                self.last.insert(key.to_string(), i);
            }
        }
    }

    /// The value of `key` (its last entry's), if set.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        let entry = &self.list[*self.last.get(key)?];
        Some(entry.split_once('=').map_or("", |(_, v)| v))
    }

    /// The list, in order.
    pub(crate) fn list(&self) -> &[String] {
        &self.list
    }
}

impl Env for Vars {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::args;

    #[test]
    fn same_answers_as_the_list_functions() {
        let base = vec![
            "PATH=/bin".to_string(),
            "A=1".into(),
            "BARE".into(),
            "A=2".into(),
        ];
        let mut vars = Vars::from_list(base.clone());
        let mut list = base;
        for (k, v) in [("A", "3"), ("B", "x=y"), ("PATH", "/usr/bin"), ("B", "z")] {
            vars.set(k, v);
            args::set(&mut list, k, v);
            assert_eq!(vars.list(), list.as_slice());
            for key in ["A", "B", "BARE", "PATH", "NONE"] {
                assert_eq!(vars.get(key), args::get(&list, key), "{key}");
            }
        }
        assert_eq!(vars.lookup("BARE").as_deref(), Some(""));
    }
}
