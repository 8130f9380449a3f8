//! Which platforms a RUN can execute here, and how: natively (the host's architecture, and
//! the 32-bit one an x86-64 or arm64 kernel runs as well), or through a registered binfmt_misc
//! handler (QEMU user-mode emulation, as Debian's `qemu-user-static` registers it). What cannot
//! run comes with how to enable it. `rbuild debug platforms` prints this; the build will use it
//! to refuse, with that explanation, a RUN it could only run as the wrong architecture.
//!
//! A handler is matched to an architecture by the ELF `e_machine` (and class and byte order)
//! in its magic, not by its name, so a handler registered under any name is found.

use std::path::{Path, PathBuf};

use rbuild_types::Platform;

/// Where the kernel lists binfmt_misc handlers (when that filesystem is mounted).
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The Linux platforms rbuild knows how to name, in the order they are listed.
pub const KNOWN: &[(&str, Option<&str>)] = &[
    ("amd64", None),
    ("arm64", None),
    ("386", None),
    ("arm", Some("v7")),
    ("arm", Some("v6")),
    ("riscv64", None),
    ("ppc64le", None),
    ("s390x", None),
    ("mips64le", None),
];

/// How a platform's binaries run here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunsBy {
    /// The CPU runs them itself.
    Native,
    /// A binfmt_misc handler runs them: its name and interpreter; `fix_binary` (flag `F`)
    /// means the kernel opened the interpreter at registration, so it works inside the
    /// sandbox's root, where the interpreter's path does not exist.
    Emulator {
        handler: String,
        interpreter: PathBuf,
        fix_binary: bool,
    },
    /// Nothing runs them.
    Unavailable(Missing),
}

/// Why a platform cannot run here, each with how to enable it ([`Missing::how_to_enable`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// `/proc/sys/fs/binfmt_misc` is not mounted.
    BinfmtNotMounted,
    /// binfmt_misc is mounted but no enabled handler takes this architecture.
    NoHandler,
    /// A handler exists but lacks the `F` flag: its interpreter would be looked up inside the
    /// sandbox's root, where it does not exist.
    HandlerWithoutFixBinary,
}

impl Missing {
    /// What a person does about it (as root).
    pub fn how_to_enable(self) -> &'static str {
        match self {
            Missing::BinfmtNotMounted => {
                "mount binfmt_misc (mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc), \
                 then install Debian's qemu-user-static and register its handlers (systemd does \
                 at boot; without it: /lib/systemd/systemd-binfmt /usr/lib/binfmt.d/qemu-*.conf)"
            }
            Missing::NoHandler => {
                "install Debian's qemu-user-static (apt-get install qemu-user-static) and register \
                 its handlers (systemd does at boot; without it: /lib/systemd/systemd-binfmt \
                 /usr/lib/binfmt.d/qemu-*.conf)"
            }
            Missing::HandlerWithoutFixBinary => {
                "re-register the handler with the F (fix binary) flag, as qemu-user-static's \
                 own registration does (update-binfmts --enable, or systemd-binfmt)"
            }
        }
    }
}

/// One platform and how it runs here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformSupport {
    pub platform: Platform,
    pub runs_by: RunsBy,
}

/// Every [`KNOWN`] platform and how it runs on this machine, read from `binfmt_dir`
/// (normally [`BINFMT_DIR`]).
pub fn detect(binfmt_dir: &Path) -> Vec<PlatformSupport> {
    let host = Platform::host();
    let handlers = read_handlers(binfmt_dir);
    KNOWN
        .iter()
        .map(|(arch, variant)| {
            let platform = Platform {
                os: "linux".into(),
                architecture: (*arch).into(),
                variant: variant.map(str::to_string),
            };
            let runs_by = if runs_natively(&host.architecture, arch) {
                RunsBy::Native
            } else {
                match &handlers {
                    None => RunsBy::Unavailable(Missing::BinfmtNotMounted),
                    Some(list) => by_handler(list, arch),
                }
            };
            PlatformSupport { platform, runs_by }
        })
        .collect()
}

/// How `platform`'s binaries run here, read from `binfmt_dir` (normally [`BINFMT_DIR`]); the
/// binfmt_misc handlers are only read for a platform the CPU does not run itself.
pub fn runs_by(platform: &Platform, binfmt_dir: &Path) -> RunsBy {
    if runs_natively(&Platform::host().architecture, &platform.architecture) {
        return RunsBy::Native;
    }
    match read_handlers(binfmt_dir) {
        None => RunsBy::Unavailable(Missing::BinfmtNotMounted),
        Some(list) => by_handler(&list, &platform.architecture),
    }
}

/// A RUN for `platform` may go ahead: natively or through an emulator; else the error that
/// says how to enable it.
pub fn check_runnable(platform: &Platform) -> Result<(), rbuild_ports::ExecError> {
    match runs_by(platform, Path::new(BINFMT_DIR)) {
        RunsBy::Native | RunsBy::Emulator { .. } => Ok(()),
        RunsBy::Unavailable(missing) => Err(rbuild_ports::ExecError::Platform {
            platform: platform.to_string(),
            host: Platform::host().to_string(),
            remedy: missing.how_to_enable(),
        }),
    }
}

/// Whether a CPU of `host` runs `arch` binaries itself (the 32-bit compatibility modes of
/// x86-64 and arm64 kernels).
fn runs_natively(host: &str, arch: &str) -> bool {
    host == arch || matches!((host, arch), ("amd64", "386") | ("arm64", "arm"))
}

fn by_handler(handlers: &[Handler], arch: &str) -> RunsBy {
    let mut without_f = false;
    for h in handlers
        .iter()
        .filter(|h| h.enabled && h.arch == Some(arch))
    {
        if h.fix_binary {
            return RunsBy::Emulator {
                handler: h.name.clone(),
                interpreter: h.interpreter.clone(),
                fix_binary: true,
            };
        }
        without_f = true;
    }
    RunsBy::Unavailable(if without_f {
        Missing::HandlerWithoutFixBinary
    } else {
        Missing::NoHandler
    })
}

/// A registered binfmt_misc handler, as its file in the binfmt_misc directory says.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Handler {
    name: String,
    enabled: bool,
    interpreter: PathBuf,
    fix_binary: bool,
    /// The architecture whose ELF binaries it takes, when its magic is an ELF header.
    arch: Option<&'static str>,
}

/// The handlers of `dir`, or `None` when binfmt_misc is not mounted there.
fn read_handlers(dir: &Path) -> Option<Vec<Handler>> {
    if !dir.join("status").exists() {
        return None;
    }
    let entries = std::fs::read_dir(dir).ok()?;
    let mut out: Vec<Handler> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "status" || name == "register" {
                return None;
            }
            let text = std::fs::read_to_string(e.path()).ok()?;
            Some(parse_handler(&name, &text))
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Some(out)
}

/// Parses a handler file (`enabled`, `interpreter …`, `flags: …`, `offset …`, `magic …`).
fn parse_handler(name: &str, text: &str) -> Handler {
    let mut h = Handler {
        name: name.to_string(),
        enabled: false,
        interpreter: PathBuf::new(),
        fix_binary: false,
        arch: None,
    };
    let mut offset = 0usize;
    let mut magic = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "enabled" {
            h.enabled = true;
        } else if let Some(v) = line.strip_prefix("interpreter ") {
            h.interpreter = PathBuf::from(v.trim());
        } else if let Some(v) = line.strip_prefix("flags:") {
            h.fix_binary = v.trim().contains('F');
        } else if let Some(v) = line.strip_prefix("offset ") {
            offset = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("magic ") {
            magic = hex(v.trim());
        }
    }
    if offset == 0 {
        h.arch = magic.as_deref().and_then(elf_arch);
    }
    h
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The OCI architecture of an ELF header prefix: class (byte 4), byte order (byte 5) and
/// `e_machine` (bytes 18–19, in that byte order). `None` for anything else.
fn elf_arch(magic: &[u8]) -> Option<&'static str> {
    if magic.len() < 20 || &magic[..4] != b"\x7fELF" {
        return None;
    }
    let (class64, little) = (magic[4] == 2, magic[5] == 1);
    let machine = if little {
        u16::from_le_bytes([magic[18], magic[19]])
    } else {
        u16::from_be_bytes([magic[18], magic[19]])
    };
    Some(match (machine, class64, little) {
        (0x3e, true, true) => "amd64",
        (0x03, false, true) => "386",
        (0xb7, true, true) => "arm64",
        (0x28, false, true) => "arm",
        (0xf3, true, true) => "riscv64",
        (0x15, true, true) => "ppc64le",
        (0x16, true, false) => "s390x",
        (0x08, true, true) => "mips64le",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Debian 12's qemu-user-static registers for aarch64 (its magic and mask).
    const QEMU_AARCH64: &str = "enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POCF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
";

    #[test]
    fn a_qemu_handler_is_matched_by_its_elf_machine() {
        let h = parse_handler("qemu-aarch64", QEMU_AARCH64);
        assert!(h.enabled && h.fix_binary);
        assert_eq!(h.arch, Some("arm64"));
        assert_eq!(
            h.interpreter,
            Path::new("/usr/libexec/qemu-binfmt/aarch64-binfmt-P")
        );
        let renamed = parse_handler("anything", QEMU_AARCH64);
        assert_eq!(renamed.arch, Some("arm64"));
    }

    #[test]
    fn other_machines_and_byte_orders() {
        let s390x = "7f454c4602020100000000000000000000020016";
        assert_eq!(elf_arch(&hex(s390x).expect("hex")), Some("s390x"));
        let armhf = "7f454c460101010000000000000000000200 2800".replace(' ', "");
        assert_eq!(elf_arch(&hex(&armhf).expect("hex")), Some("arm"));
        assert_eq!(elf_arch(b"MZ\x90\x00"), None);
        assert_eq!(hex("7f4"), None);
        assert_eq!(hex("zz"), None);
    }

    #[test]
    fn a_handler_without_f_or_disabled_does_not_count() {
        let no_f = QEMU_AARCH64.replace("flags: POCF", "flags: OC");
        let disabled = QEMU_AARCH64.replace("enabled", "disabled");
        assert_eq!(
            by_handler(&[parse_handler("a", &no_f)], "arm64"),
            RunsBy::Unavailable(Missing::HandlerWithoutFixBinary)
        );
        assert_eq!(
            by_handler(&[parse_handler("a", &disabled)], "arm64"),
            RunsBy::Unavailable(Missing::NoHandler)
        );
    }

    #[test]
    fn one_platform_runs_natively_or_by_its_handler_or_not_at_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Platform::host();
        assert_eq!(runs_by(&host, &dir.path().join("absent")), RunsBy::Native);
        let foreign: Platform = if host.architecture == "s390x" {
            "linux/riscv64"
        } else {
            "linux/s390x"
        }
        .parse()
        .expect("platform");
        assert_eq!(
            runs_by(&foreign, &dir.path().join("absent")),
            RunsBy::Unavailable(Missing::BinfmtNotMounted)
        );
        std::fs::write(dir.path().join("status"), "enabled\n").expect("status");
        assert_eq!(
            runs_by(&foreign, dir.path()),
            RunsBy::Unavailable(Missing::NoHandler)
        );
        // The refusal names both platforms and the remedy.
        if !matches!(
            runs_by(&foreign, Path::new(BINFMT_DIR)),
            RunsBy::Unavailable(_)
        ) {
            return;
        }
        let err = check_runnable(&foreign)
            .expect_err("no emulator")
            .to_string();
        assert!(
            err.contains(&foreign.to_string()) && err.contains(&host.to_string()),
            "{err}"
        );
        assert!(err.contains("rbuild debug platforms"), "{err}");
    }

    #[test]
    fn detection_reads_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let listed = detect(&dir.path().join("absent"));
        let host = Platform::host().architecture;
        for p in &listed {
            let native = runs_natively(&host, &p.platform.architecture);
            let expected = if native {
                RunsBy::Native
            } else {
                RunsBy::Unavailable(Missing::BinfmtNotMounted)
            };
            assert_eq!(p.runs_by, expected, "{:?}", p.platform);
        }
        std::fs::write(dir.path().join("status"), "enabled\n").expect("status");
        std::fs::write(dir.path().join("register"), "").expect("register");
        std::fs::write(dir.path().join("qemu-aarch64"), QEMU_AARCH64).expect("handler");
        let listed = detect(dir.path());
        let arm64 = listed
            .iter()
            .find(|p| p.platform.architecture == "arm64")
            .expect("arm64 listed");
        if host != "arm64" {
            assert!(
                matches!(&arm64.runs_by, RunsBy::Emulator { handler, .. } if handler == "qemu-aarch64")
            );
        }
        let riscv = listed
            .iter()
            .find(|p| p.platform.architecture == "riscv64")
            .expect("riscv64 listed");
        if host != "riscv64" {
            assert_eq!(riscv.runs_by, RunsBy::Unavailable(Missing::NoHandler));
        }
    }
}
