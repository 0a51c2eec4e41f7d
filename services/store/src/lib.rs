//! Persistence of the exchange for SQLite (the embedded default) and PostgreSQL (production and
//! scale-out), behind one API.
//!
//! Both backends run the same query text through sqlx's `Any` driver: parameters are written
//! `$1, $2, …` (SQLite accepts that form too), times are Unix microseconds in `BIGINT`
//! columns and flags are `0/1` `BIGINT`s, so no query needs a second spelling. What does differ
//! (DDL details, connection pragmas, PostgreSQL-only features) stays inside this crate:
//! `migrations/sqlite` and `migrations/postgres` hold each backend's schema, and
//! [`Store::open`] sets SQLite's durability pragmas.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one connection
//! while reads use a wider pool; on PostgreSQL both are the same pool. Every write is a
//! [`Write`] committed by [`Store::commit`], which group-commits concurrent writes.
//!
//! # Layout
//!
//! * [`db`] — opening a store, migrations, the backend in use.
//! * [`agencies`] — agencies known to the exchange.
//! * [`write`] — the one write primitive: a [`Write`] value committed by [`Store::commit`],
//!   group-committed; idempotency of requests in [`write::idempotency`].
//! * [`certificates`] — certificates issued to them, revocation and the CRL number.
//! * [`feed`] — the per-agency feed: events appended with their write, cursors, acks, wake-ups.
//! * [`cases`] — cases (串案): the findings index, links and unlinks.
//! * [`results`] — spot-check results: model, writes, search.
//! * [`referrals`] — disposal referrals: one-transaction steps, lists, due deadlines.
//! * [`licensing`] — licence applications, their history and licences (沪鲁通办).
//! * [`signing_keys`] — the ES256 keys shared by every replica.
//! * [`audit`] — the append-only exchange log: leaves, Merkle nodes, signed tree heads, proofs.
//! * [`backup`] — online copies of the SQLite store, and the check that a copy's log is whole.
//! * [`testing`] — fresh throw-away databases for tests (feature `test-support`).

#![forbid(unsafe_code)]

pub mod agencies;
pub mod audit;
pub mod backup;
pub mod cases;
pub mod certificates;
mod conditions;
mod counters;
pub mod db;
mod decode;
mod error;
pub mod feed;
pub mod licensing;
mod multirow;
pub mod ops;
pub mod referrals;
pub mod results;
pub mod signing_keys;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
mod text;
mod time_codec;
pub mod write;

pub use agencies::{Agency, AgencyState, AgencyUpdate, NewAgency};
pub use audit::{
    AppendedLeaf, AuditError, LeafFilter, NewTreeHead, SEQUENCER_LOCK_KEY, SequencerLock,
    StoredLeaf, TreeHead,
};
pub use cases::{
    CaseCursor, CaseFilter, CaseMember, CaseRows, CaseState, LinkRows, NewCase, NewUnlink,
    StoredCase, StoredFinding, StoredUnlink, UnlinkError,
};
pub use certificates::{
    CertificateCursor, CertificateFilter, CertificateRecord, CertificateState, RevokeError,
    RevokedCertificate,
};
pub use db::{Backend, Store, StoreOptions};
pub use error::StoreError;
pub use feed::{AckError, AckRows, BeyondLatest, FeedEventRecord, FeedPosition, NewFeedEvent};
pub use licensing::{
    ApplicationColumns, ApplicationFilter, ApplicationStepWrite, LicenceFilter, LicenceWrite,
    LicensingWriteError, NewApplication, PageCursor, StoredApplication, StoredLicence,
};
pub use referrals::{
    NewReferral, ReferralChange, ReferralCursor, ReferralFilter, ReferralParty, ReferralWriteError,
    ResultReferral, StoredReferral,
};
pub use results::{
    LoadedResult, NewCorrection, NewPublication, NewWithdrawal, ResultCursor, ResultFilter,
    ResultState, ResultWriteError, StoredResult,
};
pub use signing_keys::{KeyPurpose, SigningKeyRecord};
pub use time_codec::stored_precision;
pub use write::queue::{BatchSizeObserver, BatchStats, MAX_BATCH, MAX_FLUSHES};
pub use write::{
    Answer, Answered, Claim, Committed, IdempotencyKey, NoRows, Response, Rows, Write, WriteError,
    WriteOutcome, Written,
};
