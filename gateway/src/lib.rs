//! The `yrd` binary's library: `yrd serve` (the TLS listener, the tower layers, every service
//! mounted) and the client subcommands admins and auditors use.
//!
//! `main` stays thin; [`startup::Application`] is what both `main` and the end-to-end tests
//! start, so the tests exercise the real server.
//!
//! # Layout
//!
//! * [`config`] — the typed settings: defaults, TOML file, `YRD_*` environment, flags.
//! * [`bootstrap`] — data folder, store, seed agencies, dev PKI.
//! * [`tls`] — our rustls acceptor in front of tonic; per-connection peer info.
//! * [`identity`] — the layer that turns the peer certificate into the caller's identity.
//! * [`startup`] — `Application::build` and `run_until_stopped`.
//! * [`client`] — mTLS channels for the client subcommands.
//! * [`cli`] — the command line.

#![forbid(unsafe_code)]

pub mod bootstrap;
pub mod cli;
pub mod client;
pub mod config;
pub mod identity;
pub mod startup;
pub mod tls;

pub use startup::{Application, StartupError};
