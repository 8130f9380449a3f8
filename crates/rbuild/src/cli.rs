//! Command-line interface: `docker build`-compatible flags where the flag exists there.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "rbuild",
    version,
    about = "A daemonless, BuildKit-class container image builder"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build an image from a Dockerfile (the default command: `rbuild -t app .`)
    Build(Box<BuildArgs>),
    /// Build the targets of a compose file or docker-bake.hcl/JSON together (each shared step
    /// once, independent ones in parallel)
    Bake(BakeArgs),
    /// List images in the local store
    Images(crate::images_cmd::ImagesArgs),
    /// Give an image in the store another name
    Tag { source: String, target: String },
    /// Remove image names from the local store
    Rmi {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove build cache (least recently used first; --all: also base layers and blobs),
    /// without asking (`-f` is accepted; rbuild never prompts)
    Prune(crate::gc_cmds::PruneArgs),
    /// Show what the store uses on disk
    Du,
    /// Show details of images as JSON (like `docker image inspect`)
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
        /// Format each image with a Go template (`{{.Id}}`, `{{.Config.Env}}`,
        /// `{{json .Config}}`, `{{index .RepoDigests 0}}`), one line per image; `json` (the
        /// default) prints the JSON array
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Show the history of an image
    History {
        image: String,
        /// Do not truncate output: full image ids and commands
        #[arg(long)]
        no_trunc: bool,
    },
    /// Save images to a tar archive (on standard output unless -o; never to a terminal)
    Save {
        #[arg(required = true)]
        images: Vec<String>,
        /// Write to this file instead of standard output (a device, FIFO or symlink is
        /// written through)
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// Archive format
        #[arg(long, value_enum, default_value = "docker")]
        format: crate::image_cmds::SaveFormat,
    },
    /// Load images from a docker-archive or OCI archive (tar or layout directory)
    Load {
        /// Read from this file or layout directory instead of standard input
        #[arg(short = 'i', long = "input")]
        input: Option<PathBuf>,
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Download an image from a registry into the local store
    Pull {
        image: String,
        #[arg(short = 'q', long)]
        quiet: bool,
        /// How the layers' byte progress is shown
        #[arg(long, value_enum, default_value = "auto")]
        progress: ProgressMode,
    },
    /// Upload an image from the local store to its registry
    Push {
        image: String,
        /// How the blobs' byte progress is shown
        #[arg(long, value_enum, default_value = "auto")]
        progress: ProgressMode,
    },
    /// Log in to a registry: check the credentials, then store them in Docker's config.json
    /// (or its credential helper)
    Login(crate::login_cmds::LoginArgs),
    /// Log out from a registry: remove its stored credentials
    Logout {
        /// The registry (`host[:port]`); Docker Hub when not given
        server: Option<String>,
    },
    /// Tools for looking inside rbuild
    #[command(subcommand)]
    Debug(DebugCommand),
}

#[derive(Subcommand, Debug)]
pub enum DebugCommand {
    /// Print the Dockerfile's syntax tree in BuildKit's parser-test format
    Parse {
        /// The Dockerfile, or `-` for standard input
        #[arg(default_value = "Dockerfile")]
        file: String,
    },
    /// List the platforms RUN can execute here (natively or through a binfmt_misc emulator),
    /// and how to enable the others
    Platforms,
    /// List what the build context includes, then its digest
    Context {
        /// Path of the Dockerfile (for `<Dockerfile>.dockerignore`)
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// `tty` when stderr is a terminal, `plain` otherwise
    Auto,
    /// BuildKit's live view: a `[+] Building 1.2s (3/5)` header over every step with its
    /// time, left as a final frame (`… FINISHED`) (plain lines without a terminal)
    Tty,
    /// BuildKit's `#N [stage i/n] STEP` lines, its output, `#N DONE 0.3s`
    Plain,
    /// One JSON object per line: `event` (`started`, `cached`, `log`, `done`, `failed`, …),
    /// `vertex`, `name`, `time` (Unix seconds); a `log` has `stream` and `text` (plus
    /// `base64` when not UTF-8); blob transfers as `{"transfer": …, "time": …}`
    Json,
    /// BuildKit's raw `SolveStatus` stream, one JSON object per line
    Rawjson,
    /// Nothing but the image id on stdout (as `-q`)
    Quiet,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    Default,
    None,
    Host,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Build context: a directory, a git URL (`URL.git#ref:subdir`, `git@host:repo`, `file://`),
    /// an http(s) URL to a tarball or Dockerfile, or `-` to read a Dockerfile or tar from stdin
    pub context: String,
    /// Name and optionally a tag (`name:tag`); repeatable
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Path of the Dockerfile (default: CONTEXT/Dockerfile); `-` reads it from standard input
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set a build-time variable (`KEY=value`, or `KEY` to take it from the environment)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Build this stage and what it needs, not the last stage
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use the cache
    #[arg(long)]
    pub no_cache: bool,
    /// Do not use the cache for these stages
    #[arg(long = "no-cache-filter")]
    pub no_cache_filter: Vec<String>,
    /// Import build cache: `type=local,src=DIR` or `type=registry,ref=REF` (or just `REF`),
    /// `[,cache-mounts=true]` to seed new `RUN --mount=type=cache` directories from it
    /// (repeatable)
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Export build cache: `type=local,dest=DIR` | `type=registry,ref=REF` | `type=inline`,
    /// `[,mode=min|max][,ignore-error=true]`; `[,cache-mounts=true[,cache-mounts-max-size=SIZE]]`
    /// exports the build's cache mounts too, each up to SIZE (default 1GiB; not type=inline)
    #[arg(long = "cache-to")]
    pub cache_to: Vec<String>,
    /// For each step that misses the cache, say which input of its key changed
    #[arg(long)]
    pub explain_cache: bool,
    /// Always look up base images in their registry again
    #[arg(long)]
    pub pull: bool,
    /// Set metadata on the image (`KEY=value`)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Progress output
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Print only the image id on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image id to this file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Output: `type=oci|docker|tar|local|image[,dest=PATH][,tar=false]`; repeatable
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// Network for RUN steps
    #[arg(long, value_enum, default_value = "default")]
    pub network: NetworkArg,
    /// Runtime for RUN steps: `builtin` (default), `runc`, `crun`, or the path of an OCI runtime
    #[arg(long)]
    pub runtime: Option<String>,
    /// RUN isolation: `default` (namespaces), or `chroot` where namespaces are refused (an
    /// unprivileged container): no namespaces, the host's network, much weaker
    #[arg(long)]
    pub isolation: Option<String>,
    /// How many steps may run at once (default: 4 per CPU)
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Target platform(s): `linux/arm64`, or a list `linux/amd64,linux/arm64` for one image
    /// per platform joined in an index. RUN for a platform the host cannot run natively needs
    /// a binfmt_misc emulator (see `rbuild debug platforms`)
    #[arg(long)]
    pub platform: Vec<String>,
    /// Write build result metadata (image digest, config digest, names) as JSON to this file
    #[arg(long)]
    pub metadata_file: Option<PathBuf>,
    /// Push the image to its registry (shorthand for `-o type=image,push=true`)
    #[arg(long)]
    pub push: bool,
    /// Secret for `RUN --mount=type=secret`: `id=ID[,src=PATH|,env=VAR][,type=file|env]`; repeatable
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// SSH agent for `RUN --mount=type=ssh`: `default|ID[=SOCKET]` (default: $SSH_AUTH_SOCK); repeatable
    #[arg(long = "ssh")]
    pub ssh: Vec<String>,
    /// Grant an entitlement: `security.insecure` (for `RUN --security=insecure`); repeatable
    #[arg(long = "allow")]
    pub allow: Vec<String>,
    /// Additional build context: `NAME=DIR|docker-image://REF|oci-layout://PATH[:TAG|@DIGEST]|URL`
    /// (used by `FROM NAME`, `COPY --from=NAME`, `RUN --mount from=NAME`); repeatable
    #[arg(long = "build-context")]
    pub build_contexts: Vec<String>,
    /// Add an OCI annotation: `[TYPE:]KEY=VALUE`, TYPE `manifest` (the default: each
    /// image manifest) or `index` (a multi-platform build's index), or both (`manifest,index:`);
    /// repeatable
    #[arg(long = "annotation", value_name = "[TYPE:]KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Attach an attestation beside the image (in its index, as BuildKit):
    /// `type=provenance[,mode=min|max][,builder-id=ID][,reproducible=true][,version=v1]` or
    /// `type=sbom`;
    /// `disabled=true` turns one off; repeatable. None unless asked
    #[arg(long = "attest", value_name = "type=provenance|sbom[,…]")]
    pub attest: Vec<String>,
    /// SLSA provenance: `true`, `false` or `type=provenance`'s options (`mode=max`); short for
    /// `--attest type=provenance,…`
    #[arg(long = "provenance", value_name = "true|false|mode=min|max")]
    pub provenance: Option<String>,
    /// An SPDX SBOM of the image's dpkg, apk and Python packages: `true` or `false`; short for
    /// `--attest type=sbom`
    #[arg(long = "sbom", value_name = "true|false")]
    pub sbom: Option<String>,
    /// Add a line to RUN's /etc/hosts: `HOST:IP` or `HOST=IP`; repeatable
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_hosts: Vec<String>,
    /// Resource limit of RUN's processes, as docker: `NAME=SOFT[:HARD]` (`nofile`, `nproc`,
    /// `core`, `stack`, …; -1 is unlimited); repeatable
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
    /// Size of RUN's /dev/shm (`128m`, `1g`; default 64m)
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Memory limit of each RUN (`512m`, `2g`): its processes are killed beyond it (a cgroup
    /// per RUN; needs root)
    #[arg(short = 'm', long = "memory", value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU time each RUN may use per period, in µs (with --cpu-period; 50000 = half a CPU)
    #[arg(long = "cpu-quota", value_name = "MICROSECONDS")]
    pub cpu_quota: Option<i64>,
    /// The CPU period for --cpu-quota, in µs (default 100000)
    #[arg(long = "cpu-period", value_name = "MICROSECONDS")]
    pub cpu_period: Option<u64>,
    /// The cgroup each RUN's cgroup is made under (default `rbuild` when a limit is set)
    #[arg(long = "cgroup-parent", value_name = "CGROUP")]
    pub cgroup_parent: Option<String>,
    /// Put the image in the local store (buildx's `--load`): the store is already the default
    /// output; with `-o`, the image goes to the store as well
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub load: Option<bool>,
    /// Accepted and ignored, as BuildKit does: there are no intermediate containers to remove
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub rm: Option<bool>,
    /// Accepted and ignored, as BuildKit does: there are no intermediate containers to remove
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub force_rm: Option<bool>,
    /// What to evaluate: `build` (default), `check` (the build checks, nothing built),
    /// `outline` (build args, secrets, SSH of the target), `targets` (the stages);
    /// `[,format=json][,ignorestatus=true]`
    #[arg(long, value_name = "CALL")]
    pub call: Option<String>,
    /// Shorthand for `--call=check`
    #[arg(long)]
    pub check: bool,
    /// After a build, show each build-check warning in full (description, link, lines)
    #[arg(long)]
    pub debug: bool,
}

#[derive(Args, Debug)]
pub struct BakeArgs {
    /// Targets or groups to build (default: the group `default`)
    pub targets: Vec<String>,
    /// A bake file: compose YAML (also version 1, services at the top level), HCL or JSON
    /// (`-`: standard input); repeatable, later files override earlier ones. Default: those of compose.yaml,
    /// compose.yml, docker-compose.yml, docker-compose.yaml, docker-bake.json,
    /// docker-bake.hcl, docker-bake.override.json, docker-bake.override.hcl that exist
    #[arg(short = 'f', long = "file")]
    pub files: Vec<PathBuf>,
    /// Print the resolved targets as JSON and build nothing
    #[arg(long)]
    pub print: bool,
    /// Override a target's value: `TARGET.KEY=VALUE` (TARGET may be a pattern such as `*`;
    /// KEY: context, dockerfile, target, tags, args.NAME, labels.NAME, contexts.NAME,
    /// cache-from, cache-to, platform, output, no-cache, pull, …); repeatable
    #[arg(long = "set", value_name = "TARGET.KEY=VALUE")]
    pub sets: Vec<String>,
    /// Push every target's image (shorthand for `--set *.output=type=image,push=true`)
    #[arg(long)]
    pub push: bool,
    /// Put every target's image in the local store (already the default output)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub load: Option<bool>,
    /// Do not use the cache
    #[arg(long)]
    pub no_cache: bool,
    /// Always look up base images in their registry again
    #[arg(long)]
    pub pull: bool,
    /// Progress output
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
}

/// Parses the command line (after [`with_default_subcommand`]). An unknown flag with no
/// similar one (`--foo`) is reported without clap's tip to pass it as a value with `-- --foo`:
/// that tip fits a trailing free-form argument, not a build context, and hides the useful part
/// (`--help` lists the flags). A close flag keeps its suggestion (`--tagg`: `--tag`).
pub fn parse(args: Vec<String>) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(args).map_err(without_dash_dash_tip)
}

fn without_dash_dash_tip(e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use clap::CommandFactory;
    let is_dash_dash = |tip: &clap::builder::StyledStr| tip.to_string().contains("as a value, use");
    let tips = match e.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(tips)) if tips.iter().any(is_dash_dash) => tips,
        _ => return e,
    };
    if e.kind() != ErrorKind::UnknownArgument {
        return e;
    }
    let kept: Vec<_> = tips.iter().filter(|t| !is_dash_dash(t)).cloned().collect();
    let mut out = clap::Error::new(ErrorKind::UnknownArgument).with_cmd(&Cli::command());
    for (kind, value) in e.context() {
        if kind != ContextKind::Suggested {
            out.insert(kind, value.clone());
        }
    }
    if !kept.is_empty() {
        out.insert(ContextKind::Suggested, ContextValue::StyledStrs(kept));
    }
    out
}

/// Words that name a subcommand; anything else first means `build`.
const SUBCOMMANDS: &[&str] = &[
    "build", "bake", "images", "tag", "rmi", "prune", "du", "debug", "help", "inspect", "history",
    "save", "load", "pull", "push", "login", "logout",
];

/// Inserts the implicit `build` subcommand: `rbuild -t app .` is `rbuild build -t app .`.
/// A first word that can only be a misspelled subcommand (see [`misspelled_subcommand`]) is
/// left for clap to reject with its "a similar subcommand exists" tip.
pub fn with_default_subcommand(args: Vec<String>) -> Vec<String> {
    let first = args.get(1).map(String::as_str);
    match first {
        None => args,
        Some(a)
            if SUBCOMMANDS.contains(&a) || matches!(a, "-h" | "--help" | "-V" | "--version") =>
        {
            args
        }
        Some(a) if misspelled_subcommand(a, Path::new(".")) => args,
        Some(_) => {
            let mut out = args;
            out.insert(1, "build".to_string());
            out
        }
    }
}

/// Whether `arg`, given first, is a misspelled subcommand (`imgaes`) rather than a build
/// context: not a flag, not `-`, nothing of that name in directory `cwd`, nothing path- or
/// URL-like (`/`, `:`: git and http contexts), and clap finds a subcommand close to it (its
/// own similarity rule, the one behind "a similar subcommand exists").
fn misspelled_subcommand(arg: &str, cwd: &Path) -> bool {
    use clap::error::{ContextKind, ErrorKind};
    use clap::CommandFactory;
    if arg.starts_with('-') || arg.contains(['/', ':']) || cwd.join(arg).symlink_metadata().is_ok()
    {
        return false;
    }
    match Cli::command().try_get_matches_from(["rbuild", arg]) {
        Err(e) => {
            e.kind() == ErrorKind::InvalidSubcommand
                && e.get(ContextKind::SuggestedSubcommand).is_some()
        }
        Ok(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn build_is_the_default_subcommand() {
        assert_eq!(
            with_default_subcommand(words("rbuild -t a .")),
            words("rbuild build -t a .")
        );
        assert_eq!(
            with_default_subcommand(words("rbuild -")),
            words("rbuild build -")
        );
        assert_eq!(
            with_default_subcommand(words("rbuild images")),
            words("rbuild images")
        );
        assert_eq!(
            with_default_subcommand(words("rbuild --help")),
            words("rbuild --help")
        );
    }

    #[test]
    fn a_misspelled_subcommand_is_not_a_context() {
        // `imgaes` is neither a path nor a URL, and close to `images`: clap rejects it.
        assert_eq!(
            with_default_subcommand(words("rbuild imgaes")),
            words("rbuild imgaes")
        );
        let e = Cli::try_parse_from(words("rbuild imgaes")).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidSubcommand);
        let text = e.render().to_string();
        assert!(text.contains("unrecognized subcommand 'imgaes'"), "{text}");
        assert!(
            text.contains("a similar subcommand exists: 'images'"),
            "{text}"
        );
        // Contexts keep working: `-`, URLs, git refs, paths, and words close to nothing.
        for ctx in [
            "-",
            "https://example.com/imgaes.tar",
            "git@host:imgaes.git",
            "./imgaes",
            "imgaes/",
            "zzzz",
        ] {
            assert_eq!(
                with_default_subcommand(vec!["rbuild".into(), ctx.into()])[1],
                "build",
                "{ctx}"
            );
        }
        // An existing file or directory of that name wins over the resemblance.
        let dir = tempfile::tempdir().unwrap();
        assert!(misspelled_subcommand("imgaes", dir.path()));
        std::fs::create_dir(dir.path().join("imgaes")).unwrap();
        assert!(!misspelled_subcommand("imgaes", dir.path()));
        assert!(!misspelled_subcommand("images", dir.path()));
    }

    #[test]
    fn an_unknown_flag_gets_a_suggestion_not_a_dash_dash_tip() {
        let text = |line: &str| parse(words(line)).unwrap_err().render().to_string();
        let close = text("rbuild build --tagg x .");
        assert!(
            close.contains("a similar argument exists: '--tag'"),
            "{close}"
        );
        let far = text("rbuild build --frobnicate .");
        assert!(far.contains("unexpected argument '--frobnicate'"), "{far}");
        assert!(!far.contains("-- --frobnicate"), "{far}");
        assert!(far.contains("Usage: rbuild build"), "{far}");
        assert!(far.contains("--help"), "{far}");
        let e = parse(words("rbuild build --frobnicate .")).unwrap_err();
        assert!(e.use_stderr());
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn buildkit_no_op_flags_are_accepted() {
        for line in [
            "rbuild build --load .",
            "rbuild build --load=false .",
            "rbuild build --rm --force-rm .",
            "rbuild build --rm=false --force-rm=true .",
        ] {
            let cli = parse(words(line)).unwrap_or_else(|e| panic!("{line}: {e}"));
            let Command::Build(b) = cli.command else {
                panic!("not build")
            };
            assert_eq!(b.context, ".", "{line}");
        }
    }

    #[test]
    fn parses_build_flags() {
        let cli = Cli::try_parse_from(words(
            "rbuild build -t a:1 -t b --build-arg X=1 --progress plain -o type=oci,dest=o.tar ctx",
        ))
        .unwrap();
        let Command::Build(b) = cli.command else {
            panic!("not build")
        };
        assert_eq!(b.tags, vec!["a:1", "b"]);
        assert_eq!(b.progress, ProgressMode::Plain);
        assert_eq!(b.context, "ctx");
    }
}
