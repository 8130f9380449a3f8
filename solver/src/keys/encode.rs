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
//! Every struct is destructured whole (by `encode_fields!` or by hand), so a field added to the
//! IR fails to compile here until someone decides whether it belongs in the key (renaming a
//! field or adding a serde attribute changes nothing). Changing what an existing definition writes changes keys: raise
//! [`super::KEY_VERSION`] and update the golden keys.

use rbuild_graph::{
    BindMount, CacheMount, CacheSharing, CopyAction, ExecMeta, ExecOp, FileAction, FileMode,
    FileOp, GitOp, HostIp, HttpOp, MkdirAction, MkfileAction, Mount, MountFrom, NetworkMode,
    SecretMount, SecurityMode, SshMount, TmpfsMount, Ulimit, UlimitName,
};
use rbuild_types::{ByteString, Hasher, Platform};

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

/// `os/arch[/variant]`, as written in `--platform`.
impl Encode for Platform {
    fn encode(&self, h: &mut Hasher) {
        self.to_string().encode(h);
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

/// Implements [`Encode`] for a struct: its fields in the order listed. The pattern names every
/// field (those after `skip` are left out of the key), so a field added to the IR fails to
/// compile here until it is listed.
macro_rules! encode_fields {
    ($ty:ident: $($field:ident),+ $(; skip $($skip:ident),+)?) => {
        impl Encode for $ty {
            fn encode(&self, h: &mut Hasher) {
                let $ty { $($field,)* $($($skip: _,)*)? } = self;
                $($field.encode(h);)*
            }
        }
    };
}

/// Implements [`Encode`] for an enum: the variant's name ([`tag`]), then its one field if it
/// has one.
macro_rules! encode_variants {
    ($ty:ident { $($variant:ident $(($inner:ident))? => $name:literal),* $(,)? }) => {
        impl Encode for $ty {
            fn encode(&self, h: &mut Hasher) {
                match self {
                    $($ty::$variant $(($inner))? => {
                        tag(h, $name);
                        $($inner.encode(h);)?
                    })*
                }
            }
        }
    };
}

// BuildKit's ProxyEnv: proxy build args reach the command but never the key.
encode_fields!(ExecOp: platform, args, env, cwd, user, network, mounts, security, meta; skip proxy_env);

/// By hand: a default `meta` (no `--add-host`, `--ulimit`, `--shm-size`) writes nothing, as an
/// empty protobuf field adds no bytes to BuildKit's op digest, so RUNs built without these flags
/// keep the keys they had before the field existed (no KEY_VERSION change). Otherwise a `meta`
/// tag, then the fields; the tag cannot be read as what follows an exec op in a key (input
/// keys: digests, or `context`).
impl Encode for ExecMeta {
    fn encode(&self, h: &mut Hasher) {
        if self.is_default() {
            return;
        }
        let ExecMeta {
            extra_hosts,
            ulimits,
            shm_size,
        } = self;
        tag(h, "meta");
        extra_hosts.encode(h);
        ulimits.encode(h);
        shm_size.encode(h);
    }
}

/// The IP in its canonical text (`::1`, not `0:0:0:0:0:0:0:1`).
impl Encode for HostIp {
    fn encode(&self, h: &mut Hasher) {
        let HostIp { host, ip } = self;
        host.encode(h);
        ip.to_string().encode(h);
    }
}

encode_fields!(Ulimit: name, soft, hard);

impl Encode for UlimitName {
    fn encode(&self, h: &mut Hasher) {
        tag(h, self.as_str());
    }
}

encode_variants!(NetworkMode {
    Default => "default",
    None => "none",
    Host => "host",
});

encode_variants!(SecurityMode {
    Sandbox => "sandbox",
    Insecure => "insecure",
});

encode_variants!(Mount {
    Bind(m) => "bind",
    Cache(m) => "cache",
    Tmpfs(m) => "tmpfs",
    Secret(m) => "secret",
    Ssh(m) => "ssh",
});

encode_fields!(BindMount: target, source, path, readwrite);

encode_fields!(CacheMount: target, id, sharing, from, subdir, readonly, mode, uid, gid);

encode_variants!(CacheSharing {
    Shared => "shared",
    Private => "private",
    Locked => "locked",
});

encode_fields!(MountFrom: source, path);

encode_fields!(TmpfsMount: target, size);

encode_fields!(SecretMount: id, target, env, required, mode, uid, gid);

encode_fields!(SshMount: id, target, required, mode, uid, gid);

encode_fields!(FileOp: actions);

encode_variants!(FileAction {
    Copy(a) => "copy",
    Mkdir(a) => "mkdir",
    Mkfile(a) => "mkfile",
});

encode_fields!(
    CopyAction: source, src, dest, chown, chmod, allow_empty_wildcard, unpack, exclude, parents
);

encode_variants!(FileMode {
    Octal(m) => "octal",
    Symbolic(s) => "symbolic",
});

encode_fields!(MkdirAction: path, mode, parents, chown);

/// By hand: `data` is one field of bytes, not a list of numbers.
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

encode_fields!(HttpOp: url, filename, checksum);

encode_fields!(GitOp: remote, reference, subdir, keep_git_dir, checksum);
