//! Ports: what the solver needs from the outside world. They are defined in `rbuild-ports`
//! (so that the adapters, `rbuild-sandbox` for [`Executor`], `rbuild-oci` for [`ImageSource`]
//! and the HTTP half of [`RemoteSource`], `rbuild-context` for its git half, need not depend on
//! the solver; `rbuild-oci` also implements [`CacheExchange`], consulted when the cache index
//! misses) and re-exported here under their old paths. Solver tests use fakes.

pub use rbuild_ports::cache::{
    CacheExchange, CacheExchangeError, CacheExport, CacheImage, CacheLayer, CacheMountExport,
    LayerMediaType, SolvedStep,
};
pub use rbuild_ports::exec::{
    ExecError, ExecRequest, Executor, LogSink, LogStream, MountSource, ResolvedMount, SecretFile,
};
pub use rbuild_ports::image::{ImageSource, ResolvedImage, SourceError};
pub use rbuild_ports::remote::{GitSource, HttpSource, RemoteSource, RemoteSources};
