//! The frontend's [`Resolver`] over an [`ImageSource`] (the oci crate's `RegistrySource`: the
//! local store, then the registries). Lowering gets each base image's config; the resolved
//! manifests are kept for the solver, so that each tag is resolved once per build.
//!
//! It also says what each used named context is: `docker-image://REF` is the image `REF`;
//! `oci-layout://` is the image the layout holds, copied into the store and known by its
//! manifest digest under the context's name (`NAME@sha256:…`, as BuildKit names it), so the
//! solver pulls it from the store and never from a registry; the rest are filesystems.

use std::collections::BTreeMap;

use rbuild_cache::Store;
use rbuild_frontend::lower::{NamedContext, Resolver};
use rbuild_graph::ImageConfig;
use rbuild_oci::images::layout_image;
use rbuild_solver::ports::{ImageSource, ResolvedImage, SourceError};
use rbuild_types::{ImageRef, Platform};

use crate::named::NamedSpec;

/// Resolves base images through `source`, remembering what it resolved.
pub(crate) struct SourceResolver<'a> {
    source: &'a dyn ImageSource,
    store: &'a Store,
    named: &'a BTreeMap<String, NamedSpec>,
    resolved: Vec<ResolvedImage>,
    /// The images of `oci-layout://` contexts, by the reference lowering knows them by.
    layouts: BTreeMap<ImageRef, ImageConfig>,
}

impl<'a> SourceResolver<'a> {
    pub(crate) fn new(
        source: &'a dyn ImageSource,
        store: &'a Store,
        named: &'a BTreeMap<String, NamedSpec>,
    ) -> Self {
        SourceResolver {
            source,
            store,
            named,
            resolved: Vec::new(),
            layouts: BTreeMap::new(),
        }
    }

    /// The images resolved so far, in order.
    pub(crate) fn into_resolved(self) -> Vec<ResolvedImage> {
        self.resolved
    }
}

fn context_error(key: &str, e: impl std::error::Error + Send + Sync + 'static) -> SourceError {
    SourceError {
        reference: key.to_string(),
        source: Box::new(e),
    }
}

/// A context key the build was not given (lowering asks only for given ones).
#[derive(Debug, thiserror::Error)]
#[error("no build context of this name was given")]
struct UnknownContext;

impl Resolver for SourceResolver<'_> {
    type Error = SourceError;

    fn resolve_image(
        &mut self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<ImageConfig, SourceError> {
        if let Some(config) = self.layouts.get(reference) {
            return Ok(config.clone());
        }
        let resolved = self.source.resolve(reference, platform)?;
        let config = resolved.config.clone();
        self.resolved.push(resolved);
        Ok(config)
    }

    fn resolve_context(
        &mut self,
        key: &str,
        platform: &Platform,
    ) -> Result<NamedContext, SourceError> {
        match self.named.get(key) {
            None => Err(context_error(key, UnknownContext)),
            Some(NamedSpec::Image(reference)) => Ok(NamedContext::Image(reference.clone())),
            Some(NamedSpec::OciLayout { dir, selector }) => {
                let image = layout_image(self.store, dir, selector, platform)
                    .map_err(|e| context_error(key, e))?;
                let mut reference = ImageRef::parse(key).map_err(|e| context_error(key, e))?;
                reference.tag = None;
                reference.digest = Some(image.manifest_digest);
                let config = image.config.image;
                self.layouts.insert(reference.clone(), config.clone());
                self.resolved.push(ResolvedImage {
                    reference: reference.clone(),
                    platform: platform.clone(),
                    manifest_digest: image.manifest_digest,
                    config,
                });
                Ok(NamedContext::Image(reference))
            }
            Some(NamedSpec::Url(url)) => Ok(NamedContext::Http { url: url.clone() }),
            Some(NamedSpec::Git { .. } | NamedSpec::Dir(_)) => Ok(NamedContext::Filesystem),
        }
    }
}
