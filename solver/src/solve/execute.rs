//! Running one op once its key missed the cache: an image pulled (lazily) through the
//! `ImageSource`, which also unpacks the lazy layers of the inputs of a step about to read them,
//! a download or checkout through the remote sources, a RUN through the `Executor`, a file op
//! in-process (`FileOpRunner`). Split from `solve.rs`, which schedules and keys.

use super::*;

use std::path::Path;

use crate::fileop::CopyReuse;

impl Solver {
    /// Runs one op (blocking). Returns the vertex's layers.
    pub(super) fn execute(
        &self,
        op: &Op,
        input_ops: &[Op],
        keyed: &Keyed,
        inputs: &[VertexResult],
        log: &VertexLog,
        cancel: &CancelToken,
    ) -> Result<Vec<SnapshotId>, VertexError> {
        if matches!(op, Op::Exec(_) | Op::File(_)) {
            // A step reads its inputs' files: lazy layers (a base image's, an imported
            // step's) are downloaded and unpacked now, and only now.
            let layers: Vec<SnapshotId> = inputs
                .iter()
                .flat_map(|i| i.layers.iter().copied())
                .collect();
            self.images.unpack(&layers)?;
        }
        match op {
            Op::Scratch | Op::Context { .. } => Ok(vec![]),
            Op::Image(_) => {
                let resolved = keyed.image.as_ref().ok_or(VertexError::UnresolvedImage)?;
                Ok(self.images.pull(resolved)?)
            }
            Op::Http(_) | Op::Git(_) => {
                let prepared = self.store.snapshots().prepare()?;
                crate::remote::materialize(
                    &self.store,
                    self.remote.as_ref(),
                    op,
                    keyed.remote.as_ref(),
                    &prepared.upper,
                )?;
                let id = self.publish(prepared, keyed)?;
                Ok(vec![id])
            }
            Op::Exec(exec) => {
                let root = &inputs[0].layers;
                let paths = self.layer_paths(root)?;
                let prepared = self.store.snapshots().prepare()?;
                let mounts = crate::mounts::prepare(
                    &self.store,
                    exec,
                    inputs,
                    &self.resources,
                    self.exchange.as_deref(),
                    cancel,
                )?;
                self.executor
                    .run(ExecRequest {
                        op: &mounts.op,
                        layers: &paths,
                        upper: &prepared.upper,
                        work: &prepared.work,
                        mounts: &mounts.mounts,
                        log,
                        cancel,
                    })
                    .map_err(|source| VertexError::Exec {
                        // For the report only: bytes that are not UTF-8 show as U+FFFD.
                        command: exec
                            .args
                            .iter()
                            .map(|a| a.lossy())
                            .collect::<Vec<_>>()
                            .join(" "),
                        source,
                    })
                    .map_err(|e| self.store_full(e))?;
                let id = self.publish(prepared, keyed)?;
                Ok(root.iter().copied().chain([id]).collect())
            }
            Op::File(file) => {
                let root = &inputs[0].layers;
                let dest = MergedView::new(self.layer_paths(root)?);
                let prepared = self.store.snapshots().prepare()?;
                let reuse = self.copy_reuse(op, input_ops, keyed, &prepared.upper)?;
                let mut runner = FileOpRunner::new(&dest, &prepared.upper, self.privileges);
                if let Some((_, r)) = &reuse {
                    runner = runner.with_reuse(r);
                }
                for (n, action) in file.actions.iter().enumerate() {
                    let view;
                    let ctx;
                    let source = match action {
                        FileAction::Copy(copy) => match &input_ops[copy.source] {
                            Op::Context { name } => {
                                ctx = self.context(name)?;
                                let (_, sel) = keyed
                                    .selections
                                    .get(&n)
                                    .map(|s| &**s)
                                    .ok_or(VertexError::UnresolvedImage)?;
                                Some(CopySource::Context(&ctx, sel))
                            }
                            _ => {
                                view =
                                    MergedView::new(self.layer_paths(&inputs[copy.source].layers)?);
                                Some(CopySource::Filesystem(&view))
                            }
                        },
                        _ => None,
                    };
                    runner.apply(action, source)?;
                }
                runner.finish()?;
                let id = self.publish(prepared, keyed)?;
                if let Some((shape, r)) = reuse {
                    let files = r.into_record();
                    // A hint for the next run: failing to write it costs that run its reuse.
                    let _ = self.store.copy_donors().put(
                        &shape,
                        &id,
                        files.iter().map(|(p, f)| (p.as_slice(), f)),
                    );
                }
                Ok(root.iter().copied().chain([id]).collect())
            }
        }
    }

    /// For a file op that is one COPY from a directory context: its shape and the reuse of
    /// the snapshot the last run of that shape made (see `fileop::reuse`). None for other
    /// file ops, a step run despite its cache (`--no-cache`: fresh copies), a build that
    /// cannot give files their owners, or a selection too big to record.
    fn copy_reuse(
        &self,
        op: &Op,
        input_ops: &[Op],
        keyed: &Keyed,
        upper: &Path,
    ) -> Result<Option<(Digest, CopyReuse)>, VertexError> {
        let Op::File(file) = op else {
            return Ok(None);
        };
        let [FileAction::Copy(copy)] = file.actions.as_slice() else {
            return Ok(None);
        };
        let Op::Context { name } = &input_ops[copy.source] else {
            return Ok(None);
        };
        if keyed.rerun || copy.unpack || !self.privileges.can_chown() {
            return Ok(None);
        }
        let ctx = self.context(name)?;
        let Some((_, sel)) = keyed.selections.get(&0).map(|s| &**s) else {
            return Ok(None);
        };
        if !ctx.remembers_digests() || sel.len() > rbuild_cache::MAX_DONOR_FILES {
            return Ok(None);
        }
        let input_keys = keyed.step.inputs.iter().map(|(_, k)| *k).collect();
        let shape = crate::keys::copy_shape(op, input_keys);
        let donor = self.store.copy_donors().get(&shape).and_then(|d| {
            let dir = self.store.snapshots().path(&d.snapshot)?;
            Some((dir, d))
        });
        Ok(Some((shape, CopyReuse::new(upper, donor))))
    }
}
