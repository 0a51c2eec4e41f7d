//! `yrd serve`: the TLS listener, the tower layers in front of every service, and the steps
//! that start and stop the server.
//!
//! Nothing here imports from `cli`; the two halves of the crate share only the contract and
//! the domain, so the server can be read without the command line and the other way round.
//!
//! # Layout
//!
//! * [`config`] — the typed settings: defaults, TOML file, `YRD_*` environment, flags.
//! * [`bootstrap`] — data folder, store, seed agencies, dev PKI.
//! * [`startup`] — `Application::build` and `run_until_stopped`; [`error`] is why either fails.
//! * [`tls`] — our rustls acceptor in front of tonic; per-connection peer info.
//! * [`peer`] — the client certificate of a connection, read once at the handshake.
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
//! * [`metrics`] — metrics (OTLP and Prometheus text), readiness, and the admin listener.
//! * [`json_log`] — log lines as JSON objects carrying the call's trace and span ids.

pub mod agency_limits;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod deadline;
pub mod error;
pub mod fd_limit;
pub mod handshake_limit;
pub mod housekeeping;
pub mod identity;
pub mod intercept;
pub mod json_log;
pub mod live;
pub mod message_limit;
pub mod metrics;
pub mod peer;
pub mod refuse;
pub mod revocation;
pub mod rotation;
pub mod startup;
pub mod telemetry;
pub mod tls;
pub mod trace;
