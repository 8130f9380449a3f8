//! [`Privileges`]: what this process may do to files and namespaces — its effective ids and
//! the user namespace it runs in. Pure data: the binary detects it once at startup
//! (`rbuild_sandbox::detect_privileges`, then `rbuild_sandbox::userns::enter`, which turns an
//! unprivileged caller into root of rbuild's own user namespace) and passes it down to
//! everything that gives files owners, creates device nodes or writes overlay xattrs: the
//! solver's file ops, layer unpacking and `-o type=local`, context archives and the sandbox.

/// The user namespace a process runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserNamespace {
    /// The initial user namespace: uid 0 is the host's root.
    Initial,
    /// The namespace rbuild entered at startup because it was started without root
    /// (rootless rbuild): RUN runs in it too.
    Rootless,
    /// A namespace rbuild found itself in (root of a rootless container, or the sandbox's
    /// init, which cannot tell rbuild's own namespace from another's).
    Inherited,
}

impl UserNamespace {
    /// The namespace a process's `/proc/self/uid_map` text describes, when rbuild did not
    /// create it: [`Initial`](Self::Initial) for the identity map of every id, else
    /// [`Inherited`](Self::Inherited).
    pub fn from_uid_map(map: &str) -> UserNamespace {
        let fields: Vec<&str> = map.split_whitespace().collect();
        if fields == ["0", "0", "4294967295"] {
            UserNamespace::Initial
        } else {
            UserNamespace::Inherited
        }
    }
}

/// Who this process is, as far as files and namespaces go (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Privileges {
    /// The effective user id.
    pub uid: u32,
    /// The effective group id.
    pub gid: u32,
    /// The user namespace the process runs in.
    pub namespace: UserNamespace,
}

impl Privileges {
    /// Whether files can be given to other ids (`chown`): root, of whatever namespace (in a
    /// user namespace, to the ids mapped there). Otherwise files keep the caller's ids.
    pub fn can_chown(&self) -> bool {
        self.uid == 0
    }

    /// Whether this is the host's root: root in the initial user namespace, who can give
    /// files any owner, create device nodes and write `trusted.*` xattrs. Root of another
    /// namespace is refused some of that, which callers then tolerate.
    pub fn is_host_root(&self) -> bool {
        self.uid == 0 && self.namespace == UserNamespace::Initial
    }

    /// Whether the process (and so every RUN) runs in a user namespace other than the
    /// initial one: overlayfs is mounted with `userxattr`, opaque directories are marked
    /// with `user.overlay.opaque`, host devices are bound rather than created.
    pub fn in_user_namespace(&self) -> bool {
        self.namespace != UserNamespace::Initial
    }

    /// Whether rbuild entered its own user namespace at startup (rootless rbuild).
    pub fn is_rootless(&self) -> bool {
        self.namespace == UserNamespace::Rootless
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_maps() {
        let initial = "         0          0 4294967295\n";
        assert_eq!(UserNamespace::from_uid_map(initial), UserNamespace::Initial);
        for other in ["0 1000 1\n", "0 1000 1\n1 100000 65536\n", ""] {
            assert_eq!(
                UserNamespace::from_uid_map(other),
                UserNamespace::Inherited,
                "{other:?}"
            );
        }
    }

    #[test]
    fn what_each_kind_may_do() {
        let who = |uid, namespace| Privileges {
            uid,
            gid: uid,
            namespace,
        };
        let host_root = who(0, UserNamespace::Initial);
        assert!(host_root.can_chown() && host_root.is_host_root());
        assert!(!host_root.in_user_namespace() && !host_root.is_rootless());
        let rootless = who(0, UserNamespace::Rootless);
        assert!(rootless.can_chown() && !rootless.is_host_root());
        assert!(rootless.in_user_namespace() && rootless.is_rootless());
        let contained = who(0, UserNamespace::Inherited);
        assert!(contained.can_chown() && !contained.is_host_root());
        assert!(contained.in_user_namespace() && !contained.is_rootless());
        let user = who(1000, UserNamespace::Initial);
        assert!(!user.can_chown() && !user.is_host_root() && !user.in_user_namespace());
    }
}
