//! `LicensingService`: "Hu-Lu joint processing" (沪鲁通办) of industrial-product production
//! licences (工业产品生产许可证; fertilizer 化肥 is the pilot product) between Shanghai (310000)
//! and Shandong (370000).
//!
//! An enterprise applies at the window of one province (受理地), which submits the application
//! through the exchange; the province of the production address (发证地) accepts, examines,
//! decides and issues; on-site verification may be delegated to the window's province. Every
//! step is checked by `yrd_domain::licensing` (from the caller's certificate, never the
//! message), written in one transaction with its feed events to the other province and its
//! audit leaf, and visible to both provinces only: every other agency is refused.
//!
//! # Layout
//!
//! * [`service`] — the handler's core: identity, the pilot and party checks, one step's write.
//! * `submit`, `steps`, `decisions`, `reads`, `grpc` — the RPCs, by stage.
//! * `catalogue` — `ListCatalogueProducts`, the configured catalogue as partners see it.
//! * `overdue` — what the scheduler writes for an application whose time limit passed.
//! * [`scheduler`] — the overdue scheduler.
//! * [`view`] — the domain's application and licence as the contract shows them.
//! * [`parse`] — field checks shared by the requests.
//! * [`page`] — list filters and page tokens.
//! * [`config`] — catalogue, calendar, time limits, pilot agencies.
//! * [`error`] — call errors and their gRPC statuses.

#![forbid(unsafe_code)]

/// The answer shape shared by most steps.
macro_rules! app_response {
    ($ty:ident) => {
        |application, _licence, receipt| pb::$ty {
            application: Some(application),
            receipt,
        }
    };
}

mod catalogue;
pub mod config;
mod decisions;
pub mod error;
mod grpc;
mod overdue;
pub mod page;
pub mod parse;
mod reads;
pub mod scheduler;
pub mod service;
mod steps;
mod submit;
pub mod view;

pub use config::{LicensingConfig, LicensingSettings};
pub use error::CallError;
pub use service::LicensingHandler;
