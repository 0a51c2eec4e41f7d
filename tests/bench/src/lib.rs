//! `yrd-bench`: the throughput instrument of the exchange (issue 18, "the instrument first").
//!
//! It starts `yrd serve` from its built binary as a child process on a fresh store, and a bare
//! tonic echo server (this binary again, with `--echo-serve`) behind the same rustls mTLS
//! acceptor; drives both with the same generator (N connections × M calls in flight, closed or
//! open loop) over mTLS with bound tokens; and reports latency percentiles, calls per second,
//! the server's CPU time per call and peak memory, and each row's ratio to the echo measured in
//! the same run. How to run it and the figures measured: `docs/performance.md`.
//!
//! The same code starts, crashes (SIGKILL) and restarts `yrd serve` for the crash test of the
//! gateway (`gateway/tests/crash.rs`), so a partner's view of the exchange is written once.
//!
//! # Layout
//!
//! * [`cli`] — the command line.
//! * [`server`] — the child processes (`yrd serve`, the echo) and the throw-away PostgreSQL
//!   database; [`server::YrdServer::crash`] and [`server::YrdServer::restart`];
//!   [`server::YrdServer::start_replica`] for `--replicas` and the replica suite
//!   (`gateway/tests/replicas/`).
//! * [`echo`] — the baseline service and how it is served.
//! * [`connect`] — client connections with the dev certificates and bound tokens.
//! * [`load`] — the generator and its measurements; [`procstat`] — CPU and memory from `/proc`.
//! * [`workloads`] — what each workload calls; [`report`] — the table and JSON.
//! * [`soak`] — `--soak`: the workloads round after round, the server's memory and open file
//!   descriptors sampled and bounded.
//! * [`fill`] — `yrd-bench load`: a store filled with synthetic results in bulk.

#![forbid(unsafe_code)]

pub mod cli;
pub mod connect;
pub mod echo;
pub mod fill;
pub mod load;
pub mod procstat;
pub mod report;
pub mod server;
pub mod soak;
pub mod workloads;
