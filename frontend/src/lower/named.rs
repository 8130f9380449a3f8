//! Named contexts (`--build-context NAME=VALUE`): how a name written in the Dockerfile finds
//! one, as BuildKit's `dockerui.NamedContext` matches them.
//!
//! The frontend knows only the names the user gave ([`BuildOptions::contexts`], normalised by
//! [`context_key`]) and asks its [`Resolver`](super::Resolver) what each used one is: an image
//! (`docker-image://`, `oci-layout://`, with a config like any base), a filesystem (a
//! directory or a git repository, opened by the caller as the build context of that name), or
//! an http(s) URL, which the graph downloads itself as one file named `context`. The rules, from `dockerfile2llb`:
//! - a stage whose `AS name` is a context name is replaced by the context: its instructions
//!   are not run (nor the ONBUILD triggers of its base);
//! - `FROM name`, `COPY --from=name` and `RUN --mount from=name` look for a stage of that
//!   name first, then for a context, then take the name as an image reference;
//! - names are matched as image references: `alpine`, `alpine:latest` and
//!   `docker.io/library/alpine` are one name; `scratch` and `context` are never contexts.
//!
//! [`BuildOptions::contexts`]: super::BuildOptions::contexts

use rbuild_types::{ImageRef, ImageRefError};

/// What a named context is, as lowering needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedContext {
    /// An image: lowered as `FROM` that reference (its config from the resolver).
    Image(ImageRef),
    /// A filesystem without image config: the graph reads it as the context `Op::Context`
    /// of the context's key.
    Filesystem,
    /// An http(s) URL that is not a git repository: one file named `context`, downloaded as
    /// `ADD <url>` downloads (mode 0600, mtime from `Last-Modified`), as BuildKit's
    /// `llb.HTTP(url, llb.Filename("context"))` makes it. Archives are not unpacked.
    Http { url: String },
}

/// Why a name cannot name a context.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContextNameError {
    #[error("invalid context name {name:?}: {source}")]
    Invalid {
        name: String,
        #[source]
        source: ImageRefError,
    },
    #[error("invalid context name {0:?}: the name is reserved")]
    Reserved(String),
}

/// The key a context name is known by: the name as an image reference in its short form,
/// without a `:latest` tag (BuildKit's `FamiliarString` less `:latest`). `None` for a
/// name that is no image reference (it then matches no context).
pub fn context_key(name: &str) -> Option<String> {
    let reference = ImageRef::parse(name).ok()?;
    let familiar = reference.familiar();
    Some(match familiar.strip_suffix(":latest") {
        Some(short) => short.to_string(),
        None => familiar,
    })
}

/// The key of a name the user gives a context, or why it cannot be one (`scratch` and
/// `context` are reserved: BuildKit never looks them up).
pub fn user_context_key(name: &str) -> Result<String, ContextNameError> {
    let key = ImageRef::parse(name)
        .map(|_| context_key(name).unwrap_or_default())
        .map_err(|source| ContextNameError::Invalid {
            name: name.to_string(),
            source,
        })?;
    if key.eq_ignore_ascii_case("scratch") || key.eq_ignore_ascii_case("context") {
        return Err(ContextNameError::Reserved(name.to_string()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_as_image_references() {
        assert_eq!(context_key("alpine").as_deref(), Some("alpine"));
        assert_eq!(context_key("alpine:latest").as_deref(), Some("alpine"));
        assert_eq!(
            context_key("docker.io/library/alpine").as_deref(),
            Some("alpine")
        );
        assert_eq!(context_key("alpine:3.18").as_deref(), Some("alpine:3.18"));
        assert_eq!(
            context_key("example.com/team/app").as_deref(),
            Some("example.com/team/app")
        );
        assert_eq!(context_key("Bad Name"), None);
    }

    #[test]
    fn user_names_are_checked() {
        assert_eq!(user_context_key("base:latest").as_deref(), Ok("base"));
        assert!(matches!(
            user_context_key("scratch"),
            Err(ContextNameError::Reserved(_))
        ));
        assert!(matches!(
            user_context_key("context"),
            Err(ContextNameError::Reserved(_))
        ));
        assert!(matches!(
            user_context_key("Upper"),
            Err(ContextNameError::Invalid { .. })
        ));
    }
}
