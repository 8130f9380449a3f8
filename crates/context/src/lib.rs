//! Build contexts for rbuild: what a build can see, and what each COPY's cache key is made of.
//!
//! - [`dockerignore`]: our own Docker-exact `.dockerignore` matcher and file reader;
//! - [`Filter`] + the walk: which paths are listed, pruning excluded subtrees that no `!`
//!   exception can reopen (symlinks never followed, special files skipped), stat'ing in
//!   parallel relative to each directory's descriptor into a compact table (path arena +
//!   48-byte records; a [`ContextEntry`] is materialised only when handed out);
//! - [`BuildContext`]: the walked context, hashed lazily in parallel (`rayon` + SHA-256); a
//!   path's digest covers type, mode bits, uid/gid, symlink target and content, never mtime;
//! - [`BuildContext::select`]: what a COPY/ADD source selects and its [`Selection::digest`];
//!   [`BuildContext::select_view_excluding`] gives the same as a [`SelectionView`] (table
//!   positions, entries built on demand: what the solver keys and copies with);
//! - [`debug_listing`] / [`write_debug_listing`]: the text of `rbuild debug context`;
//! - [`BuildContext::from_tar`] / [`detect_archive`]: contexts from a tar archive (plain,
//!   gzip, bzip2, xz, zstd) on stdin or downloaded by [`fetch_url`] (through the HTTP half of
//!   the `RemoteSource` port, which `rbuild-oci` implements);
//! - [`ContextSource`]: what a `CONTEXT` argument names (stdin, directory, git URL, URL);
//!   [`BuildContext::from_git`] checks out a git context through the git half of the port;
//! - [`GitCli`]: that git half ([`rbuild_ports::GitSource`]), over the `git` command run by
//!   [`git_cmd`] with its safety rules; the solver's `ADD <git url>` uses it too;
//! - [`BuildContext::with_stat_cache`]: a persistent stat cache (keyed by inode and stat data,
//!   one flat file searched in place) so unchanged files are not re-read.
//!
//! This crate never prints; every error is a [`ContextError`] naming its path or pattern.

mod ahead;
mod archive;
mod clean;
mod context;
pub mod dockerignore;
mod entry;
mod error;
mod filter;
mod git;
pub mod git_cmd;
mod git_source;
mod glob;
mod hash;
mod http;
mod listdir;
mod listing;
mod memo;
mod resolve;
mod select;
mod source;
mod stat_cache;
mod stat_fresh;
mod table;
mod view;
mod walk;

pub use clean::{clean, clean_within_root};
pub use context::BuildContext;
pub use entry::{host_path, rel_path, ContextEntry, EntryKind};
pub use error::ContextError;
pub use filter::{Decision, Filter, Layer};
pub use git_source::GitCli;
pub use glob::{has_wildcards, Glob};
pub use http::{fetch_url, MAX_URL_CONTEXT_BYTES};
pub use listing::{debug_listing, write_debug_listing};
pub use rbuild_archive::{detect_archive, ArchiveFormat};
pub use select::{Selection, REMEMBER_LIMIT};
pub use source::{ContextSource, GitSpec};
pub use view::{FileStamp, SelectionView};
pub use walk::{walk, walk_order, StatKey, Walked};
