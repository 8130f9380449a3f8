//! [`BuildConfig`]: everything one build needs to know, typed, built once (by the binary from
//! its command line, or by an embedding program) and checked by [`BuildConfig::check`] before
//! anything is read or built.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rbuild_context::{ContextError, ContextSource, GitSpec};
use rbuild_frontend::lower::BuildOptions;
use rbuild_sandbox::{Isolation, Snapshotter};
use rbuild_solver::mounts::Secret;
use rbuild_types::{ImageRef, ImageRefError, Platform, Privileges};

use crate::annotations::Annotations;
use crate::named::NamedSpec;
use crate::output::{Output, OutputError};
use crate::runtime::Runtime;
use crate::settings::Settings;

/// Where the Dockerfile comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DockerfileSpec {
    /// `Dockerfile` at the root of the context; for an http(s) URL that is not an archive,
    /// the downloaded file itself.
    Default,
    /// `-f NAME`: for a directory context a path on this machine (relative to the working
    /// directory, like `docker build`), else a path inside the context.
    Named(String),
    /// `-f -`: read from standard input.
    Stdin,
    /// Given as bytes, with the name reports use.
    Bytes { name: String, bytes: Vec<u8> },
}

/// Where the build context comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContextSpec {
    /// No context: only the root directory exists.
    Empty,
    /// `-`: standard input holds a context archive (tar, maybe compressed), or else the
    /// Dockerfile itself (the context is then empty).
    Stdin,
    /// A directory on this machine, walked only if a step reads it.
    Dir(PathBuf),
    /// A git repository (`url` as given), cloned.
    Git { url: String, spec: GitSpec },
    /// An http(s) URL to a context archive or a Dockerfile.
    Url(String),
}

impl ContextSpec {
    /// The context a `docker build` argument names (`-`, a directory, a git URL, a URL),
    /// classified as Docker does; a path that does not exist is a `Dir` (reported missing
    /// when the build starts).
    pub fn parse(arg: &str) -> Result<ContextSpec, ContextError> {
        Ok(match ContextSource::classify(arg)? {
            ContextSource::Stdin => ContextSpec::Stdin,
            ContextSource::Dir(dir) => ContextSpec::Dir(dir),
            ContextSource::Git(spec) => ContextSpec::Git {
                url: arg.to_string(),
                spec,
            },
            ContextSource::Url(url) => ContextSpec::Url(url),
        })
    }

    /// The context as the user named it (`-` for standard input).
    pub fn origin(&self) -> String {
        match self {
            ContextSpec::Empty => String::new(),
            ContextSpec::Stdin => "-".to_string(),
            ContextSpec::Dir(dir) => dir.display().to_string(),
            ContextSpec::Git { url, .. } | ContextSpec::Url(url) => url.clone(),
        }
    }
}

/// Secrets, SSH agents and entitlements for `RUN --mount=type=secret|ssh` and
/// `RUN --security=insecure`. Secret values go only to the solver: never to events, logs,
/// the metadata file or the image.
#[derive(Clone, Debug, Default)]
pub struct MountGrants {
    /// Secret values by id.
    pub secrets: Vec<(String, Secret)>,
    /// SSH agent sockets by id.
    pub ssh: Vec<(String, PathBuf)>,
    /// `security.insecure` is granted.
    pub allow_insecure: bool,
}

/// One build, as typed values.
#[derive(Clone, Debug)]
pub struct BuildConfig {
    pub dockerfile: DockerfileSpec,
    pub context: ContextSpec,
    /// The store (`RBUILD_ROOT`).
    pub store_root: PathBuf,
    /// What the process may do to files and namespaces, detected once at startup
    /// (`rbuild_sandbox::detect_privileges`, then `rbuild_sandbox::userns::enter`).
    pub privileges: Privileges,
    /// The configuration file, read once.
    pub settings: Settings,
    /// What lowering takes: build args, target, platform, cache filters, labels, network.
    /// Its `contexts` are set from `named_contexts` when the build starts.
    pub options: BuildOptions,
    /// `--build-context`: named contexts by key.
    pub named_contexts: BTreeMap<String, NamedSpec>,
    /// `-t`: names of the image in the store (and where `push` pushes it).
    pub tags: Vec<ImageRef>,
    /// `-o`: where the result goes; none means the local store under the tags.
    pub outputs: Vec<Output>,
    /// `--push`: push every name to its registry.
    pub push: bool,
    /// `--pull`: look base images up in their registry again.
    pub pull: bool,
    /// `--iidfile`: write the image id there.
    pub iidfile: Option<PathBuf>,
    /// `--metadata-file`: write BuildKit's result metadata there.
    pub metadata_file: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH`: the image's creation time and the clamp of layer mtimes.
    pub source_date_epoch: Option<u64>,
    /// `--explain-cache`: say why each step that runs missed the cache.
    pub explain_cache: bool,
    /// `--jobs`: how many steps may run at once (default: the solver's).
    pub jobs: Option<usize>,
    /// What runs RUN steps.
    pub runtime: Runtime,
    /// `RBUILD_SNAPSHOTTER`; `None` detects it.
    pub snapshotter: Option<Snapshotter>,
    /// `--memory`, `--cpu-quota`, `--cpu-period`, `--cgroup-parent`: every RUN's cgroup.
    pub run_limits: rbuild_sandbox::RunLimits,
    /// `--isolation`: namespaces, or a chroot (built-in runtime only).
    pub isolation: Isolation,
    pub mounts: MountGrants,
    /// `--cache-from`, in the order given (an earlier source wins for a key both have).
    pub cache_from: Vec<crate::cache::CacheFrom>,
    /// `--cache-to`.
    pub cache_to: Vec<crate::cache::CacheTo>,
    /// `--platform a,b`: the target platforms when there are several (the result is then an
    /// index of one image per platform); empty: `options.platform` alone.
    pub platforms: Vec<Platform>,
    /// `--annotation`: on the image manifests and the multi-platform index.
    pub annotations: Annotations,
    /// `--provenance`, `--sbom`, `--attest`: attestations attached beside each image (then
    /// the result is an index, even for one platform).
    pub attestations: crate::attest::Attestations,
}

/// A config that cannot be built as given (a usage error).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("multiple outputs configured to write to standard output (dest=-)")]
    SeveralStdoutOutputs,
    #[error("invalid image name {name:?}: {source}")]
    ImageName {
        name: String,
        #[source]
        source: ImageRefError,
    },
    #[error("pushing needs a name: give -t NAME or -o type=image,name=NAME,push=true")]
    PushWithoutName,
    #[error(transparent)]
    Output(#[from] OutputError),
    /// As BuildKit's docker exporter ("does not currently support exporting manifest
    /// lists"): attestations make the result an index.
    #[error("the docker exporter cannot hold attestations (they make the image an index): use -o type=oci or type=image, or leave out --provenance/--sbom/--attest")]
    DockerAttestations,
    /// As BuildKit's image exporter: an attestation manifest needs OCI media types.
    #[error("cannot export attestations with oci-mediatypes=false")]
    AttestationsNeedOciTypes,
}

impl BuildConfig {
    /// A config building `dockerfile` with `context` into the store at `store_root` with
    /// `privileges` (the process's, detected at startup), for the host platform, with
    /// everything else at its default.
    pub fn new(
        dockerfile: DockerfileSpec,
        context: ContextSpec,
        store_root: PathBuf,
        privileges: Privileges,
    ) -> Self {
        BuildConfig {
            dockerfile,
            context,
            store_root,
            privileges,
            settings: Settings::default(),
            options: BuildOptions::default(),
            named_contexts: BTreeMap::new(),
            tags: Vec::new(),
            outputs: Vec::new(),
            push: false,
            pull: false,
            iidfile: None,
            metadata_file: None,
            source_date_epoch: None,
            explain_cache: false,
            jobs: None,
            runtime: Runtime::Builtin,
            snapshotter: None,
            run_limits: rbuild_sandbox::RunLimits::default(),
            isolation: Isolation::Namespaces,
            mounts: MountGrants::default(),
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            platforms: Vec::new(),
            annotations: Annotations::default(),
            attestations: crate::attest::Attestations::default(),
        }
    }

    /// Checks what the types cannot say: one output at most on standard output, valid
    /// `name=`s of image outputs, a name to push to, no docker output of attestations.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.outputs.iter().filter(|o| o.to_stdout()).count() > 1 {
            return Err(ConfigError::SeveralStdoutOutputs);
        }
        let names = self.image_names()?;
        if names.is_empty() && self.pushes() {
            return Err(ConfigError::PushWithoutName);
        }
        let docker = self
            .outputs
            .iter()
            .any(|o| matches!(o, Output::Docker { .. }));
        if docker && !self.attestations.is_empty() {
            return Err(ConfigError::DockerAttestations);
        }
        let docker_types = self.outputs.iter().any(|o| match o {
            Output::Image { layers, .. } | Output::Oci { layers, .. } => {
                layers.oci_media_types == Some(false)
            }
            _ => false,
        });
        if docker_types && !self.attestations.is_empty() {
            return Err(ConfigError::AttestationsNeedOciTypes);
        }
        Ok(())
    }

    /// The platforms to build for, in order: `platforms`, or `options.platform` alone.
    pub fn target_platforms(&self) -> Vec<Platform> {
        if self.platforms.is_empty() {
            vec![self.options.platform.clone()]
        } else {
            self.platforms.clone()
        }
    }

    /// Every name of the image: the tags, then the `name=`s of image outputs, without repeats,
    /// in their full form (`docker.io/library/app:1`).
    pub fn image_names(&self) -> Result<Vec<String>, ConfigError> {
        let mut names: Vec<String> = Vec::new();
        for n in self.tags.iter().map(|t| t.to_string()) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        // `name=` of an image, OCI or docker output names the image as `-t` does (buildx passes
        // `-t` to the exporter as `name=`).
        let extra = self.outputs.iter().flat_map(|o| match o {
            Output::Image { names, .. }
            | Output::Oci { names, .. }
            | Output::Docker { names, .. } => names.as_slice(),
            _ => &[],
        });
        for name in extra {
            let n = ImageRef::parse(name)
                .map_err(|source| ConfigError::ImageName {
                    name: name.clone(),
                    source,
                })?
                .to_string();
            if !names.contains(&n) {
                names.push(n);
            }
        }
        Ok(names)
    }

    /// Whether anything is pushed (`--push`, or an image output with `push=true`).
    pub fn pushes(&self) -> bool {
        self.push
            || self
                .outputs
                .iter()
                .any(|o| matches!(o, Output::Image { push: true, .. }))
    }

    /// Whether an output writes to standard output.
    pub fn writes_stdout(&self) -> bool {
        self.outputs.iter().any(Output::to_stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BuildConfig {
        BuildConfig::new(
            DockerfileSpec::Default,
            ContextSpec::Empty,
            "/s".into(),
            rbuild_sandbox::detect_privileges(),
        )
    }

    #[test]
    fn names_are_tags_then_output_names_without_repeats() {
        let mut c = config();
        c.tags = vec![ImageRef::parse("app:1").expect("ref")];
        c.outputs = vec![Output::parse("type=image,name=app:1,name=reg:5000/x").expect("spec")];
        assert_eq!(
            c.image_names().expect("names"),
            ["docker.io/library/app:1", "reg:5000/x:latest"]
        );
        c.outputs = vec![Output::parse("type=image,name=Bad Name").expect("spec")];
        assert!(matches!(c.check(), Err(ConfigError::ImageName { .. })));
    }

    #[test]
    fn checks_what_types_cannot_say() {
        let mut c = config();
        assert_eq!(c.check(), Ok(()));
        c.push = true;
        assert_eq!(c.check(), Err(ConfigError::PushWithoutName));
        c.push = false;
        c.outputs = vec![
            Output::parse("type=tar,dest=-").expect("spec"),
            Output::parse("type=oci,dest=-").expect("spec"),
        ];
        assert_eq!(c.check(), Err(ConfigError::SeveralStdoutOutputs));
        c.outputs = vec![Output::parse("type=docker,dest=out.tar").expect("spec")];
        c.attestations.sbom = true;
        assert_eq!(c.check(), Err(ConfigError::DockerAttestations));
        c.outputs = vec![Output::parse("type=oci,dest=o,oci-mediatypes=false").expect("spec")];
        assert_eq!(c.check(), Err(ConfigError::AttestationsNeedOciTypes));
        c.attestations.sbom = false;
        c.outputs.clear();
        // Any platform, and several: a foreign RUN needs an emulator, checked when it runs.
        c.platforms = vec![
            "linux/amd64".parse().expect("platform"),
            "linux/arm64".parse().expect("platform"),
        ];
        assert_eq!(c.check(), Ok(()));
        assert_eq!(c.target_platforms(), c.platforms);
    }
}
