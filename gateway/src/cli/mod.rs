//! The client subcommands admins and auditors use against a running exchange, and the command
//! line that names every subcommand (`yrd serve` included).
//!
//! Nothing here imports from `server`; a client talks to the exchange over the contract only,
//! as a partner's own tooling would.
//!
//! # Layout
//!
//! * [`command`] — the command line: `yrd serve`, `health`, `cert`, `agency`, `audit`.
//! * [`connect`] — the connection flags every client subcommand shares.
//! * [`client`] — mTLS channels for the client subcommands.
//! * [`session`] — connect, get a certificate-bound token, call with it; how refusals print.
//! * [`cert`] — `yrd cert …` and `yrd agency …`, the admins' command line.
//! * [`audit`] — `yrd audit …`, the auditors' command line, which trusts nothing it did not
//!   check itself.

pub mod audit;
pub mod cert;
pub mod client;
pub mod command;
pub mod connect;
pub mod output;
pub mod session;

pub use command::{Cli, Command, ConnectArgs, HealthArgs, ServeArgs};
