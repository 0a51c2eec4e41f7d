//! `DisposalService`: linked disposal of non-conforming products (不合格产品联动处置).
//!
//! A non-conforming result found by one agency is referred (通报/移送) to the agency with
//! jurisdiction over the producer or the seller, which takes it to closure while the sampling
//! agency follows every step (Interim Measures for Product Quality Supervision Spot Checks,
//! arts. 44–49). The rules live in `yrd_domain::referral`; this crate parses the wire, asks the
//! domain, and writes each step with its feed events and audit leaf in one store transaction.
//!
//! Choices where the issue and the statutes were silent (summarised in `docs/domain.md`
//! §"Choices the code makes"):
//!
//! * **Who reads a referral.** Results are public to every agency of the exchange, and so are
//!   their referrals: any agency holding `referrals:handle` may `GetReferral` (that is how a
//!   third agency reads what it reacts to). Only the parties *act*; any other agency's step is
//!   `PERMISSION_DENIED`. A third agency learns referral ids from the result
//!   (`SpotCheckResult.referrals`, filled by `GetResult`) and, once it reacted, from its feed and
//!   from `ListReferrals` with role `REACTING`.
//! * **Objections go to the sampling agency.** The domain follows Interim Measures art. 34: the
//!   producer applies for re-inspection to the agency that organised the spot check, so
//!   `FileObjection` and `RecordReinspection` are the sampling agency's steps.
//! * **Overdue means flagged.** A deadline is `overdue` once the scheduler flagged it (the day
//!   after its due date, China Standard Time); reads never compute it from the wall clock, so
//!   what a partner reads is what its feed said.
//! * **Scheduler steps are logged** like calls: each flag commits an exchange-log entry with
//!   method `yrd-exchange/DisposalScheduler/MarkOverdue` and no agency, besides the referral's
//!   timeline and the feed.
//!
//! # Layout
//!
//! * [`service`] — the handler: the nine step methods share one path; `service/create.rs`
//!   opens by hand, `service/reads.rs` gets and lists.
//! * [`parse`] — requests → domain commands and the step's wire detail, every bad field named.
//! * [`convert`] — domain ↔ wire enums and the referral's derived fields.
//! * [`timeline`] — a decided step → the referral after it and its feed events.
//! * [`opener`] — a new referral (by hand, and the wire shape of the automatic ones the spot-check write opens).
//! * [`scheduler`] — flags passed deadlines (REFERRAL_OVERDUE, REFERRAL_ANNOUNCEMENT_REQUIRED).
//! * [`error`] — call errors and their gRPC statuses.

#![forbid(unsafe_code)]

pub mod convert;
pub mod error;
pub mod opener;
pub mod parse;
pub mod scheduler;
pub mod service;
pub mod timeline;

pub use error::CallError;
pub use opener::Opener;
pub use scheduler::DeadlineScheduler;
pub use service::DisposalHandler;
