//! Building raw 512-byte ustar headers and PAX extended headers. Only what is needed goes into
//! PAX records (long names, large sizes/ids, xattrs); no uname/gname, atime or ctime ever.

/// Largest value of an 11-digit octal field (size, mtime).
pub const MAX_OCTAL_11: u64 = 0o77_777_777_777;
/// Largest value of a 7-digit octal field (uid, gid, device numbers).
pub const MAX_OCTAL_7: u64 = 0o7_777_777;

/// Type flags we write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
    Pax,
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::Char => b'3',
            Kind::Block => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
            Kind::Pax => b'x',
        }
    }
}

/// Everything that goes into one entry's header(s).
#[derive(Clone, Debug)]
pub struct EntryHeader {
    pub name: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
    pub dev_major: u64,
    pub dev_minor: u64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// Appends one PAX record (`"<len> key=value\n"`, len counting itself) to `out`.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while base + len.to_string().len() != len {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Splits a name into ustar (prefix, name) if it fits, without PAX.
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((&[], name));
    }
    if name.len() > 256 {
        return None;
    }
    // Find a '/' such that prefix <= 155 and rest <= 100 (rest must be non-empty).
    let start = name.len().saturating_sub(101);
    (start..name.len().min(156))
        .filter(|&i| name[i] == b'/')
        .find(|&i| name.len() - i - 1 <= 100 && i + 1 < name.len())
        .map(|i| (&name[..i], &name[i + 1..]))
}

fn octal(field: &mut [u8], value: u64) {
    // Zero-padded octal, NUL-terminated, filling field.len() - 1 digits.
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    let bytes = s.as_bytes();
    let bytes = &bytes[bytes.len().saturating_sub(digits)..];
    field[..digits].copy_from_slice(bytes);
    field[digits] = 0;
}

fn raw_header(
    name: &[u8],
    prefix: &[u8],
    link: &[u8],
    kind: Kind,
    h: &EntryHeader,
    size: u64,
) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    octal(&mut b[100..108], u64::from(h.mode & 0o7777));
    octal(
        &mut b[108..116],
        if h.uid > MAX_OCTAL_7 { 0 } else { h.uid },
    );
    octal(
        &mut b[116..124],
        if h.gid > MAX_OCTAL_7 { 0 } else { h.gid },
    );
    octal(&mut b[124..136], if size > MAX_OCTAL_11 { 0 } else { size });
    octal(&mut b[136..148], h.mtime.min(MAX_OCTAL_11));
    b[156] = kind.flag();
    b[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    if matches!(kind, Kind::Char | Kind::Block) {
        octal(&mut b[329..337], h.dev_major.min(MAX_OCTAL_7));
        octal(&mut b[337..345], h.dev_minor.min(MAX_OCTAL_7));
    }
    b[345..345 + prefix.len().min(155)].copy_from_slice(&prefix[..prefix.len().min(155)]);
    // Checksum: sum of all bytes with the checksum field taken as spaces.
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let s = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(s.as_bytes());
    b
}

/// Pads `len` bytes of data up to a 512-byte boundary: how many zero bytes follow.
pub fn padding(len: u64) -> usize {
    ((512 - (len % 512)) % 512) as usize
}

/// The bytes of the header block(s) for `h`: an optional PAX header plus its data, then the
/// ustar header. Data (for files) follows, padded with [`padding`].
pub fn encode(h: &EntryHeader) -> Vec<u8> {
    let mut pax = Vec::new();
    let (prefix, name) = match split_ustar(&h.name) {
        Some(split) => split,
        None => {
            pax_record(&mut pax, "path", &h.name);
            (&[][..], &h.name[..h.name.len().min(100)])
        }
    };
    let link: &[u8] = if h.link.len() > 100 {
        pax_record(&mut pax, "linkpath", &h.link);
        &h.link[..100]
    } else {
        &h.link
    };
    if h.size > MAX_OCTAL_11 {
        pax_record(&mut pax, "size", h.size.to_string().as_bytes());
    }
    if h.uid > MAX_OCTAL_7 {
        pax_record(&mut pax, "uid", h.uid.to_string().as_bytes());
    }
    if h.gid > MAX_OCTAL_7 {
        pax_record(&mut pax, "gid", h.gid.to_string().as_bytes());
    }
    for (k, v) in &h.xattrs {
        pax_record(&mut pax, &format!("SCHILY.xattr.{k}"), v);
    }
    let mut out = Vec::with_capacity(1024 + pax.len());
    if !pax.is_empty() {
        let mut pax_name = b"PaxHeaders/".to_vec();
        let base = h.name.rsplit(|&c| c == b'/').find(|s| !s.is_empty());
        pax_name.extend_from_slice(base.unwrap_or(b"entry"));
        pax_name.truncate(100);
        let ph = EntryHeader {
            mode: 0o644,
            uid: 0,
            gid: 0,
            xattrs: Vec::new(),
            ..h.clone()
        };
        out.extend_from_slice(&raw_header(
            &pax_name,
            &[],
            &[],
            Kind::Pax,
            &ph,
            pax.len() as u64,
        ));
        out.extend_from_slice(&pax);
        out.resize(out.len() + padding(pax.len() as u64), 0);
    }
    out.extend_from_slice(&raw_header(name, prefix, link, h.kind, h, h.size));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut v = Vec::new();
        pax_record(&mut v, "path", b"abc");
        assert_eq!(v, b"12 path=abc\n");
        let mut v = Vec::new();
        pax_record(&mut v, "path", &[b'a'; 95]);
        let text = String::from_utf8(v.clone()).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), v.len());
    }

    #[test]
    fn ustar_split_uses_prefix() {
        let name = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        let (p, n) = split_ustar(name.as_bytes()).unwrap();
        assert_eq!(p.len(), 120);
        assert_eq!(n.len(), 50);
        assert!(split_ustar(&[b'x'; 150]).is_none());
    }

    /// Names are bytes: short ones go into the ustar fields as they are, long ones into PAX
    /// records as they are (as Go's archive/tar writes them), and readers get them back.
    #[test]
    fn names_that_are_not_utf8_round_trip() {
        let long = [&b"d\xfc/"[..], &[b'\xff'; 300], b"/f"].concat();
        for (name, link) in [
            (b"f\xff\xfe".to_vec(), b"t\xfa".to_vec()),
            (long.clone(), long.clone()),
        ] {
            let h = EntryHeader {
                name: name.clone(),
                link: link.clone(),
                kind: Kind::Symlink,
                mode: 0o777,
                uid: 0,
                gid: 0,
                size: 0,
                mtime: 0,
                dev_major: 0,
                dev_minor: 0,
                xattrs: Vec::new(),
            };
            let mut bytes = encode(&h);
            bytes.resize(bytes.len() + 1024, 0);
            let mut archive = tar::Archive::new(bytes.as_slice());
            let mut entries = archive.entries().expect("entries");
            let entry = entries.next().expect("one entry").expect("readable");
            assert_eq!(entry.path_bytes().as_ref(), name.as_slice());
            assert_eq!(entry.link_name_bytes().as_deref(), Some(link.as_slice()));
        }
    }
}
