//! Remembered entry digests, allocated lazily in blocks.
//!
//! Hashing is lazy (only what some COPY/ADD selects), so the memory for remembering digests
//! should follow what was hashed, not the size of the context: slots come in blocks of
//! [`BLOCK`] entries, each allocated on its first write. Invariant: once set, a slot never
//! changes (each slot is a `OnceLock`).

use std::sync::OnceLock;

use rbuild_types::Digest;

/// Entries per lazily allocated block.
const BLOCK: usize = 1024;

/// One block of slots.
type Block = Box<[OnceLock<Digest>]>;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    blocks: Box<[OnceLock<Block>]>,
}

impl Memo {
    /// Room for `len` entries, nothing allocated per entry yet.
    pub fn new(len: usize) -> Memo {
        Memo {
            blocks: (0..len.div_ceil(BLOCK)).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The remembered digest of entry `i`, if any.
    pub fn get(&self, i: usize) -> Option<Digest> {
        self.blocks
            .get(i / BLOCK)?
            .get()?
            .get(i % BLOCK)?
            .get()
            .copied()
    }

    /// Remembers `d` for entry `i` (a first value wins) and returns the remembered value.
    /// An index beyond the context is not remembered.
    pub fn set(&self, i: usize, d: Digest) -> Digest {
        let Some(block) = self.blocks.get(i / BLOCK) else {
            return d;
        };
        let slots = block.get_or_init(|| (0..BLOCK).map(|_| OnceLock::new()).collect());
        match slots.get(i % BLOCK) {
            Some(slot) => *slot.get_or_init(|| d),
            None => d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_blocks() {
        let m = Memo::new(3000);
        assert_eq!(m.get(2500), None);
        assert_eq!(m.set(2500, Digest::of(b"a")), Digest::of(b"a"));
        assert_eq!(
            m.set(2500, Digest::of(b"b")),
            Digest::of(b"a"),
            "first wins"
        );
        assert_eq!(m.get(2500), Some(Digest::of(b"a")));
        assert!(m.blocks[0].get().is_none(), "untouched block not allocated");
        assert_eq!(m.set(5000, Digest::of(b"c")), Digest::of(b"c"));
        assert_eq!(m.get(5000), None);
    }
}
