//! Layer tars: writing a snapshot directory (overlayfs upper-dir format) as a deterministic OCI
//! layer tar, and unpacking a (possibly compressed) layer tar back into overlayfs format. The
//! tar bytes themselves are `rbuild_archive`'s ([`TarEmitter`] writes them, its extraction
//! engine reads them); what is a layer's is decided here.
//!
//! Conversions between the two whiteout conventions happen here and nowhere else:
//! overlayfs `0:0 char device x` ⇄ OCI `.wh.x`; overlayfs `trusted.overlay.opaque=y` on a
//! directory ⇄ OCI `<dir>/.wh..wh..opq`.

mod ahead;
mod meta;
mod paths;
mod unpack;
mod walk;

pub use rbuild_archive::{LayerDigest, TarEmitter};
pub(crate) use unpack::archive_error;
pub use unpack::unpack;
pub(crate) use walk::emit;
pub use walk::{is_whiteout, write_tar, write_tar_clamped};

/// Prefix of an OCI whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the OCI opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The overlayfs xattr that marks an opaque directory (value `y`).
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
