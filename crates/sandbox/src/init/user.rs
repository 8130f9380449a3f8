//! Resolving a USER value (`name|uid[:group|gid]`) against the rootfs's /etc/passwd and
//! /etc/group the way Docker (runc's `GetExecUser`) does:
//! - a name must exist in passwd; a numeric uid need not (then gid 0, home `/`);
//! - an explicit group by name must exist in group; a numeric gid need not;
//! - without an explicit group, the primary gid comes from passwd and the supplementary groups
//!   are every group listing the user's name as a member;
//! - the primary gid is always one of the supplementary groups too (put first when it is not
//!   among them), as BuildKit sets them since the CVE-2023-25173 fix (moby/buildkit#3651):
//!   `USER 1234:5678` runs with `groups=5678`, and an unset USER gets root's groups.

use crate::shared::error::{Result, SetupError};

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// The fields of each line of an /etc/passwd-style file that has at least `min_fields`
/// (comments and short lines skipped).
fn records(text: &str, min_fields: usize) -> impl Iterator<Item = Vec<&str>> {
    text.lines().filter_map(move |line| {
        let f: Vec<&str> = line.trim_end().split(':').collect();
        (f.len() >= min_fields && !line.starts_with('#')).then_some(f)
    })
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    records(passwd, 4).filter_map(|f| {
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    records(group, 3).filter_map(|f| {
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        })
    })
}

fn parse_id(spec: &str, value: &str) -> Result<Option<u32>> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| SetupError::BadId {
        spec: spec.to_string(),
        value: value.to_string(),
    })
}

/// Resolves `spec` (empty = root) given the contents of /etc/passwd and /etc/group (empty
/// strings when the files do not exist).
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ExecUser> {
    let spec_or_root = if spec.is_empty() { "0" } else { spec };
    let (user_arg, group_arg) = match spec_or_root.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec_or_root, None),
    };
    let user_arg = if user_arg.is_empty() { "0" } else { user_arg };
    let uid_num = parse_id(spec, user_arg)?;

    let matched = passwd_entries(passwd).find(|e| match uid_num {
        Some(uid) => e.uid == uid,
        None => e.name == user_arg,
    });
    let (uid, mut gid, home, name) = match (&matched, uid_num) {
        (Some(e), _) => (e.uid, e.gid, e.home.to_string(), Some(e.name)),
        (None, Some(uid)) => (uid, 0, "/".to_string(), None),
        (None, None) => {
            return Err(SetupError::UnknownUser {
                name: user_arg.to_string(),
            })
        }
    };
    let home = if home.is_empty() {
        "/".to_string()
    } else {
        home
    };

    let mut additional_gids = Vec::new();
    match group_arg {
        Some(g) if !g.is_empty() => {
            let gid_num = parse_id(spec, g)?;
            let found = group_entries(group).find(|e| match gid_num {
                Some(n) => e.gid == n,
                None => e.name == g,
            });
            gid = match (found, gid_num) {
                (Some(e), _) => e.gid,
                (None, Some(n)) => n,
                (None, None) => {
                    return Err(SetupError::UnknownGroup {
                        name: g.to_string(),
                    })
                }
            };
        }
        _ => {
            if let Some(name) = name {
                for e in group_entries(group) {
                    if e.members.contains(&name) && !additional_gids.contains(&e.gid) {
                        additional_gids.push(e.gid);
                    }
                }
            }
        }
    }
    if !additional_gids.contains(&gid) {
        additional_gids.insert(0, gid);
    }
    Ok(ExecUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
                          bob:x:1001:100::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nusers:x:100:alice\nalice:x:1000:\nwheel:x:10:alice,bob\n";

    fn user(uid: u32, gid: u32, extra: &[u32], home: &str) -> ExecUser {
        ExecUser {
            uid,
            gid,
            additional_gids: extra.to_vec(),
            home: home.into(),
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, ExecUser)] = &[
            ("", user(0, 0, &[0], "/root")),
            ("root", user(0, 0, &[0], "/root")),
            ("alice", user(1000, 1000, &[1000, 100, 10], "/home/alice")),
            ("1000", user(1000, 1000, &[1000, 100, 10], "/home/alice")),
            ("alice:wheel", user(1000, 10, &[10], "/home/alice")),
            ("alice:42", user(1000, 42, &[42], "/home/alice")),
            ("4242", user(4242, 0, &[0], "/")),
            ("4242:4343", user(4242, 4343, &[4343], "/")),
            ("bob", user(1001, 100, &[100, 10], "/home/bob")),
        ];
        for (spec, want) in cases {
            assert_eq!(&resolve(spec, PASSWD, GROUP).expect(spec), want, "{spec}");
        }
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(matches!(
            resolve("nobody", PASSWD, GROUP),
            Err(SetupError::UnknownUser { name }) if name == "nobody"
        ));
        assert!(matches!(
            resolve("alice:nogroup", PASSWD, GROUP),
            Err(SetupError::UnknownGroup { name }) if name == "nogroup"
        ));
        assert!(matches!(
            resolve("99999999999", PASSWD, GROUP),
            Err(SetupError::BadId { .. })
        ));
    }

    #[test]
    fn no_passwd_file_still_allows_ids() {
        assert_eq!(resolve("", "", "").expect("root"), user(0, 0, &[0], "/"));
        assert!(resolve("root", "", "").is_err());
    }
}
