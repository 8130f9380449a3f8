//! Layer tars: writing a snapshot directory (overlayfs upper-dir format) as a deterministic OCI
//! layer tar, and unpacking a (possibly compressed) layer tar back into overlayfs format.
//!
//! Conversions between the two whiteout conventions happen here and nowhere else:
//! overlayfs `0:0 char device x` ⇄ OCI `.wh.x`; overlayfs `trusted.overlay.opaque=y` on a
//! directory ⇄ OCI `<dir>/.wh..wh..opq`.

mod emit;
mod header;
mod meta;
mod paths;
mod unpack;
mod walk;

pub use emit::TarEmitter;
pub use paths::clean_entry_name;
pub use unpack::unpack;
pub use walk::{is_whiteout, write_tar, write_tar_clamped};

use rbuild_types::Digest;

/// Prefix of an OCI whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the OCI opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The overlayfs xattr that marks an opaque directory (value `y`).
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Digest and size of an **uncompressed** layer tar (its diff_id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LayerDigest {
    pub diff_id: Digest,
    pub size: u64,
}

impl LayerDigest {
    /// True for a tar with no entries (just the two zero end-of-archive blocks).
    pub fn is_empty_tar(&self) -> bool {
        self.size == 1024 && self.diff_id == Digest::of(&[0u8; 1024])
    }
}
