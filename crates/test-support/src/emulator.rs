//! Running another architecture's binaries here: [`require_emulator`] makes sure a
//! binfmt_misc handler (QEMU user-mode emulation, Debian's `qemu-user-static`) runs them, or
//! skips loudly ([`crate::skip`]) saying what to install.
//!
//! Where the handler is missing but qemu-user-static is installed, and we are root, it is
//! registered the way `systemd-binfmt` does (which needs systemd, absent here): the package's
//! `/usr/lib/binfmt.d/qemu-<arch>.conf` line is written to the kernel's `register` file. That
//! line carries the `F` (fix binary) flag: the kernel opens the interpreter at registration,
//! so it works inside a sandbox's root, where the interpreter's path does not exist; a handler
//! without `F` does not count. Registering is for the whole machine (and every test process on
//! it); nothing here ever unregisters or changes an existing handler.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::skip::{is_root, require};

/// Where the kernel lists binfmt_misc handlers.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// Where Debian's qemu-user-static puts its systemd-binfmt lines.
pub const BINFMT_D: &str = "/usr/lib/binfmt.d";

/// The ELF identification of a QEMU/`uname -m` architecture name: (64-bit, little-endian,
/// `e_machine`).
fn elf_of(arch: &str) -> Option<(bool, bool, u16)> {
    Some(match arch {
        "x86_64" => (true, true, 0x3e),
        "aarch64" => (true, true, 0xb7),
        "arm" => (false, true, 0x28),
        "riscv64" => (true, true, 0xf3),
        "ppc64le" => (true, true, 0x15),
        "s390x" => (true, false, 0x16),
        _ => return None,
    })
}

/// How binaries of `arch` run here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Emulation {
    /// The CPU runs them itself.
    Native,
    /// This enabled handler with the `F` flag runs them.
    Handler(String),
    /// binfmt_misc is not mounted (and could not be).
    NotMounted,
    /// No enabled handler takes them.
    Missing,
    /// A handler takes them but lacks the `F` flag (or is disabled): its name.
    Unusable(String),
}

/// Whether binaries of `arch` (a `uname -m` name: `aarch64`, `x86_64`, `riscv64`, ...) run
/// here: natively, or through an enabled binfmt_misc handler with the `F` flag — mounting
/// binfmt_misc and registering qemu-user-static's handler first where that is missing and we
/// are root. Otherwise a loud skip that says what to install or do (a failure under
/// `RBUILD_REQUIRE_ALL=1`).
#[track_caller]
pub fn require_emulator(arch: &str) -> bool {
    let state = ensure_emulator(arch);
    let conf = conf_of(arch);
    let advice = match &state {
        Emulation::Native | Emulation::Handler(_) => String::new(),
        Emulation::NotMounted => format!(
            "binfmt_misc mounted at {BINFMT_DIR} (as root: mount -t binfmt_misc binfmt_misc \
             {BINFMT_DIR})"
        ),
        Emulation::Missing if elf_of(arch).is_none() => {
            format!("an ELF machine for {arch} in rbuild_test_support::emulator (none known)")
        }
        Emulation::Missing if conf.is_file() => format!(
            "a binfmt_misc handler for {arch} (as root: grep -v '^#' {} > {BINFMT_DIR}/register; \
             the kernel refused it here, or we are not root)",
            conf.display()
        ),
        Emulation::Missing => format!(
            "a binfmt_misc handler for {arch}: apt-get install qemu-user-static, then as root \
             register it (systemd-binfmt, update-binfmts --enable qemu-{arch}, or this helper)"
        ),
        Emulation::Unusable(name) => format!(
            "an enabled binfmt_misc handler with the F flag for {arch} ({BINFMT_DIR}/{name} is \
             disabled or lacks F: re-register it as qemu-user-static does, e.g. \
             update-binfmts --enable qemu-{arch})"
        ),
    };
    require(
        format_args!("{arch} emulation: {advice}"),
        matches!(state, Emulation::Native | Emulation::Handler(_)),
    )
}

/// [`require_emulator`]'s work without the skip: mounts and registers as it says, then tells
/// how `arch` runs.
pub fn ensure_emulator(arch: &str) -> Emulation {
    if host_arch() == arch || (host_arch() == "aarch64" && arch == "arm") {
        return Emulation::Native;
    }
    let Some(elf) = elf_of(arch) else {
        return Emulation::Missing;
    };
    // One registration at a time in this process (the kernel refuses a second of one name).
    static REGISTERING: Mutex<()> = Mutex::new(());
    let _one = REGISTERING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = Path::new(BINFMT_DIR);
    if !dir.join("status").exists() && is_root() {
        let _ = nix::mount::mount(
            Some("binfmt_misc"),
            dir,
            Some("binfmt_misc"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
    }
    let state = find_handler(dir, elf);
    if state != Emulation::Missing {
        return state;
    }
    let conf = conf_of(arch);
    if is_root() && conf.is_file() {
        if let Ok(text) = std::fs::read_to_string(&conf) {
            if let Some(line) = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
            {
                // Refused in a container without the privilege, or when a handler of that
                // name exists (disabled): then the scan below says so.
                let _ = std::fs::write(dir.join("register"), line);
            }
        }
        return find_handler(dir, elf);
    }
    Emulation::Missing
}

/// qemu-user-static's systemd-binfmt line for `arch`.
fn conf_of(arch: &str) -> PathBuf {
    Path::new(BINFMT_D).join(format!("qemu-{arch}.conf"))
}

/// The architecture this test runs as, in `uname -m`'s words (`x86_64`, `aarch64`, ...).
pub fn host_arch() -> &'static str {
    std::env::consts::ARCH
}

/// The handler of `dir` for ELF binaries `elf`: a usable one first, else an unusable one.
fn find_handler(dir: &Path, elf: (bool, bool, u16)) -> Emulation {
    if !dir.join("status").exists() {
        return Emulation::NotMounted;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Emulation::NotMounted;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "status" && n != "register")
        .collect();
    names.sort();
    let mut unusable = None;
    for name in names {
        let Ok(text) = std::fs::read_to_string(dir.join(&name)) else {
            continue;
        };
        let h = parse(&text);
        if h.elf != Some(elf) {
            continue;
        }
        if h.enabled && h.fix_binary {
            return Emulation::Handler(name);
        }
        unusable.get_or_insert(name);
    }
    unusable.map_or(Emulation::Missing, Emulation::Unusable)
}

struct Handler {
    enabled: bool,
    fix_binary: bool,
    elf: Option<(bool, bool, u16)>,
}

/// A handler file: `enabled`, `flags: …`, `offset …`, `magic …` (hex).
fn parse(text: &str) -> Handler {
    let mut h = Handler {
        enabled: false,
        fix_binary: false,
        elf: None,
    };
    let (mut offset, mut magic) = (0, Vec::new());
    for line in text.lines().map(str::trim) {
        if line == "enabled" {
            h.enabled = true;
        } else if let Some(f) = line.strip_prefix("flags:") {
            h.fix_binary = f.contains('F');
        } else if let Some(o) = line.strip_prefix("offset ") {
            offset = o.trim().parse().unwrap_or(usize::MAX);
        } else if let Some(m) = line.strip_prefix("magic ") {
            let m = m.trim();
            magic = (0..m.len() / 2)
                .filter_map(|i| u8::from_str_radix(m.get(2 * i..2 * i + 2)?, 16).ok())
                .collect();
        }
    }
    if offset == 0 && magic.len() >= 20 && magic.starts_with(b"\x7fELF") {
        let little = magic[5] == 1;
        let machine = if little {
            u16::from_le_bytes([magic[18], magic[19]])
        } else {
            u16::from_be_bytes([magic[18], magic[19]])
        };
        h.elf = Some((magic[4] == 2, little, machine));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian 12's qemu-user-static handler for aarch64, as the kernel lists it.
    const AARCH64: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n\
        flags: POF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\n\
        mask ffffffffffffff00fffffffffffffffffeffffff\n";

    #[test]
    fn handlers_are_matched_by_elf_machine_and_need_f() {
        let dir = tempfile::tempdir().unwrap();
        let aarch64 = elf_of("aarch64").unwrap();
        assert_eq!(find_handler(dir.path(), aarch64), Emulation::NotMounted);
        std::fs::write(dir.path().join("status"), "enabled\n").unwrap();
        std::fs::write(dir.path().join("register"), "").unwrap();
        assert_eq!(find_handler(dir.path(), aarch64), Emulation::Missing);
        std::fs::write(dir.path().join("a"), AARCH64.replace("POF", "PO")).unwrap();
        assert_eq!(
            find_handler(dir.path(), aarch64),
            Emulation::Unusable("a".into())
        );
        std::fs::write(dir.path().join("b"), AARCH64).unwrap();
        assert_eq!(
            find_handler(dir.path(), aarch64),
            Emulation::Handler("b".into())
        );
        assert_eq!(
            find_handler(dir.path(), elf_of("riscv64").unwrap()),
            Emulation::Missing
        );
    }
}
