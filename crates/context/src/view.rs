//! [`SelectionView`]: what a COPY/ADD source selects, kept as positions in the context's
//! compact table instead of one [`ContextEntry`] per path.
//!
//! A materialised [`Selection`](crate::Selection) of a million paths costs hundreds of MB
//! (two strings and a `PathBuf` per path); a view costs its roots plus, at most, one index per
//! selected path when `--exclude` thinned a directory (none otherwise). Entries are built one
//! at a time when a consumer walks them ([`SelectionView::entries`]).
//!
//! Invariant: a view is only meaningful with the [`BuildContext`] that made it (its indices
//! point into that context's table); every method that reads entries takes that context.

use std::ops::Range;

use rbuild_types::Digest;

use crate::context::BuildContext;
use crate::entry::ContextEntry;

/// The entries below one selected root that the selection keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Every entry in this range of table positions (no `--exclude` thinned it).
    All(Range<usize>),
    /// These table positions, ascending (what `--exclude` left in).
    Some(Vec<usize>),
}

impl Kept {
    /// Number of kept entries.
    pub fn len(&self) -> usize {
        match self {
            Kept::All(r) => r.len(),
            Kept::Some(v) => v.len(),
        }
    }

    /// The kept table positions, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let (range, list) = match self {
            Kept::All(r) => (Some(r.clone()), None),
            Kept::Some(v) => (None, Some(v.iter().copied())),
        };
        range
            .into_iter()
            .flatten()
            .chain(list.into_iter().flatten())
    }
}

/// One selected root: its entry as the user named it, and what below it is selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ViewRoot {
    /// The root as [`Selection::roots`](crate::Selection::roots) holds it (`rel` as written).
    pub entry: ContextEntry,
    /// Prefix of the table paths below this root (`"dir/"` of the real, followed path; empty
    /// for the context root): stripped to get a path relative to the root.
    pub real_prefix: String,
    /// Prefix shown instead (`"name/"` as written; empty for `.`).
    pub shown_prefix: String,
    /// The selected entries strictly below the root (empty for a file root).
    pub kept: Kept,
}

/// What a COPY/ADD source selects, as positions in its context's table. See the module docs;
/// [`BuildContext::select_view_excluding`] makes one. Its [`digest`](Self::digest) equals
/// [`Selection::digest`](crate::Selection::digest) for the same source and patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionView {
    pub(crate) roots: Vec<ViewRoot>,
    /// The selected-content digest (see [`Selection::digest`](crate::Selection::digest)).
    pub digest: Digest,
}

impl SelectionView {
    /// The selected roots in order (sorted as [`Selection::roots`](crate::Selection::roots)).
    pub fn roots(&self) -> impl ExactSizeIterator<Item = &ContextEntry> + '_ {
        self.roots.iter().map(|r| &r.entry)
    }

    /// Number of selected paths: roots plus every entry below them.
    pub fn len(&self) -> usize {
        self.roots.iter().map(|r| 1 + r.kept.len()).sum()
    }

    /// Whether nothing is selected (a wildcard that matched nothing).
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The entries strictly below root number `root` (in [`roots`](Self::roots) order),
    /// pre-order, each built when reached, `rel` relative to the context root and shown under
    /// the name the source was written with (as in [`Selection::entries`](crate::Selection::entries)).
    /// `ctx` must be the context that made this view. An out-of-range `root` yields nothing.
    pub fn entries<'a>(
        &'a self,
        ctx: &'a BuildContext,
        root: usize,
    ) -> impl Iterator<Item = ContextEntry> + 'a {
        self.roots
            .get(root)
            .into_iter()
            .flat_map(move |r| r.kept.iter().map(move |i| view_entry(ctx, r, i)))
    }
}

/// What the key knew of a selected regular file: its entry digest (type, mode, owner and
/// content; see [`crate::hash::entry_digest`]) and the mtime its walk found. A copy that
/// reuses an earlier snapshot's file compares these with what that file was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub digest: Digest,
    pub mtime_ns: i64,
}

impl SelectionView {
    /// [`entries`](Self::entries), each regular file with its [`FileStamp`] (`None` for other
    /// kinds). The digests come from the context's memo or stat cache, which keying the
    /// selection filled: use it only when [`BuildContext::remembers_digests`] (else each
    /// file's content is read again).
    pub fn entries_stamped<'a>(
        &'a self,
        ctx: &'a BuildContext,
        root: usize,
    ) -> impl Iterator<Item = Result<(ContextEntry, Option<FileStamp>), crate::ContextError>> + 'a
    {
        self.roots.get(root).into_iter().flat_map(move |r| {
            r.kept.iter().map(move |i| {
                let e = view_entry(ctx, r, i);
                if e.kind != crate::EntryKind::File {
                    return Ok((e, None));
                }
                let digest = ctx.entry_digest_unremembered(i)?;
                let mtime_ns = ctx.stat_key(i).mtime_ns;
                Ok((e, Some(FileStamp { digest, mtime_ns })))
            })
        })
    }
}

/// Table entry `i` below root `r`, renamed under the root's shown name.
pub(crate) fn view_entry(ctx: &BuildContext, r: &ViewRoot, i: usize) -> ContextEntry {
    let mut e = ctx.entry(i);
    let below = e.rel.get(r.real_prefix.len()..).unwrap_or("");
    e.rel = format!("{}{below}", r.shown_prefix);
    e
}
