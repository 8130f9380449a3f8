//! [`ExecMeta`]: what the build's `--add-host`, `--ulimit` and `--shm-size` give every RUN
//! (BuildKit's `Meta.extraHosts`, `Meta.ulimit` and the size of the `/dev/shm` tmpfs), with
//! the parsers of docker's flag syntax.

use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The build-wide settings of a RUN beyond its command. Part of the key, as BuildKit's `Meta`
/// is; like protobuf's empty fields, a default one adds nothing to the key's bytes, so RUNs
/// built without these flags keep their keys. Left out of the JSON when default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecMeta {
    /// `--add-host`: lines added to the generated /etc/hosts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<HostIp>,
    /// `--ulimit`: resource limits of the command, in order (a later one for the same
    /// resource wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    /// `--shm-size`: the size of the `/dev/shm` tmpfs in bytes; `None`: 64 MiB, as docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
}

impl ExecMeta {
    pub fn is_default(&self) -> bool {
        *self == ExecMeta::default()
    }
}

/// One `--add-host host:ip` (or `host=ip`): `/etc/hosts` maps `host` to `ip`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostIp {
    pub host: String,
    pub ip: IpAddr,
}

/// A malformed `--add-host` or `--ulimit` value.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("invalid host {0:?}: expected HOST:IP or HOST=IP")]
    HostForm(String),
    #[error("invalid IP address {ip:?} for host {host:?}")]
    HostIp { host: String, ip: String },
    #[error("invalid ulimit {0:?}: expected NAME=SOFT[:HARD]")]
    UlimitForm(String),
    #[error("invalid ulimit name {0:?} (one of: {names})", names = UlimitName::NAMES.join(", "))]
    UlimitName(String),
    #[error("invalid ulimit value {0:?}: a number, or -1 for unlimited")]
    UlimitValue(String),
    #[error("invalid ulimit {0:?}: the soft limit is above the hard limit")]
    SoftAboveHard(String),
}

impl FromStr for HostIp {
    type Err = MetaError;

    /// Docker's forms: `host:ip` and `host=ip` (buildx). The IP may be IPv6 (`h:::1`,
    /// `h=::1`, `h:[::1]`). `host-gateway` is refused: there is no gateway to name here.
    fn from_str(s: &str) -> Result<Self, MetaError> {
        let (host, ip) = match s.split_once('=') {
            Some(pair) => pair,
            None => s
                .split_once(':')
                .ok_or_else(|| MetaError::HostForm(s.to_string()))?,
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(MetaError::HostForm(s.to_string()));
        }
        let bare = ip
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or(ip);
        let ip = bare.parse().map_err(|_| MetaError::HostIp {
            host: host.to_string(),
            ip: ip.to_string(),
        })?;
        Ok(HostIp {
            host: host.to_string(),
            ip,
        })
    }
}

/// One `--ulimit name=soft[:hard]`. [`UNLIMITED`] is `-1` (RLIM_INFINITY).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: UlimitName,
    pub soft: u64,
    pub hard: u64,
}

/// RLIM_INFINITY: `-1` on the command line.
pub const UNLIMITED: u64 = u64::MAX;

/// The resources `--ulimit` names (docker/go-units' list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UlimitName {
    As,
    Core,
    Cpu,
    Data,
    Fsize,
    Locks,
    Memlock,
    Msgqueue,
    Nice,
    Nofile,
    Nproc,
    Rss,
    Rtprio,
    Rttime,
    Sigpending,
    Stack,
}

impl UlimitName {
    const ALL: [UlimitName; 16] = [
        UlimitName::As,
        UlimitName::Core,
        UlimitName::Cpu,
        UlimitName::Data,
        UlimitName::Fsize,
        UlimitName::Locks,
        UlimitName::Memlock,
        UlimitName::Msgqueue,
        UlimitName::Nice,
        UlimitName::Nofile,
        UlimitName::Nproc,
        UlimitName::Rss,
        UlimitName::Rtprio,
        UlimitName::Rttime,
        UlimitName::Sigpending,
        UlimitName::Stack,
    ];
    const NAMES: [&'static str; 16] = [
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];

    /// The name as written on the command line (`nofile`).
    pub fn as_str(self) -> &'static str {
        let i = UlimitName::ALL.iter().position(|n| *n == self).unwrap_or(0);
        UlimitName::NAMES[i]
    }
}

impl FromStr for Ulimit {
    type Err = MetaError;

    fn from_str(s: &str) -> Result<Self, MetaError> {
        let (name, values) = s
            .split_once('=')
            .ok_or_else(|| MetaError::UlimitForm(s.to_string()))?;
        let name = UlimitName::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| UlimitName::ALL[i])
            .ok_or_else(|| MetaError::UlimitName(name.to_string()))?;
        let value = |v: &str| match v {
            "-1" | "unlimited" => Ok(UNLIMITED),
            v => v
                .parse::<u64>()
                .map_err(|_| MetaError::UlimitValue(v.to_string())),
        };
        let (soft, hard) = match values.split_once(':') {
            Some((soft, hard)) => (value(soft)?, value(hard)?),
            None => {
                let v = value(values)?;
                (v, v)
            }
        };
        if soft > hard {
            return Err(MetaError::SoftAboveHard(s.to_string()));
        }
        Ok(Ulimit { name, soft, hard })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_in_docker_and_buildx_forms() {
        let h: HostIp = "db:10.0.0.2".parse().unwrap();
        assert_eq!(
            (h.host.as_str(), h.ip.to_string()),
            ("db", "10.0.0.2".into())
        );
        let h: HostIp = "db=10.0.0.2".parse().unwrap();
        assert_eq!(h.ip.to_string(), "10.0.0.2");
        for v6 in ["v6:::1", "v6=::1", "v6:[::1]"] {
            let h: HostIp = v6.parse().unwrap();
            assert_eq!(
                (h.host.as_str(), h.ip.to_string()),
                ("v6", "::1".into()),
                "{v6}"
            );
        }
        for bad in ["db", ":1.2.3.4", "db:nothost", "db=", "db:host-gateway"] {
            assert!(bad.parse::<HostIp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ulimits_as_docker_writes_them() {
        let u: Ulimit = "nofile=512:1024".parse().unwrap();
        assert_eq!(
            u,
            Ulimit {
                name: UlimitName::Nofile,
                soft: 512,
                hard: 1024
            }
        );
        let u: Ulimit = "core=0".parse().unwrap();
        assert_eq!((u.soft, u.hard), (0, 0));
        let u: Ulimit = "stack=-1".parse().unwrap();
        assert_eq!((u.soft, u.hard), (UNLIMITED, UNLIMITED));
        assert_eq!(u.name.as_str(), "stack");
        assert_eq!(
            "nofile=2:1".parse::<Ulimit>(),
            Err(MetaError::SoftAboveHard("nofile=2:1".into()))
        );
        for bad in ["nofile", "files=1", "nofile=x", "nofile=1:", "=1"] {
            assert!(bad.parse::<Ulimit>().is_err(), "{bad}");
        }
        for (i, n) in UlimitName::ALL.iter().enumerate() {
            assert_eq!(n.as_str(), UlimitName::NAMES[i]);
            let json = serde_json::to_string(n).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", UlimitName::NAMES[i]));
        }
    }
}
