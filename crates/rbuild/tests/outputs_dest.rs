//! Where outputs land: archives on standard output (`dest=-`, `save`, `load`) but never to
//! or from a terminal; devices, FIFOs and symlinks written through rather than replaced;
//! directory outputs that never follow a link already inside them.

mod support;

use std::io::Read;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use rbuild_archive::testutil;
use support::{
    can_build_runs, is_root, json_file, layout_blob, output_with_stdin, require, s, stderr, stdout,
    tool, Env,
};

/// Entry names of a tar.
fn tar_names(bytes: &[u8]) -> Vec<String> {
    testutil::names(bytes).expect("a tar")
}

/// A world with an image `app:1` (FROM scratch, one file), built without RUN.
fn with_app() -> Option<(Env, std::path::PathBuf)> {
    if !can_build_runs() {
        return None;
    }
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY a.txt /a.txt\nCOPY a.txt /d/a.txt\n",
            ),
            ("a.txt", "A\n"),
        ],
    );
    env.ok(&["build", "-q", "-t", "app:1", s(&ctx)]);
    Some((env, ctx))
}

/// Runs `rbuild args` with standard input and output on a terminal (`script` gives it one);
/// returns its exit code and what it printed.
fn on_a_terminal(env: &Env, args: &[&str]) -> Option<(i32, String)> {
    if !require(
        "script (util-linux), for a terminal",
        tool("script").is_some(),
    ) {
        return None;
    }
    let cmdline = std::iter::once(env!("CARGO_BIN_EXE_rbuild"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .env("RBUILD_ROOT", &env.store)
        .env("RBUILD_CONFIG", &env.config)
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    Some((out.status.code().unwrap_or(-1), stdout(&out)))
}

#[test]
fn archives_go_to_standard_output_never_to_a_terminal() {
    let Some((env, ctx)) = with_app() else {
        return;
    };
    for (spec, expect) in [
        ("type=tar,dest=-", "a.txt"),
        ("type=oci,dest=-", "index.json"),
        ("type=docker,dest=-", "manifest.json"),
    ] {
        // -q: the image id is not printed after the archive.
        let out = env.ok(&["build", "-q", "-o", spec, s(&ctx)]);
        let names = tar_names(&out.stdout);
        assert!(names.iter().any(|n| n == expect), "{spec}: {names:?}");
        assert!(
            out.stdout.ends_with(&[0u8; 1024]),
            "{spec}: something after the tar's end"
        );
    }
    let two = env.run(&[
        "build",
        "-o",
        "type=tar,dest=-",
        "-o",
        "type=oci,dest=-",
        s(&ctx),
    ]);
    assert_eq!(two.status.code(), Some(2), "{}", stderr(&two));
    assert!(stderr(&two).contains("standard output"), "{}", stderr(&two));
    for dir in ["type=local,dest=-", "type=oci,tar=false,dest=-"] {
        let out = env.run(&["build", "-o", dir, s(&ctx)]);
        assert_eq!(out.status.code(), Some(2), "{dir}: {}", stderr(&out));
    }

    let Some((code, text)) = on_a_terminal(&env, &["build", "-o", "type=tar,dest=-", s(&ctx)])
    else {
        return;
    };
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("terminal"), "{text}");
}

#[test]
fn save_and_load_through_pipes_like_docker() {
    let Some((env, _)) = with_app() else {
        return;
    };
    for format in ["docker", "oci"] {
        let saved = env.ok(&["save", "--format", format, "app:1"]).stdout;
        assert!(!tar_names(&saved).is_empty(), "{format}");
        let other = Env::new();
        let out = output_with_stdin(other.cmd().arg("load"), &saved);
        assert!(out.status.success(), "{format}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("Loaded image: app:1"),
            "{}",
            stdout(&out)
        );
    }

    let Some((code, text)) = on_a_terminal(&env, &["save", "app:1"]) else {
        return;
    };
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("cowardly refusing to save to a terminal"),
        "{text}"
    );
    let (code, text) = on_a_terminal(&env, &["load"]).expect("script");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("requested load from stdin"), "{text}");
}

#[test]
fn non_regular_destinations_are_written_through() {
    let Some((env, ctx)) = with_app() else {
        return;
    };
    // A symlink: its target gets the archive, the link stays.
    let target = env.path("target.tar");
    std::fs::write(&target, "old").unwrap();
    let link = env.path("link.tar");
    symlink(&target, &link).unwrap();
    env.ok(&["save", "app:1", "-o", s(&link)]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(tar_names(&std::fs::read(&target).unwrap()).contains(&"manifest.json".to_string()));

    // A FIFO: the reader gets the archive, the FIFO stays.
    let fifo = env.path("fifo");
    make_fifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            std::fs::File::open(fifo)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            bytes
        })
    };
    let dest = format!("type=oci,dest={}", fifo.display());
    env.ok(&["build", "-q", "-o", &dest, s(&ctx)]);
    let bytes = reader.join().unwrap();
    assert!(tar_names(&bytes).contains(&"index.json".to_string()));
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // Standard output named by a path (what `-o /dev/stdout` resolves to).
    let out = env.ok(&["save", "app:1", "-o", "/proc/self/fd/1"]);
    assert!(tar_names(&out.stdout).contains(&"manifest.json".to_string()));

    // --iidfile through a symlink.
    let id_target = env.path("id.txt");
    let id_link = env.path("id-link");
    symlink(&id_target, &id_link).unwrap();
    env.ok(&["build", "-q", "--iidfile", s(&id_link), s(&ctx)]);
    assert!(std::fs::read_to_string(&id_target)
        .unwrap()
        .starts_with("sha256:"));
    assert!(std::fs::symlink_metadata(&id_link)
        .unwrap()
        .file_type()
        .is_symlink());

    // A character device (a private null device: as root only).
    if require("root (mknod)", is_root()) {
        let null = env.path("null");
        let mode = Mode::from_bits_truncate(0o666);
        mknod(&null, SFlag::S_IFCHR, mode, makedev(1, 3)).expect("mknod");
        let dest = format!("type=tar,dest={}", null.display());
        env.ok(&["build", "-q", "-o", &dest, s(&ctx)]);
        let md = std::fs::symlink_metadata(&null).unwrap();
        assert!(md.file_type().is_char_device());
        assert_eq!(md.rdev(), makedev(1, 3));
    }

    // A regular file is still replaced by rename (a new inode), keeping its mode.
    let file = env.path("plain.tar");
    std::fs::write(&file, "old").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let before = std::fs::metadata(&file).unwrap().ino();
    env.ok(&["save", "app:1", "-o", s(&file)]);
    let after = std::fs::metadata(&file).unwrap();
    assert_ne!(before, after.ino());
    assert_eq!(after.mode() & 0o777, 0o640);
}

fn make_fifo(path: &Path) {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)).expect("mkfifo");
}

#[test]
fn directory_outputs_never_follow_links_inside() {
    let Some((env, ctx)) = with_app() else {
        return;
    };
    let outside = env.path("outside");
    std::fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, "keep").unwrap();
    let before = || {
        let mut names: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let listed = before();

    // type=local: links where the image has a file and where it has a directory.
    let local = env.path("local");
    std::fs::create_dir(&local).unwrap();
    symlink(&victim, local.join("a.txt")).unwrap();
    symlink(&outside, local.join("d")).unwrap();
    let dest = format!("type=local,dest={}", local.display());
    env.ok(&["build", "-q", "-o", &dest, s(&ctx)]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert!(std::fs::symlink_metadata(local.join("a.txt"))
        .unwrap()
        .is_file());
    assert_eq!(std::fs::read_to_string(local.join("a.txt")).unwrap(), "A\n");
    assert!(std::fs::symlink_metadata(local.join("d")).unwrap().is_dir());
    assert_eq!(
        std::fs::read_to_string(local.join("d/a.txt")).unwrap(),
        "A\n"
    );
    assert_eq!(before(), listed, "nothing was written outside");

    // type=oci,tar=false: links where the layout's files and directories go.
    let layout = env.path("layout");
    std::fs::create_dir(&layout).unwrap();
    symlink(&outside, layout.join("blobs")).unwrap();
    symlink(&victim, layout.join("index.json")).unwrap();
    symlink(outside.join("made-by-layout"), layout.join("oci-layout")).unwrap();
    let dest = format!("type=oci,tar=false,dest={}", layout.display());
    env.ok(&["build", "-q", "-o", &dest, s(&ctx)]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert_eq!(before(), listed, "nothing was written outside");
    for name in ["index.json", "oci-layout"] {
        assert!(std::fs::symlink_metadata(layout.join(name))
            .unwrap()
            .is_file());
    }
    assert!(std::fs::symlink_metadata(layout.join("blobs"))
        .unwrap()
        .is_dir());
    // The layout is whole: its index names a manifest present in blobs/.
    let index = json_file(&layout.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    assert!(layout_blob(&layout, digest).is_file());
}

/// `name=` of a docker or OCI output names the image as `-t` does (BuildKit's exporters take
/// the names from `name=`; buildx turns `-t` into it).
#[test]
fn name_of_a_docker_or_oci_output_names_the_image() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n"),
            ("a.txt", "A\n"),
        ],
    );
    let docker = env.path("docker.tar");
    env.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=docker,dest={},name=named:7", s(&docker)),
        s(&ctx),
    ]);
    let out = Command::new("tar")
        .args(["-xOf", s(&docker), "manifest.json"])
        .output()
        .expect("tar");
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("manifest.json");
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["named:7"]),
        "{manifest}"
    );

    let layout = env.path("layout");
    env.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=oci,dest={},tar=false,name=named:8", s(&layout)),
        s(&ctx),
    ]);
    let index = json_file(&layout.join("index.json"));
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["annotations"]["io.containerd.image.name"].as_str())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("named:8")), "{index}");
}
