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
//! * [`handshake_limit`] — caps on connections waiting for their handshake, total and per source.
//! * [`fd_limit`] — the open-file limit, raised to the hard limit at start.
//! * [`message_limit`] — an oversized request message answers `RESOURCE_EXHAUSTED`, naming the limit.
//! * [`trace`] — the outermost layer: W3C `traceparent` in, the call's server span, `x-trace-id` out.
//! * [`telemetry`] — log lines to stderr and, when configured, span export over OTLP/gRPC.
//! * [`identity`] — the layer that turns the peer certificate into the caller's identity.
//! * [`live`] — streaming responses re-authorized while they stream (revocation, suspension,
//!   token and certificate expiry end them).
//! * [`refuse`] — refusals that read the request body first, sparing the connection.
//! * [`revocation`] — the revoked set checked per call and the CRL, kept in step on every replica.
//! * [`rotation`] — server certificate and CA bundle reloaded from disk without a restart.
//! * [`housekeeping`] — hourly pruning of expired request-id answers.
//! * [`audit`] — the layer that appends one exchange-log leaf per call.
//! * [`auth`] — the token layer: certificate-bound bearer tokens and the role each method needs.
//! * [`agency_limits`] — per-agency rate and concurrency limits.
//! * [`startup`] — `Application::build` and `run_until_stopped`.
//! * [`client`] — mTLS channels for the client subcommands.
//! * [`session`] — connect, get a certificate-bound token, call with it; how refusals print.
//! * [`cert_cli`] — `yrd cert …` and `yrd agency …`, the admins' command line.
//! * [`audit_cli`] — `yrd audit …`, the auditors' command line (its reading commands, its
//!   `verify` and its connection live in `audit_read`, `audit_verify`, `audit_session`);
//!   [`audit_entry`] is one log entry as it prints and exports, [`audit_check`] what is
//!   verified without trusting the server, [`audit_keys`] which published key it trusts for
//!   what.
//! * [`cli`] — the command line.

#![forbid(unsafe_code)]

pub mod agency_limits;
pub mod audit;
pub mod audit_check;
pub mod audit_cli;
pub mod audit_entry;
pub mod audit_keys;
mod audit_read;
mod audit_session;
mod audit_verify;
pub mod auth;
pub mod bootstrap;
pub mod cert_cli;
pub mod cli;
pub mod client;
pub mod config;
pub mod fd_limit;
pub mod handshake_limit;
pub mod housekeeping;
pub mod identity;
pub mod live;
pub mod message_limit;
pub mod refuse;
pub mod revocation;
pub mod rotation;
pub mod session;
pub mod startup;
pub mod telemetry;
pub mod tls;
pub mod trace;

pub use startup::{Application, StartupError};
