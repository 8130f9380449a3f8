//! `RUN --mount=…` values: BuildKit's CSV grammar (`type=cache,target=/c,sharing=locked`),
//! typed, with BuildKit's per-type defaults and validation.
//!
//! BuildKit reads a mount twice: once when the instruction is parsed (values unexpanded;
//! only `from` is checked, it may not use variables) and once at dispatch with every value
//! expanded. [`check_unexpanded`] is the first pass, [`Mount::parse`] the second.

use super::error::MountError;

/// The kind of mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    /// The name as written in a Dockerfile.
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share a cache mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One parsed `--mount`. Invariants (checked by [`Mount::parse`]): `mode`/`uid`/`gid` only on
/// cache, secret and ssh mounts; `sharing` only on cache mounts; `size` only on tmpfs;
/// `required` only on secret/ssh; `env` only on secret; a secret has no `from` and names
/// at least one of source/target/id/env.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub typ: MountType,
    /// `target`/`dst`/`destination`.
    pub target: Option<String>,
    /// `source`/`src`.
    pub source: Option<String>,
    /// `from`: a stage, image or context.
    pub from: Option<String>,
    /// After defaults: true for bind/secret/ssh, false for cache/tmpfs unless given.
    pub read_only: bool,
    /// `id` (cache id, secret id, ssh id).
    pub id: Option<String>,
    /// `sharing`; cache mounts default to `Shared`.
    pub sharing: Option<Sharing>,
    /// `mode` (octal).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `size` of a tmpfs in bytes.
    pub size: Option<u64>,
    /// `required` (secret/ssh): fail when the secret/agent is not provided.
    pub required: bool,
    /// `env` (secret): expose the secret as this environment variable.
    pub env: Option<String>,
}

impl Mount {
    fn new() -> Self {
        Mount {
            typ: MountType::Bind,
            target: None,
            source: None,
            from: None,
            read_only: true,
            id: None,
            sharing: None,
            mode: None,
            uid: None,
            gid: None,
            size: None,
            required: false,
            env: None,
        }
    }

    /// Parses one `--mount` value, expanding every value with `expand` first.
    pub fn parse(
        raw: &str,
        expand: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<Mount, MountError> {
        let mut m = Mount::new();
        let mut ro_auto = true;
        for field in csv_fields(raw)? {
            let (key, value) = match field.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
                None => (field.to_ascii_lowercase(), None),
            };
            let Some(value) = value else {
                match key.as_str() {
                    "readonly" | "ro" => m.read_only = true,
                    "readwrite" | "rw" => m.read_only = false,
                    "required" => {
                        if !matches!(m.typ, MountType::Secret | MountType::Ssh) {
                            return Err(unexpected(&key, m.typ));
                        }
                        m.required = true;
                        continue;
                    }
                    _ => return Err(MountError::NotKeyValue { field }),
                }
                ro_auto = false;
                continue;
            };
            let value = expand(value).map_err(|message| MountError::Expand { message })?;
            match key.as_str() {
                "type" => {
                    m.typ = match value.to_ascii_lowercase().as_str() {
                        "bind" => MountType::Bind,
                        "cache" => MountType::Cache,
                        "tmpfs" => MountType::Tmpfs,
                        "secret" => MountType::Secret,
                        "ssh" => MountType::Ssh,
                        _ => return Err(MountError::BadType { value }),
                    }
                }
                "from" => m.from = Some(value),
                "source" | "src" => m.source = Some(value),
                "target" | "dst" | "destination" => m.target = Some(value),
                "readonly" | "ro" => {
                    m.read_only = go_bool(&value).ok_or(bad(&key, &value))?;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.read_only = !go_bool(&value).ok_or(bad(&key, &value))?;
                    ro_auto = false;
                }
                "required" => {
                    if !matches!(m.typ, MountType::Secret | MountType::Ssh) {
                        return Err(unexpected(&key, m.typ));
                    }
                    m.required = go_bool(&value).ok_or(bad(&key, &value))?;
                }
                "size" => {
                    if m.typ != MountType::Tmpfs {
                        return Err(unexpected(&key, m.typ));
                    }
                    m.size = Some(ram_in_bytes(&value).ok_or(bad(&key, &value))?);
                }
                "env" => {
                    if m.typ != MountType::Secret {
                        return Err(unexpected(&key, m.typ));
                    }
                    m.env = Some(value);
                }
                "id" => m.id = Some(value),
                "sharing" => {
                    m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                        "shared" => Sharing::Shared,
                        "private" => Sharing::Private,
                        "locked" => Sharing::Locked,
                        _ => return Err(MountError::BadSharing { value }),
                    })
                }
                "mode" => m.mode = Some(go_uint(&value, 8).ok_or(bad(&key, &value))?),
                "uid" => m.uid = Some(go_uint(&value, 10).ok_or(bad(&key, &value))?),
                "gid" => m.gid = Some(go_uint(&value, 10).ok_or(bad(&key, &value))?),
                _ => return Err(MountError::UnknownKey { key, field }),
            }
        }
        m.validate(ro_auto)?;
        Ok(m)
    }

    /// BuildKit's `validateMount` plus the per-type defaults.
    fn validate(&mut self, ro_auto: bool) -> Result<(), MountError> {
        let typ = self.typ;
        let file_info = matches!(typ, MountType::Secret | MountType::Ssh | MountType::Cache);
        if !file_info {
            for (key, set) in [
                ("mode", self.mode.is_some()),
                ("uid", self.uid.is_some()),
                ("gid", self.gid.is_some()),
            ] {
                if set {
                    return Err(MountError::NotAllowed {
                        key,
                        typ: typ.as_str(),
                    });
                }
            }
        }
        if ro_auto {
            self.read_only = !matches!(typ, MountType::Cache | MountType::Tmpfs);
        }
        if typ == MountType::Secret {
            if self.from.is_some() {
                return Err(MountError::Secret("secret mount should not have a from"));
            }
            if self.sharing.is_some() {
                return Err(MountError::Secret("secret mount should not define sharing"));
            }
            if self.source.is_none()
                && self.target.is_none()
                && self.id.is_none()
                && self.env.is_none()
            {
                return Err(MountError::Secret(
                    "invalid secret mount. one of source, target required",
                ));
            }
            if self.source.is_some() && self.id.is_some() {
                return Err(MountError::Secret("both source and id can't be set"));
            }
        }
        if self.sharing.is_some() && typ != MountType::Cache {
            return Err(MountError::SharingNotCache { typ: typ.as_str() });
        }
        if typ == MountType::Cache && self.sharing.is_none() {
            self.sharing = Some(Sharing::Shared);
        }
        Ok(())
    }
}

/// The parse-time pass: the CSV must be well formed and `from` may not use variables.
pub fn check_unexpanded(raw: &str) -> Result<(), MountError> {
    for field in csv_fields(raw)? {
        if let Some((k, v)) = field.split_once('=') {
            let dollar = v.find('$').is_some_and(|i| i + 1 < v.len());
            if k.eq_ignore_ascii_case("from") && dollar {
                return Err(MountError::FromVariable);
            }
        }
    }
    Ok(())
}

/// The `from` of a mount as written (the last one wins, as in BuildKit), read before
/// expansion: the plan needs it to order and prune stages, and [`check_unexpanded`] has
/// made sure it uses no variables.
pub fn raw_from(raw: &str) -> Result<Option<String>, MountError> {
    let mut from = None;
    for field in csv_fields(raw)? {
        if let Some((k, v)) = field.split_once('=') {
            if k.eq_ignore_ascii_case("from") {
                from = Some(v.to_string());
            }
        }
    }
    Ok(from)
}

fn unexpected(key: &str, typ: MountType) -> MountError {
    MountError::UnexpectedKey {
        key: key.to_string(),
        typ: typ.as_str(),
    }
}

fn bad(key: &str, value: &str) -> MountError {
    MountError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// Go's `strconv.ParseBool`.
pub fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(s, radix, 32)`: digits only (no sign), fits in 32 bits.
fn go_uint(s: &str, radix: u32) -> Option<u32> {
    if s.is_empty() || !s.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(s, radix).ok()
}

/// docker/go-units `RAMInBytes`: `512`, `64m`, `1.5g`, `2GiB`, `10 kb` (binary multiples).
pub fn ram_in_bytes(s: &str) -> Option<u64> {
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_len);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.contains("..") {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let mut chars = unit.chars();
    let prefix = chars.next();
    let rest: String = chars.collect();
    let (shift, rest) = match prefix {
        None => (0, String::new()),
        Some('k') => (10, rest),
        Some('m') => (20, rest),
        Some('g') => (30, rest),
        Some('t') => (40, rest),
        Some('p') => (50, rest),
        Some('b') if rest.is_empty() => (0, String::new()),
        _ => return None,
    };
    if !matches!(rest.as_str(), "" | "b" | "i" | "ib") {
        return None;
    }
    let bytes = value * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// One CSV record (Go's `encoding/csv` rules for a single line): fields split on `,`, a
/// field starting with `"` is quoted (`""` is a literal quote), a bare `"` elsewhere is an
/// error.
fn csv_fields(raw: &str) -> Result<Vec<String>, MountError> {
    let mut out = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(MountError::Csv("extraneous or missing \" in quoted-field"))
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => out.push(field),
                Some(_) => return Err(MountError::Csv("extraneous or missing \" in quoted-field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                    Some(',') => break,
                    Some('"') => return Err(MountError::Csv("bare \" in non-quoted-field")),
                    Some(c) => field.push(c),
                }
            }
            out.push(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Mount, MountError> {
        Mount::parse(raw, &mut |v| Ok(v.to_string()))
    }

    #[test]
    fn defaults_per_type() {
        let m = parse("target=/src").unwrap();
        assert_eq!(m.typ, MountType::Bind);
        assert!(m.read_only);
        let c = parse("type=cache,dst=/root/.cache,uid=1000,mode=0755").unwrap();
        assert!(!c.read_only);
        assert_eq!(c.sharing, Some(Sharing::Shared));
        assert_eq!((c.uid, c.mode), (Some(1000), Some(0o755)));
        let t = parse("type=tmpfs,destination=/t,size=64m").unwrap();
        assert_eq!(t.size, Some(64 << 20));
        assert!(!t.read_only);
        let s = parse("type=secret,id=tok,env=TOKEN,required").unwrap();
        assert!(s.required && s.read_only);
        assert_eq!(s.env.as_deref(), Some("TOKEN"));
        let b = parse("type=bind,from=build,source=/out,target=/in,rw").unwrap();
        assert!(!b.read_only);
        assert_eq!(b.from.as_deref(), Some("build"));
        let q = parse("type=cache,\"target=/a,b\",sharing=LOCKED").unwrap();
        assert_eq!(q.target.as_deref(), Some("/a,b"));
        assert_eq!(q.sharing, Some(Sharing::Locked));
        assert!(parse("type=ssh,required=true").unwrap().required);
    }

    #[test]
    fn rejects_what_buildkit_rejects() {
        for bad in [
            "type=nfs,target=/x",
            "target=/x,bogus=1",
            "target=/x,mode=0755",
            "type=cache,target=/x,mode=9",
            "type=cache,target=/x,uid=-1",
            "type=cache,target=/x,uid=+1",
            "type=cache,target=/x,sharing=sometimes",
            "target=/x,sharing=locked",
            "type=secret",
            "type=secret,id=a,source=b",
            "type=secret,id=a,from=x",
            "type=secret,id=a,sharing=locked",
            "type=tmpfs,target=/t,size=lots",
            "type=cache,target=/t,size=1m",
            "target=/x,required",
            "type=cache,target=/x,env=A",
            "target=/x,ro=maybe",
            "target=/x,nokey",
            "target=/x\"y",
            "\"target=/x",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
        assert!(check_unexpanded("type=bind,from=$STAGE,target=/x").is_err());
        assert!(check_unexpanded("type=bind,from=stage,target=$T").is_ok());
        assert_eq!(
            raw_from("type=bind,FROM=a,target=/x,from=b").unwrap(),
            Some("b".into())
        );
        assert_eq!(raw_from("type=cache,target=/x").unwrap(), None);
        assert!(raw_from("\"from=a").is_err());
    }

    #[test]
    fn units() {
        assert_eq!(ram_in_bytes("512"), Some(512));
        assert_eq!(ram_in_bytes("1.5k"), Some(1536));
        assert_eq!(ram_in_bytes("2GiB"), Some(2 << 30));
        assert_eq!(ram_in_bytes("10 mb"), Some(10 << 20));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(ram_in_bytes("1q"), None);
    }
}
