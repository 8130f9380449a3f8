//! Image formats (work in progress).
