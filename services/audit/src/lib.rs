//! The tamper-evident exchange log (审计日志): one Merkle leaf per call, appended by the
//! gateway's audit layer or, for writes, in the same transaction as the write; a single
//! sequencer that assigns leaf indexes and publishes signed tree heads; receipts; and the
//! `AuditService` auditors read it through.
//!
//! # Layout
//!
//! * [`log_key`] — the log's receipt and tree-head keys, shared by every replica through the
//!   store, rotated with an overlap and never pruned.
//! * [`sequencer`] — the one task (per deployment) that sequences leaves and signs tree heads.
//! * [`service`] — the `AuditService` handler.

#![forbid(unsafe_code)]

pub mod log_key;
pub mod sequencer;
pub mod service;

pub use sequencer::Sequencer;
pub use service::AuditHandler;
