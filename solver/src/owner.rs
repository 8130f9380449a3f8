//! `--chown` owners: `user[:group]`, by name or id, resolved in the destination filesystem's
//! `/etc/passwd` and `/etc/group` the way Docker resolves them.

use std::path::Path;

use rbuild_cache::merged::MergedView;

/// Numeric owner of files a copy creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("unable to convert uid/gid chown string to host mapping: user {0:?} not found in /etc/passwd")]
    UnknownUser(String),
    #[error("unable to convert uid/gid chown string to host mapping: group {0:?} not found in /etc/group")]
    UnknownGroup(String),
    #[error("reading {path} of the destination: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Cache(#[from] rbuild_cache::CacheError),
}

/// Resolves a chown spec. A user given by name without a group takes the user's primary group;
/// a numeric user without a group gets the same number as group (Docker's rule).
pub fn resolve_owner(spec: &str, fs: &MergedView) -> Result<Owner, OwnerError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary_gid) = match user.parse::<u32>() {
        Ok(uid) => (uid, uid),
        Err(_) => {
            let passwd = read_file(fs, "/etc/passwd")?;
            find_entry(&passwd, user)
                .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
                .ok_or_else(|| OwnerError::UnknownUser(user.to_string()))?
        }
    };
    let gid = match group {
        None | Some("") => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let groups = read_file(fs, "/etc/group")?;
                find_entry(&groups, g)
                    .and_then(|f| f.get(2)?.parse().ok())
                    .ok_or_else(|| OwnerError::UnknownGroup(g.to_string()))?
            }
        },
    };
    Ok(Owner { uid, gid })
}

/// The contents of `path` in the image (symlinks followed inside it, as BuildKit reads the
/// user files through `fs.RootPath`); empty when it is missing or not a regular file.
fn read_file(fs: &MergedView, path: &str) -> Result<String, OwnerError> {
    match fs.lookup_followed(Path::new(path))? {
        Some(e) if e.metadata.is_file() => {
            std::fs::read_to_string(&e.host_path).map_err(|source| OwnerError::Read {
                path: path.to_string(),
                source,
            })
        }
        _ => Ok(String::new()),
    }
}

/// The colon-separated fields of the line whose first field is `name`.
fn find_entry<'a>(text: &'a str, name: &str) -> Option<Vec<&'a str>> {
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_owner_needs_no_files() {
        let view = MergedView::new(vec![]);
        assert_eq!(
            resolve_owner("1000", &view).unwrap(),
            Owner {
                uid: 1000,
                gid: 1000
            }
        );
        assert_eq!(
            resolve_owner("1:2", &view).unwrap(),
            Owner { uid: 1, gid: 2 }
        );
        assert!(matches!(
            resolve_owner("nobody", &view),
            Err(OwnerError::UnknownUser(_))
        ));
    }

    #[test]
    fn names_from_passwd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let view = MergedView::new(vec![dir.path().to_path_buf()]);
        assert_eq!(
            resolve_owner("app", &view).unwrap(),
            Owner {
                uid: 1000,
                gid: 1001
            }
        );
        assert_eq!(
            resolve_owner("app:staff", &view).unwrap(),
            Owner { uid: 1000, gid: 50 }
        );
        assert!(matches!(
            resolve_owner("app:nogroup", &view),
            Err(OwnerError::UnknownGroup(_))
        ));
    }
}
