//! Base images through a [`Resolver`], and the one ONBUILD fixpoint ([`Plan::resolve`]).
//!
//! Lowering needs the config of every base image (its env, workdir, user and ONBUILD
//! triggers), which only the caller can fetch: the frontend stays pure and asks a
//! [`Resolver`], as BuildKit's `dockerfile2llb` asks its `ImageMetaResolver`. The builder
//! implements it with the local store and the registries; tests with a closure.
//!
//! ONBUILD triggers of a base image may read more stages and images (`COPY --from`,
//! `RUN --mount from=`), and a stage added that way may have a base with triggers of its own:
//! [`Plan::resolve`] resolves, binds the triggers (`Plan::expand_onbuild`) and resolves
//! what they added, until nothing is new. It is the only loop over triggers; [`plan`] binds
//! the triggers of base *stages* (known from the file alone, so their errors come with the
//! file's other errors) and [`lower`] dispatches the triggers of the stages it is given.
//!
//! The same trait says what each named context (`--build-context`) the plan uses is (an
//! image, or a filesystem), as BuildKit's frontend asks its client; an image context's config
//! is then resolved like any base's, so its ONBUILD triggers run as for `FROM` the image.
//!
//! [`plan`]: super::plan()
//! [`lower`]: super::lower

use std::collections::BTreeMap;

use rbuild_graph::ImageConfig;
use rbuild_types::{ImageRef, Platform};

use super::named::NamedContext;
use super::plan::Plan;
use crate::diagnostics::Diagnostics;

/// What the frontend asks its caller for: the config of a base image, and what a named
/// context is.
pub trait Resolver {
    /// Why an image could not be resolved (the caller's own error type).
    type Error;

    /// The config of image `reference` for `platform`. Called once per image and build.
    fn resolve_image(
        &mut self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<ImageConfig, Self::Error>;

    /// What the named context `key` (one of [`BuildOptions::contexts`]) is, for `platform`.
    /// Called once per used context and build, before the config of an image it names is
    /// asked for. A resolver that knows only images (a closure) takes every named context
    /// for a filesystem.
    ///
    /// [`BuildOptions::contexts`]: super::BuildOptions::contexts
    fn resolve_context(
        &mut self,
        key: &str,
        platform: &Platform,
    ) -> Result<NamedContext, Self::Error> {
        let _ = (key, platform);
        Ok(NamedContext::Filesystem)
    }
}

/// A closure is a resolver (tests, fixed configs).
impl<E, F> Resolver for F
where
    F: FnMut(&ImageRef, &Platform) -> Result<ImageConfig, E>,
{
    type Error = E;

    fn resolve_image(
        &mut self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<ImageConfig, E> {
        self(reference, platform)
    }
}

/// The configs of the base images a plan uses, by reference.
pub type BaseConfigs = BTreeMap<(ImageRef, Platform), ImageConfig>;

/// Why [`Plan::resolve`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError<E> {
    /// An ONBUILD trigger of a base cannot be bound (at the span of the `FROM` pulling it in).
    #[error("{0}")]
    Dockerfile(Diagnostics),
    /// The resolver failed for `reference`.
    #[error("failed to resolve source metadata for {reference}")]
    Image {
        reference: ImageRef,
        #[source]
        source: E,
    },
    /// The resolver failed for the named context `name`.
    #[error("failed to load build context {name}")]
    Context {
        name: String,
        #[source]
        source: E,
    },
}

impl Plan {
    /// Resolves every named context and image the needed stages use (`FROM`, `COPY --from`,
    /// `RUN --mount from=`, and what the ONBUILD triggers of their bases read) once each, in
    /// order of first use, for the plan's platform: contexts first, since one may name an
    /// image. The plan then needs the stages those triggers read; the
    /// returned configs are what [`lower`](super::lower) takes.
    pub fn resolve<R: Resolver + ?Sized>(
        &mut self,
        resolver: &mut R,
    ) -> Result<BaseConfigs, ResolveError<R::Error>> {
        // Named contexts are resolved for the target's platform.
        let platform = self.options.platform.clone();
        let mut bases = BaseConfigs::new();
        loop {
            let named: Vec<String> = self
                .named_contexts()
                .into_iter()
                .filter(|n| !self.contexts.contains_key(n))
                .collect();
            for name in named {
                let context = resolver
                    .resolve_context(&name, &platform)
                    .map_err(|source| ResolveError::Context {
                        name: name.clone(),
                        source,
                    })?;
                self.contexts.insert(name, context);
            }
            let pending: Vec<(ImageRef, Platform)> = self
                .base_images()
                .into_iter()
                .filter(|r| !bases.contains_key(r))
                .collect();
            if pending.is_empty() {
                return Ok(bases);
            }
            for (reference, image_platform) in pending {
                let config = resolver
                    .resolve_image(&reference, &image_platform)
                    .map_err(|source| ResolveError::Image {
                        reference: reference.clone(),
                        source,
                    })?;
                bases.insert((reference, image_platform), config);
            }
            self.expand_onbuild(&bases)
                .map_err(ResolveError::Dockerfile)?;
        }
    }
}
