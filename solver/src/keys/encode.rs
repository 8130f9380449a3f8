//! The explicit encoding of op definitions into a cache key, field by field (the table in
//! [`super`] says what each op contributes and in which order).
//!
//! Each value is written as length-prefixed fields ([`Hasher::field`]), so no two different
//! definitions give the same byte stream:
//! - text and bytes: their bytes; numbers: 8 big-endian bytes; a flag: one byte 0 or 1;
//! - an optional value: a field `0` when absent, else a field `1` and the value;
//! - a list: its length, then each element;
//! - an enum: a field with the variant's name, then the variant's fields.
//!
//! Every struct is destructured whole, so a field added to the IR fails to compile here until
//! someone decides whether it belongs in the key (renaming a field or adding a serde attribute
//! changes nothing). Changing what an existing definition writes changes keys: raise
//! [`super::KEY_VERSION`] and update the golden keys.

use rbuild_graph::{
    BindMount, CacheMount, CacheSharing, CopyAction, ExecOp, FileAction, FileMode, FileOp, GitOp,
    HttpOp, MkdirAction, MkfileAction, Mount, MountFrom, NetworkMode, SecretMount, SecurityMode,
    SshMount, TmpfsMount,
};
use rbuild_types::{ByteString, Hasher};

/// A value written into a key.
pub(super) trait Encode {
    fn encode(&self, h: &mut Hasher);
}

impl Encode for str {
    fn encode(&self, h: &mut Hasher) {
        h.field(self.as_bytes());
    }
}

impl Encode for String {
    fn encode(&self, h: &mut Hasher) {
        h.field(self.as_bytes());
    }
}

impl Encode for ByteString {
    fn encode(&self, h: &mut Hasher) {
        h.field(self.as_bytes());
    }
}

impl Encode for [u8] {
    fn encode(&self, h: &mut Hasher) {
        h.field(self);
    }
}

impl Encode for u32 {
    fn encode(&self, h: &mut Hasher) {
        u64::from(*self).encode(h);
    }
}

impl Encode for u64 {
    fn encode(&self, h: &mut Hasher) {
        h.field(&self.to_be_bytes());
    }
}

impl Encode for usize {
    fn encode(&self, h: &mut Hasher) {
        (*self as u64).encode(h);
    }
}

impl Encode for bool {
    fn encode(&self, h: &mut Hasher) {
        h.field(&[u8::from(*self)]);
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, h: &mut Hasher) {
        match self {
            None => h.field(&[0]),
            Some(v) => {
                h.field(&[1]);
                v.encode(h);
            }
        }
    }
}

impl<T: Encode> Encode for [T] {
    fn encode(&self, h: &mut Hasher) {
        self.len().encode(h);
        for v in self {
            v.encode(h);
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, h: &mut Hasher) {
        self.as_slice().encode(h);
    }
}

/// Writes a variant's name.
fn tag(h: &mut Hasher, name: &str) {
    h.field(name.as_bytes());
}

impl Encode for ExecOp {
    fn encode(&self, h: &mut Hasher) {
        let ExecOp {
            args,
            env,
            cwd,
            user,
            network,
            mounts,
            security,
            // BuildKit's ProxyEnv: proxy build args reach the command but never the key.
            proxy_env: _,
        } = self;
        args.encode(h);
        env.encode(h);
        cwd.encode(h);
        user.encode(h);
        network.encode(h);
        mounts.encode(h);
        security.encode(h);
    }
}

impl Encode for NetworkMode {
    fn encode(&self, h: &mut Hasher) {
        tag(
            h,
            match self {
                NetworkMode::Default => "default",
                NetworkMode::None => "none",
                NetworkMode::Host => "host",
            },
        );
    }
}

impl Encode for SecurityMode {
    fn encode(&self, h: &mut Hasher) {
        tag(
            h,
            match self {
                SecurityMode::Sandbox => "sandbox",
                SecurityMode::Insecure => "insecure",
            },
        );
    }
}

impl Encode for Mount {
    fn encode(&self, h: &mut Hasher) {
        match self {
            Mount::Bind(m) => {
                tag(h, "bind");
                m.encode(h);
            }
            Mount::Cache(m) => {
                tag(h, "cache");
                m.encode(h);
            }
            Mount::Tmpfs(m) => {
                tag(h, "tmpfs");
                m.encode(h);
            }
            Mount::Secret(m) => {
                tag(h, "secret");
                m.encode(h);
            }
            Mount::Ssh(m) => {
                tag(h, "ssh");
                m.encode(h);
            }
        }
    }
}

impl Encode for BindMount {
    fn encode(&self, h: &mut Hasher) {
        let BindMount {
            target,
            source,
            path,
            readwrite,
        } = self;
        target.encode(h);
        source.encode(h);
        path.encode(h);
        readwrite.encode(h);
    }
}

impl Encode for CacheMount {
    fn encode(&self, h: &mut Hasher) {
        let CacheMount {
            target,
            id,
            sharing,
            from,
            subdir,
            readonly,
            mode,
            uid,
            gid,
        } = self;
        target.encode(h);
        id.encode(h);
        sharing.encode(h);
        from.encode(h);
        subdir.encode(h);
        readonly.encode(h);
        mode.encode(h);
        uid.encode(h);
        gid.encode(h);
    }
}

impl Encode for CacheSharing {
    fn encode(&self, h: &mut Hasher) {
        tag(
            h,
            match self {
                CacheSharing::Shared => "shared",
                CacheSharing::Private => "private",
                CacheSharing::Locked => "locked",
            },
        );
    }
}

impl Encode for MountFrom {
    fn encode(&self, h: &mut Hasher) {
        let MountFrom { source, path } = self;
        source.encode(h);
        path.encode(h);
    }
}

impl Encode for TmpfsMount {
    fn encode(&self, h: &mut Hasher) {
        let TmpfsMount { target, size } = self;
        target.encode(h);
        size.encode(h);
    }
}

impl Encode for SecretMount {
    fn encode(&self, h: &mut Hasher) {
        let SecretMount {
            id,
            target,
            env,
            required,
            mode,
            uid,
            gid,
        } = self;
        id.encode(h);
        target.encode(h);
        env.encode(h);
        required.encode(h);
        mode.encode(h);
        uid.encode(h);
        gid.encode(h);
    }
}

impl Encode for SshMount {
    fn encode(&self, h: &mut Hasher) {
        let SshMount {
            id,
            target,
            required,
            mode,
            uid,
            gid,
        } = self;
        id.encode(h);
        target.encode(h);
        required.encode(h);
        mode.encode(h);
        uid.encode(h);
        gid.encode(h);
    }
}

impl Encode for FileOp {
    fn encode(&self, h: &mut Hasher) {
        let FileOp { actions } = self;
        actions.encode(h);
    }
}

impl Encode for FileAction {
    fn encode(&self, h: &mut Hasher) {
        match self {
            FileAction::Copy(a) => {
                tag(h, "copy");
                a.encode(h);
            }
            FileAction::Mkdir(a) => {
                tag(h, "mkdir");
                a.encode(h);
            }
            FileAction::Mkfile(a) => {
                tag(h, "mkfile");
                a.encode(h);
            }
        }
    }
}

impl Encode for CopyAction {
    fn encode(&self, h: &mut Hasher) {
        let CopyAction {
            source,
            src,
            dest,
            chown,
            chmod,
            allow_empty_wildcard,
            unpack,
            exclude,
            parents,
        } = self;
        source.encode(h);
        src.encode(h);
        dest.encode(h);
        chown.encode(h);
        chmod.encode(h);
        allow_empty_wildcard.encode(h);
        unpack.encode(h);
        exclude.encode(h);
        parents.encode(h);
    }
}

impl Encode for FileMode {
    fn encode(&self, h: &mut Hasher) {
        match self {
            FileMode::Octal(m) => {
                tag(h, "octal");
                m.encode(h);
            }
            FileMode::Symbolic(s) => {
                tag(h, "symbolic");
                s.encode(h);
            }
        }
    }
}

impl Encode for MkdirAction {
    fn encode(&self, h: &mut Hasher) {
        let MkdirAction {
            path,
            mode,
            parents,
            chown,
        } = self;
        path.encode(h);
        mode.encode(h);
        parents.encode(h);
        chown.encode(h);
    }
}

impl Encode for MkfileAction {
    fn encode(&self, h: &mut Hasher) {
        let MkfileAction {
            path,
            data,
            mode,
            chown,
        } = self;
        path.encode(h);
        data.as_slice().encode(h);
        mode.encode(h);
        chown.encode(h);
    }
}

impl Encode for HttpOp {
    fn encode(&self, h: &mut Hasher) {
        let HttpOp {
            url,
            filename,
            checksum,
        } = self;
        url.encode(h);
        filename.encode(h);
        checksum.encode(h);
    }
}

impl Encode for GitOp {
    fn encode(&self, h: &mut Hasher) {
        let GitOp {
            remote,
            reference,
            subdir,
            keep_git_dir,
            checksum,
        } = self;
        remote.encode(h);
        reference.encode(h);
        subdir.encode(h);
        keep_git_dir.encode(h);
        checksum.encode(h);
    }
}
