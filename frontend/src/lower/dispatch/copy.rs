//! COPY and ADD: sources, destination, flags and heredoc files lowered to one `File` op.
//! ADD's remote sources (see [`remote`]) each get an `Http` or `Git` vertex the copy reads
//! from, as BuildKit's `llb.HTTP` / `llb.Git` states.

use rbuild_graph::{GitOp, HttpOp};

use super::*;

mod remote;

use remote::SourceKind;

impl Lowerer<'_> {
    pub(super) fn copy(
        &mut self,
        st: &mut StageState,
        node: &Node,
        c: &CopyView<'_>,
        source: Option<&StageSource>,
    ) -> Result<(), LowerError> {
        let kw = if c.is_add { "ADD" } else { "COPY" };
        let mut exclude = Vec::with_capacity(c.excludes.len());
        for e in c.excludes {
            // Checked by the solver, which owns the `.dockerignore` matcher.
            exclude.push(self.expand(st, &e.value).map_err(|err| at(err, e.span))?);
        }
        let checksum = match c.checksum {
            None => None,
            Some(sum) => {
                let value = self.expand(st, &sum.value).map_err(|e| at(e, sum.span))?;
                Some((value, sum.span))
            }
        };
        // ADD extracts local archives unless `--unpack=false` (BuildKit's
        // AttemptUnpackDockerCompatibility); COPY never does. Downloads are extracted only
        // with an explicit `--unpack=true`.
        let unpack = c.is_add && !matches!(c.unpack, Some(Spanned { value: false, .. }));
        let unpack_remote = matches!(c.unpack, Some(Spanned { value: true, .. }));
        let chown = match c.chown {
            None => None,
            Some(f) => Some(self.expand(st, &f.value).map_err(|e| at(e, f.span))?),
        }
        .filter(|c| !c.is_empty());
        let chmod_text = match c.chmod {
            None => None,
            Some(f) => Some((
                self.expand(st, &f.value).map_err(|e| at(e, f.span))?,
                f.span,
            )),
        }
        .filter(|(c, _)| !c.is_empty());
        let chmod = match &chmod_text {
            None => None,
            Some((text, span)) => {
                match Chmod::parse(text).map_err(|e| at(ins::InstructionError::from(e), *span))? {
                    Chmod::Octal(m) => Some(FileMode::Octal(m)),
                    Chmod::Symbolic(s) => Some(FileMode::Symbolic(s)),
                }
            }
        };
        let chmod_text = chmod_text.map(|(t, _)| t);
        let mut srcs: Vec<String> = Vec::with_capacity(c.sources.len());
        let mut kinds: Vec<SourceKind> = Vec::with_capacity(c.sources.len());
        for word in c.sources {
            let span = node.word_span(word);
            let s = self.expand(st, word).map_err(|e| at(e, span))?;
            let kind = remote::classify(&s).map_err(|problem| {
                at(
                    LowerError::BadGitSource {
                        src: s.clone(),
                        problem,
                    },
                    span,
                )
            })?;
            match kind {
                SourceKind::Http { .. } if !c.is_add => return Err(at(LowerError::CopyUrl, span)),
                SourceKind::Git(_) if !c.is_add => return Err(at(LowerError::CopyGit, span)),
                _ => {}
            }
            srcs.push(s);
            kinds.push(kind);
        }
        if let Some((value, span)) = &checksum {
            if srcs.len() != 1 {
                return Err(at(LowerError::ChecksumSources, *span));
            }
            match kinds.first() {
                Some(SourceKind::Http { .. }) => {
                    parse_checksum(value).map_err(|e| at(ins::InstructionError::from(e), *span))?;
                }
                // BuildKit's git source takes hex digits the commit id must start with.
                Some(SourceKind::Git(_)) => {
                    ins::parse_git_checksum(value)
                        .map_err(|e| at(ins::InstructionError::from(e), *span))?;
                }
                _ => return Err(at(LowerError::ChecksumSource, *span)),
            }
        }
        let inline: Vec<&Heredoc> = c.heredocs.iter().collect();
        let dest_raw = self
            .expand(st, c.dest)
            .map_err(|e| at(e, node.word_span(c.dest)))?;
        let dest = paths::copy_dest(&st.cwd, &dest_raw);
        let name = self.display(st, node, false);
        let kind = if c.is_add {
            StepKind::Add
        } else {
            StepKind::Copy
        };
        let label = st.step(kind, name);

        let mut inputs = vec![st.root];
        let mut actions = Vec::new();
        let local = kinds.contains(&SourceKind::Local);
        // Local sources read input 1: the context, a stage or an image.
        let mut in_context = false;
        if local {
            let (src_vertex, from_context) = match source {
                None => (self.b.context(), true),
                Some(StageSource::Context) => (self.b.context(), true),
                Some(StageSource::Stage(j)) => match &self.done[*j] {
                    Some(s) => (s.root, false),
                    None => {
                        return Err(LowerError::StageOrder {
                            from: self.plan.display_name(*j),
                            stage: st.display.clone(),
                        })
                    }
                },
                Some(StageSource::Image(r)) => {
                    let platform = self.plan.options.platform.clone();
                    (
                        self.b.image(r, &platform, format!("FROM {r}"), node.span),
                        false,
                    )
                }
                // A filesystem context is read like the main one: by what the copy selects.
                Some(StageSource::Named(n)) => match self.plan.contexts.get(n) {
                    Some(NamedContext::Image(r)) => {
                        let platform = self.plan.options.platform.clone();
                        (
                            self.b.image(r, &platform, format!("FROM {r}"), node.span),
                            false,
                        )
                    }
                    Some(NamedContext::Filesystem) => (self.b.named_context(n), true),
                    Some(NamedContext::Http { url }) => (self.b.named_http(n, url), false),
                    None => return Err(LowerError::UnresolvedContext(n.clone())),
                },
            };
            inputs.push(src_vertex);
            in_context = from_context;
        }
        for (s, kind) in srcs.iter().zip(&kinds) {
            let (op, src) = match kind {
                SourceKind::Local => (None, String::new()),
                SourceKind::Http { filename } => (
                    Some(Op::Http(HttpOp {
                        url: s.clone(),
                        filename: filename.clone(),
                        checksum: checksum.as_ref().map(|(v, _)| v.clone()),
                    })),
                    format!("/{filename}"),
                ),
                SourceKind::Git(g) => (
                    Some(Op::Git(GitOp {
                        remote: g.remote.clone(),
                        reference: g.reference.clone(),
                        subdir: g.subdir.clone(),
                        keep_git_dir: c.keep_git_dir.is_some(),
                        checksum: checksum.as_ref().map(|(v, _)| v.clone()),
                    })),
                    "/".to_string(),
                ),
            };
            if let Some(op) = op {
                let vertex = self.b.remote(op, s.clone(), node.span, st.ignore_cache);
                inputs.push(vertex);
                actions.push(FileAction::Copy(CopyAction {
                    source: inputs.len() - 1,
                    src,
                    dest: dest.clone(),
                    chown: chown.clone(),
                    chmod: chmod.clone(),
                    allow_empty_wildcard: false,
                    unpack: unpack_remote,
                    exclude: exclude.clone(),
                    parents: None,
                }));
                continue;
            }
            actions.push(FileAction::Copy(CopyAction {
                source: 1,
                src: if in_context {
                    paths::context_src(s)
                } else {
                    paths::fs_src(s)
                },
                dest: dest.clone(),
                chown: chown.clone(),
                chmod: chmod.clone(),
                allow_empty_wildcard: paths::has_wildcards(s),
                unpack,
                exclude: exclude.clone(),
                // `--parents`: what precedes a `/./` pivot is dropped, the rest kept.
                parents: c.parents.map(|_| {
                    let base = s.find("/./").map_or("", |i| &s[..i]);
                    if in_context {
                        paths::context_src(base)
                    } else {
                        paths::fs_src(base)
                    }
                }),
            }));
        }
        for doc in &inline {
            let raw = heredoc_data(doc);
            let data = if doc.expand {
                // Variables are expanded in text only; a body that is not UTF-8 is copied
                // as it is only when nothing is expanded in it.
                let Some(text) = raw.to_str() else {
                    return Err(at(
                        LowerError::NonUtf8Heredoc {
                            name: doc.name.clone(),
                        },
                        node.span,
                    ));
                };
                let opts = LexOptions {
                    skip_quotes: true,
                    ..LexOptions::default()
                };
                shell::expand_with(text, &st.env, self.plan.escape, opts)
                    .map_or_else(|_| text.to_string(), |e| e.word)
                    .into_bytes()
            } else {
                raw.into_bytes()
            };
            let path = if dest.ends_with('/') {
                format!("{dest}{}", doc.name)
            } else {
                dest.clone()
            };
            actions.push(FileAction::Mkfile(MkfileAction {
                path,
                data,
                // A heredoc file starts as 0644; a symbolic mode applies to that.
                mode: chmod.as_ref().map_or(0o644, |m| m.apply(0o644, false)),
                chown: chown.clone(),
            }));
        }
        st.root = self.b.add(
            Op::File(FileOp { actions }),
            inputs,
            label,
            Some(node.span),
            st.ignore_cache,
        );
        let mut msg = kw.to_string();
        if let Some(c) = &chown {
            msg.push_str(&format!(" --chown={c}"));
        }
        if let Some(c) = &chmod_text {
            msg.push_str(&format!(" --chmod={c}"));
        }
        for s in &srcs {
            msg.push_str(&format!(" {s}"));
        }
        for d in &inline {
            msg.push_str(&format!(" <<{}", d.name));
        }
        msg.push_str(&format!(" {dest_raw}"));
        st.history(msg, true);
        Ok(())
    }
}

/// COPY's and ADD's arguments, seen the same way.
pub(super) struct CopyView<'a> {
    is_add: bool,
    sources: &'a [String],
    dest: &'a str,
    heredocs: &'a [Heredoc],
    chown: Option<&'a Spanned<String>>,
    chmod: Option<&'a Spanned<String>>,
    parents: Option<Span>,
    excludes: &'a [Spanned<String>],
    checksum: Option<&'a Spanned<String>>,
    keep_git_dir: Option<Span>,
    unpack: Option<Spanned<bool>>,
}

impl<'a> CopyView<'a> {
    pub(super) fn copy(c: &'a CopyArgs) -> Self {
        CopyView {
            is_add: false,
            sources: &c.sources,
            dest: &c.dest,
            heredocs: &c.heredocs,
            chown: c.chown.as_ref(),
            chmod: c.chmod.as_ref(),
            parents: c.parents,
            excludes: &c.excludes,
            checksum: None,
            keep_git_dir: None,
            unpack: None,
        }
    }

    pub(super) fn add(a: &'a AddArgs) -> Self {
        CopyView {
            is_add: true,
            sources: &a.sources,
            dest: &a.dest,
            heredocs: &a.heredocs,
            chown: a.chown.as_ref(),
            chmod: a.chmod.as_ref(),
            parents: None,
            excludes: &a.excludes,
            checksum: a.checksum.as_ref(),
            keep_git_dir: a.keep_git_dir,
            unpack: a.unpack,
        }
    }
}
