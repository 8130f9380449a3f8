//! Build contexts (work in progress).
