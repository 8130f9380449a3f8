//! The Dockerfile frontend (work in progress).
