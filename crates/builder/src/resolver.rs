//! The frontend's [`Resolver`] over an [`ImageSource`] (the oci crate's `RegistrySource`: the
//! local store, then the registries). Lowering gets each base image's config; the resolved
//! manifests are kept for the solver, so that each tag is resolved once per build.

use rbuild_frontend::lower::Resolver;
use rbuild_graph::ImageConfig;
use rbuild_solver::ports::{ImageSource, ResolvedImage, SourceError};
use rbuild_types::{ImageRef, Platform};

/// Resolves base images through `source`, remembering what it resolved.
pub(crate) struct SourceResolver<'a> {
    source: &'a dyn ImageSource,
    resolved: Vec<ResolvedImage>,
}

impl<'a> SourceResolver<'a> {
    pub(crate) fn new(source: &'a dyn ImageSource) -> Self {
        SourceResolver {
            source,
            resolved: Vec::new(),
        }
    }

    /// The images resolved so far, in order.
    pub(crate) fn into_resolved(self) -> Vec<ResolvedImage> {
        self.resolved
    }
}

impl Resolver for SourceResolver<'_> {
    type Error = SourceError;

    fn resolve_image(
        &mut self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<ImageConfig, SourceError> {
        let resolved = self.source.resolve(reference, platform)?;
        let config = resolved.config.clone();
        self.resolved.push(resolved);
        Ok(config)
    }
}
