//! rbuild's HTTP: the one client set-up ([`client`]) that the registry client and the
//! downloads of `ADD <url>` and URL contexts ([`remote`], the HTTP half of the
//! `RemoteSource` port) share, so that all of them follow the same configuration.

pub mod client;
pub mod remote;

pub use client::{ClientError, HttpClients, KeyPair, TlsSettings, CONNECT_TIMEOUT, USER_AGENT};
pub use remote::HttpRemote;

#[cfg(test)]
mod tests;
