//! BuildKit's predefined proxy ARGs: `HTTP_PROXY`, `HTTPS_PROXY`, `FTP_PROXY`, `NO_PROXY` and
//! `ALL_PROXY` (either case), given as build args, reach every RUN's environment without an
//! `ARG` line (dockerfile2llb's `proxyEnvFromBuildArgs`, the exec op's `ProxyEnv`).
//!
//! Invariant: a [`ProxyEnv`] is configuration of the host, not of the build. It never enters
//! a cache key, the image config, its history or any serialised form of the graph (the field
//! that holds it, `ExecOp::proxy_env`, is skipped by serde), and its `Debug` form hides the
//! values, which may carry credentials (`http://user:pass@proxy:3128`).

use std::collections::BTreeMap;

/// One of the proxy variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProxyVar {
    Http,
    Https,
    Ftp,
    No,
    All,
}

impl ProxyVar {
    /// Every variable, in the order BuildKit adds them to the environment.
    pub const ALL: [ProxyVar; 5] = [
        ProxyVar::Http,
        ProxyVar::Https,
        ProxyVar::Ftp,
        ProxyVar::No,
        ProxyVar::All,
    ];

    /// The upper-case name (`HTTP_PROXY`).
    pub fn upper(self) -> &'static str {
        match self {
            ProxyVar::Http => "HTTP_PROXY",
            ProxyVar::Https => "HTTPS_PROXY",
            ProxyVar::Ftp => "FTP_PROXY",
            ProxyVar::No => "NO_PROXY",
            ProxyVar::All => "ALL_PROXY",
        }
    }

    /// The lower-case name (`http_proxy`).
    pub fn lower(self) -> &'static str {
        match self {
            ProxyVar::Http => "http_proxy",
            ProxyVar::Https => "https_proxy",
            ProxyVar::Ftp => "ftp_proxy",
            ProxyVar::No => "no_proxy",
            ProxyVar::All => "all_proxy",
        }
    }

    /// The variable a build arg named `name` sets, in any case (`Http_Proxy` too, as BuildKit
    /// compares with `strings.EqualFold`).
    pub fn from_name(name: &str) -> Option<ProxyVar> {
        ProxyVar::ALL
            .into_iter()
            .find(|v| v.upper().eq_ignore_ascii_case(name))
    }
}

/// The proxy settings a RUN gets on top of its environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    values: BTreeMap<ProxyVar, String>,
}

impl ProxyEnv {
    /// The proxy settings among `build_args`. Names are matched in any case; when several
    /// spell the same variable, the one that sorts last wins (`http_proxy` over `HTTP_PROXY`),
    /// as BuildKit walks the build args sorted.
    pub fn from_build_args<'a>(
        build_args: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> ProxyEnv {
        let mut args: Vec<(&str, &str)> = build_args.into_iter().collect();
        args.sort_unstable();
        let mut values = BTreeMap::new();
        for (name, value) in args {
            if let Some(var) = ProxyVar::from_name(name) {
                values.insert(var, value.to_string());
            }
        }
        ProxyEnv { values }
    }

    /// No proxy variable was given.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value given for `var`, if any.
    pub fn get(&self, var: ProxyVar) -> Option<&str> {
        self.values.get(&var).map(String::as_str)
    }

    /// The `KEY=value` entries to add to a RUN's environment: each non-empty value under both
    /// spellings (`HTTP_PROXY=v`, `http_proxy=v`), in BuildKit's order.
    pub fn env(&self) -> Vec<String> {
        let mut out = Vec::new();
        for var in ProxyVar::ALL {
            if let Some(v) = self.get(var).filter(|v| !v.is_empty()) {
                out.push(format!("{}={v}", var.upper()));
                out.push(format!("{}={v}", var.lower()));
            }
        }
        out
    }
}

impl std::fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: a proxy URL may hold a password.
        f.debug_set()
            .entries(self.values.keys().map(|v| v.upper()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_case_and_the_last_sorted_wins() {
        // BuildKit's TestProxyEnvFromBuildArgsDeterministicOrder.
        let p = ProxyEnv::from_build_args([
            ("ALL_PROXY", "all-upper"),
            ("all_proxy", "all-lower"),
            ("HTTP_PROXY", "http-upper"),
            ("http_proxy", "http-lower"),
            ("NO_PROXY", "no-proxy"),
            ("FOO", "bar"),
        ]);
        assert_eq!(p.get(ProxyVar::Http), Some("http-lower"));
        assert_eq!(p.get(ProxyVar::All), Some("all-lower"));
        assert_eq!(p.get(ProxyVar::No), Some("no-proxy"));
        assert_eq!(p.get(ProxyVar::Https), None);
        assert_eq!(
            p.env(),
            [
                "HTTP_PROXY=http-lower",
                "http_proxy=http-lower",
                "NO_PROXY=no-proxy",
                "no_proxy=no-proxy",
                "ALL_PROXY=all-lower",
                "all_proxy=all-lower",
            ]
        );
        assert_eq!(ProxyVar::from_name("Https_Proxy"), Some(ProxyVar::Https));
        assert_eq!(ProxyVar::from_name("HTTP_PROXY2"), None);
    }

    #[test]
    fn none_given_and_empty_values() {
        assert!(ProxyEnv::from_build_args([("A", "1")]).is_empty());
        // An empty value is given (not empty) but adds nothing to the environment.
        let p = ProxyEnv::from_build_args([("ftp_proxy", "")]);
        assert!(!p.is_empty());
        assert!(p.env().is_empty());
    }

    #[test]
    fn debug_hides_values() {
        let p = ProxyEnv::from_build_args([("HTTPS_PROXY", "http://u:secret@proxy:3128")]);
        let shown = format!("{p:?}");
        assert_eq!(shown, "{\"HTTPS_PROXY\"}");
    }
}
