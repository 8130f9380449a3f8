//! Where a vertex comes from in the Dockerfile: its stage, its step's position and the kind
//! of instruction, as data (progress names such as `[build 2/4] RUN make` are for people).

use serde::{Deserialize, Serialize};

/// The Dockerfile step a vertex implements.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The stage: its name (`build`), or `stage-N` for an unnamed one.
    pub stage: String,
    /// The step's position in its stage, from 1 (`FROM` is 1), as progress counts it.
    pub index: u32,
    pub instruction: Instruction,
    /// The step is an ONBUILD trigger of the stage's base.
    pub onbuild: bool,
}

/// The instructions that make vertices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Instruction {
    From,
    Run,
    Copy,
    Add,
    Workdir,
}
