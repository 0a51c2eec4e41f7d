//! `SpotCheckService`: publishing, correcting, withdrawing, reading and searching online-sales
//! spot-check results (网络销售产品质量监督抽查结果).
//!
//! A result is public to every agency holding the read role once published; only its
//! publisher may correct (a new version with a reason) or withdraw it (with a reason, still
//! readable). Every write is one store transaction: the result rows, a feed event for each
//! agency the domain's routing addresses, the call's audit leaf and its idempotent answer.
//! A non-conforming result addressed to another province's producer or seller also opens its
//! referrals (不合格产品联动处置) in that transaction: which ones is decided by the domain's
//! `referral::automatic::referrals_for`, their wire shape comes from `yrd_disposal::opener`; a
//! correction opens the ones that are missing and leaves open ones running.
//!
//! # Layout
//!
//! * [`service`] — the handler.
//! * [`convert`] — the wire result ↔ the domain's input and content.
//! * [`search`] — search filters and page tokens.
//! * [`error`] — call errors and their gRPC statuses.
//! * `grpc` — the `SpotCheckService` dispatch, each call through its `Call`.

#![forbid(unsafe_code)]

pub mod case_service;
pub mod case_wire;
pub mod convert;
pub mod error;
mod grpc;
pub mod search;
pub mod service;

pub use case_service::CaseHandler;
pub use error::CallError;
pub use service::SpotCheckHandler;
