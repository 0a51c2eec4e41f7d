//! The `yrd` binary's library: `yrd serve` (the TLS listener, the tower layers, every service
//! mounted) and the client subcommands admins and auditors use.
//!
//! `main` stays thin; [`Application`] is what both `main` and the end-to-end tests start, so
//! the tests exercise the real server.
//!
//! # Layout
//!
//! Two halves that do not import each other:
//!
//! * [`server`] — `yrd serve`: configuration, start-up, the acceptor and the tower layers.
//! * [`cli`] — the command line and the client subcommands (`cert`, `agency`, `audit`, `results`,
//!   `health`), which reach the exchange over the contract only.
//!
//! Beside them, [`ops`] runs the operator commands that work on the store directly
//! (`yrd migrate`, `yrd backup`); it reads the server's configuration and the command line's
//! arguments, and neither half imports it.
//!
//! The modules the binary and the end-to-end tests name are re-exported here under their
//! historical paths (`yrd_gateway::config`, `yrd_gateway::client`, `yrd_gateway::audit_cli` …).

#![forbid(unsafe_code)]

pub mod cli;
pub mod fuzzing;
pub mod ops;
pub mod server;

pub use cli::audit as audit_cli;
pub use cli::audit::{check as audit_check, entry as audit_entry, keys as audit_keys};
pub use cli::{cert as cert_cli, session};
pub use server::startup::{Application, StartupError};
pub use server::{config, telemetry};
/// The client plumbing, now the `yrd-client` crate; kept under its historical path.
pub use yrd_client as client;
