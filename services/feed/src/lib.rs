//! `FeedService` (消息订阅): the exchange never calls partners; each agency reads its own
//! durable feed of the events addressed to it, in cursor order, and acknowledges how far it got
//! (docs/architecture.md, "Feed").
//!
//! The events themselves are written by the services whose writes cause them, in the same
//! transaction (`yrd_store::feed`); this crate only reads them out. A subscription is one
//! background task per stream that first pages through the backlog, then sleeps on the store's
//! per-agency wake-up (a `tokio::sync::watch`, fed on PostgreSQL across replicas by
//! `LISTEN/NOTIFY`) and reads again when woken — there is no polling loop. A heartbeat tick on an
//! idle stream re-reads the store too, so even a lost wake-up delays an event by at most one
//! heartbeat interval.
//!
//! Delivery is at-least-once: the stream carries the cursor of each event, the client resumes
//! from the last cursor it processed (or from its acknowledged position), and cursors are
//! gap-free per agency and assigned in commit order, so a resumed stream misses nothing and
//! reorders nothing, even after a server restart.
//!
//! # Layout
//!
//! * [`options`] — the tunables: heartbeat interval, read batch, send buffer, slow-subscriber
//!   timeout.
//! * [`subscription`] — one live stream: the producer task and the bounded outbound stream.
//! * [`feed_service`] — the `FeedService` handler (`Subscribe`, `Ack`, `GetFeedPosition`).
//! * `status` — the failures of its calls ([`FeedError`](status::FeedError)), mapped into `yrd_call`'s error core.

#![forbid(unsafe_code)]

pub mod feed_service;
pub mod options;
pub mod status;
pub mod subscription;

pub use feed_service::FeedHandler;
pub use options::FeedOptions;
pub use subscription::{SlowDrops, SubscriptionEnd};
