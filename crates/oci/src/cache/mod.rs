//! Cache exchange (`--cache-from` / `--cache-to`) in the formats this crate owns:
//!
//! - [`record`]: the cache record (cache keys → layer descriptors), documented and versioned;
//! - [`layout`]: the `type=local` directory, an OCI image layout holding the record as the
//!   config of an image manifest whose layers are the cached blobs (BuildKit's local cache
//!   layout), written atomically under a lock, with unreferenced blobs pruned;
//! - [`registry`]: the `type=registry` cache: the record and its blobs pushed under a
//!   reference as an image index (BuildKit's default) or an image manifest (`image-manifest=true`);
//! - [`inline`]: the `type=inline` cache, the `mode=min` record in the image config's
//!   `rbuild.cache.v1` field;
//! - [`mounts`]: the contents of `RUN --mount=type=cache` directories as layer tar blobs
//!   (`cache-mounts=true`), tarred for an export and unpacked into a new mount on import;
//! - [`exchange`]: [`LocalCache`], the `CacheExchange` port of `rbuild-ports` over such
//!   directories and registry references.

pub mod exchange;
pub mod inline;
pub mod layout;
pub mod mounts;
pub mod record;
pub mod registry;

pub use exchange::{ExportMode, LocalCache, LocalCacheError};
pub use inline::{InlineError, INLINE_KEY};
pub use layout::LayoutError;
pub use mounts::CacheMountsError;
pub use record::{CacheMountBlob, CacheRecordFile, RecordError, RECORD_MEDIA_TYPE, RECORD_VERSION};
pub use registry::{RegistryCacheError, RegistryCacheOptions};
