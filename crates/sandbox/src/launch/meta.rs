//! What a RUN's [`ExecMeta`] (the build's `--add-host`, `--ulimit`, `--shm-size`) changes in
//! its runtime spec and generated files: /etc/hosts lines, the process's rlimits, the size of
//! the `/dev/shm` tmpfs.

use nix::sys::resource::{getrlimit, Resource};
use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};
use rbuild_graph::{ExecMeta, HostIp, UlimitName};

use crate::shared::error::Result;

/// The hostname every RUN sees: BuildKit's (`defaultHostname`), which tools write into what
/// they generate (ssh host key comments, certificates), so images come out the same.
pub const HOSTNAME: &str = "buildkitsandbox";

/// The generated contents of /etc/hosts: BuildKit's (`initHostsFile`), then one `IP\tHOST`
/// line per `--add-host`, in order (as BuildKit's `makeHostsFile`).
pub fn hosts_file(extra: &[HostIp]) -> String {
    let mut out =
        format!("127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for h in extra {
        out.push_str(&format!("{}\t{}\n", h.ip, h.host));
    }
    out
}

/// The open-files limit every RUN gets unless `--ulimit nofile=…` says otherwise
/// (BuildKit's default), lowered to the caller's hard limit.
const DEFAULT_NOFILE: u64 = 1_048_576;

/// The process's rlimits: the default open-files limit, then each `--ulimit` (a later one for
/// the same resource replaces an earlier one). `--ulimit` values are applied as given: a hard
/// limit above the caller's fails at setrlimit, as in docker.
pub fn rlimits(meta: &ExecMeta) -> Result<Vec<PosixRlimit>> {
    let nofile = getrlimit(Resource::RLIMIT_NOFILE)
        .map_or(DEFAULT_NOFILE, |(_, hard)| DEFAULT_NOFILE.min(hard));
    let mut wanted: Vec<(PosixRlimitType, u64, u64)> =
        vec![(PosixRlimitType::RlimitNofile, nofile, nofile)];
    for u in &meta.ulimits {
        let typ = rlimit_type(u.name);
        wanted.retain(|(t, _, _)| *t != typ);
        wanted.push((typ, u.soft, u.hard));
    }
    let mut out = Vec::new();
    for (typ, soft, hard) in wanted {
        out.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()?,
        );
    }
    Ok(out)
}

/// The `size=` option of the `/dev/shm` tmpfs: `--shm-size`, else docker's 64 MiB.
pub fn shm_size_option(meta: &ExecMeta) -> String {
    match meta.shm_size {
        Some(bytes) => format!("size={bytes}"),
        None => "size=65536k".to_string(),
    }
}

fn rlimit_type(name: UlimitName) -> PosixRlimitType {
    use PosixRlimitType as T;
    match name {
        UlimitName::As => T::RlimitAs,
        UlimitName::Core => T::RlimitCore,
        UlimitName::Cpu => T::RlimitCpu,
        UlimitName::Data => T::RlimitData,
        UlimitName::Fsize => T::RlimitFsize,
        UlimitName::Locks => T::RlimitLocks,
        UlimitName::Memlock => T::RlimitMemlock,
        UlimitName::Msgqueue => T::RlimitMsgqueue,
        UlimitName::Nice => T::RlimitNice,
        UlimitName::Nofile => T::RlimitNofile,
        UlimitName::Nproc => T::RlimitNproc,
        UlimitName::Rss => T::RlimitRss,
        UlimitName::Rtprio => T::RlimitRtprio,
        UlimitName::Rttime => T::RlimitRttime,
        UlimitName::Sigpending => T::RlimitSigpending,
        UlimitName::Stack => T::RlimitStack,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_hosts_follow_the_defaults() {
        let extra = vec!["db:10.0.0.2".parse().unwrap(), "v6=::1".parse().unwrap()];
        let hosts = hosts_file(&extra);
        assert!(
            hosts.starts_with("127.0.0.1\tlocalhost buildkitsandbox\n"),
            "{hosts}"
        );
        assert!(hosts.ends_with("\n10.0.0.2\tdb\n::1\tv6\n"), "{hosts}");
    }

    #[test]
    fn ulimits_replace_the_default_nofile() {
        let default = rlimits(&ExecMeta::default()).unwrap();
        assert_eq!(default.len(), 1);
        assert_eq!(default[0].typ(), PosixRlimitType::RlimitNofile);
        let meta = ExecMeta {
            ulimits: vec![
                "nofile=512:512".parse().unwrap(),
                "core=0".parse().unwrap(),
                "nofile=256:512".parse().unwrap(),
            ],
            ..ExecMeta::default()
        };
        let got: Vec<_> = rlimits(&meta)
            .unwrap()
            .iter()
            .map(|r| (r.typ(), r.soft(), r.hard()))
            .collect();
        assert_eq!(
            got,
            [
                (PosixRlimitType::RlimitCore, 0, 0),
                (PosixRlimitType::RlimitNofile, 256, 512)
            ]
        );
        assert_eq!(shm_size_option(&ExecMeta::default()), "size=65536k");
        let meta = ExecMeta {
            shm_size: Some(128 << 20),
            ..ExecMeta::default()
        };
        assert_eq!(shm_size_option(&meta), "size=134217728");
    }
}
