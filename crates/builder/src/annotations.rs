//! `--annotation [TYPE[,TYPE…]:]KEY=VALUE` (buildx's syntax): OCI annotations on the image
//! manifest (each platform's, the default type) and on the index of a multi-platform build.

use std::collections::BTreeMap;

/// The annotations a build writes, by where they go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    /// `manifest:` (and no type): on every image manifest.
    pub manifest: BTreeMap<String, String>,
    /// `index:`: on the image index of a multi-platform build (a single-platform build has
    /// none, and writes them nowhere).
    pub index: BTreeMap<String, String>,
}

/// A malformed or unsupported `--annotation`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    #[error("invalid --annotation {0:?}: expected [TYPE:]KEY=VALUE")]
    Form(String),
    #[error(
        "invalid --annotation {item:?}: unsupported type {kind:?} (rbuild writes `manifest` and \
         `index`; descriptor annotations and per-platform ones are not supported yet)"
    )]
    Type { item: String, kind: String },
}

impl Annotations {
    /// Adds one `--annotation` value. A later value for the same key and type wins.
    pub fn add(&mut self, item: &str) -> Result<(), AnnotationError> {
        let form = || AnnotationError::Form(item.to_string());
        let (left, value) = item.split_once('=').ok_or_else(form)?;
        let (kinds, key) = match left.split_once(':') {
            Some((kinds, key)) => (kinds, key),
            None => ("manifest", left),
        };
        if key.is_empty() {
            return Err(form());
        }
        for kind in kinds.split(',') {
            let map = match kind {
                "manifest" => &mut self.manifest,
                "index" => &mut self.index,
                other => {
                    return Err(AnnotationError::Type {
                        item: item.to_string(),
                        kind: other.to_string(),
                    })
                }
            };
            map.insert(key.to_string(), value.to_string());
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.manifest.is_empty() && self.index.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_as_buildx_writes_them() {
        let mut a = Annotations::default();
        a.add("org.opencontainers.image.title=App").unwrap();
        a.add("manifest:org.opencontainers.image.url=https://x.example/a=b")
            .unwrap();
        a.add("index:org.opencontainers.image.vendor=V").unwrap();
        a.add("manifest,index:both=1").unwrap();
        assert_eq!(a.manifest["org.opencontainers.image.title"], "App");
        assert_eq!(
            a.manifest["org.opencontainers.image.url"],
            "https://x.example/a=b"
        );
        assert_eq!(a.index["org.opencontainers.image.vendor"], "V");
        assert_eq!(
            (&a.manifest["both"], &a.index["both"]),
            (&"1".into(), &"1".into())
        );
        assert!(!a.manifest.contains_key("org.opencontainers.image.vendor"));
        for bad in ["novalue", "=v", "index:=v"] {
            assert!(matches!(a.add(bad), Err(AnnotationError::Form(_))), "{bad}");
        }
        for bad in [
            "manifest-descriptor:k=v",
            "manifest[linux/amd64]:k=v",
            "x:k=v",
        ] {
            assert!(
                matches!(a.add(bad), Err(AnnotationError::Type { .. })),
                "{bad}"
            );
        }
    }
}
