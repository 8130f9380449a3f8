//! The RUN executor (work in progress).
