//! The client subcommands admins and auditors use against a running exchange, and the command
//! line that names every subcommand (`yrd serve` included).
//!
//! Nothing here imports from `server`; a client talks to the exchange over the contract only,
//! as a partner's own tooling would.
//!
//! # Layout
//!
//! * [`command`] — the command line: `yrd serve`, `health`, `cert`, `agency`, `audit`, `results`.
//! * [`connect`] — the connection flags every client subcommand shares.
//! * [`session`] — a `yrd-client` connection with its certificate-bound token, opened from
//!   those flags. (The client plumbing itself — mTLS, tokens, retries, how refusals print — is
//!   the `yrd-client` crate, which partners use too.)
//! * [`cert`] — `yrd cert …`, the admins' command line for certificates; [`dev_pki`] is
//!   `yrd cert dev-pki`, the dev PKI written into a folder offline.
//! * [`ops`] — the arguments of `yrd migrate` and `yrd backup`, which work on the store
//!   directly (run by the crate's `ops` module, beside the server).
//! * [`agency`] — `yrd agency …`, the admins' command line for agencies.
//! * [`error`] — the error both of them fail with, and the admin session they open.
//! * [`audit`] — `yrd audit …`, the auditors' command line, which trusts nothing it did not
//!   check itself.
//! * [`results`] — `yrd results import/export`, spot-check results in and out of spreadsheets.
//! * [`console`] — `yrd console`, the local web console over the same client code.
//! * [`desk`] — `yrd feed tail`, `yrd referral …`, `yrd application …`: an officer's desk at
//!   a partner agency.

pub mod agency;
pub mod audit;
pub mod cert;
pub mod command;
pub mod connect;
pub mod console;
pub mod desk;
pub mod dev_pki;
pub mod error;
pub mod ops;
pub mod output;
pub mod results;
pub mod session;

pub use command::{Cli, Command, ConnectArgs, HealthArgs, ServeArgs};
