//! A spot-check result (监督抽查结果) of an online-sales product (网络销售), and the one place
//! where a published result is parsed from what came off the wire.
//!
//! Why it is shaped so:
//!
//! * **Every violation at once.** A partner system that sends a bad result gets back one
//!   `INVALID_ARGUMENT` whose `google.rpc.BadRequest` lists *every* bad field, so it can fix
//!   them all in one round trip. [`SpotCheckResult::parse`] therefore never stops at the first
//!   problem: it collects [`FieldViolation`]s whose `field` is the wire path in protobuf
//!   snake_case (`producer.uscc`, `test_items[2].verdict`), which the gateway copies verbatim.
//! * **Parse, don't validate.** [`ResultInput`] is the untyped mirror of the wire message
//!   (strings, `i32` enums, `Option` sub-messages as prost makes them); [`SpotCheckResult`] is
//!   the typed value that only `parse` can build. Its failed items are *derived* from the test
//!   items' verdicts, so "failed items that do not match the failed test items" cannot exist
//!   past the edge.
//! * **Stable bytes for idempotency.** The store hashes [`SpotCheckResult::canonical_digest_input`]
//!   to tell a retry (same body) from a conflicting reuse of a request id. The bytes depend
//!   only on the parsed value: surrounding whitespace, letter case of hex digests and media
//!   types, the order of the failed items and a "/" for "none" do not change them.
//!
//! Wire conventions this module assumes (the `.proto` must agree):
//!
//! * proto3 scalars: an empty string means "not given"; in the optional text fields of a
//!   published table (trademark, model, production date/batch) "/" also means "none" (docs/domain.md).
//! * Surrounding whitespace (including the ideographic space U+3000) is trimmed from every text.
//! * Enum numbers: [`SamplingWay`], [`Verdict`], [`ItemVerdict`] and [`CampaignKind`] give
//!   theirs in `from_wire`/`wire`, equal to the numbers of `spotcheck.proto`/`common.proto`;
//!   `0` is the AIP `_UNSPECIFIED` value and is refused where a value is required.
//! * Field paths are those of `yrd.exchange.v1.SpotCheckResult` (the proto is the contract):
//!   `product.production_date`, `product.batch_number`, `producer` is a `Party`, and so on.
//! * Dates are `YYYY-MM-DD` strings (calendar dates carry no time zone; "today" is the
//!   caller's, passed in, so tests never read a clock).
//! * Lengths are counted in characters (Unicode scalar values), not bytes, so a Chinese name
//!   and a Latin one have the same limit. The bounds are the `MAX_*` constants below.
//!
//! Choices where docs/domain.md is silent, written down here as it asks:
//!
//! * The producer's USCC and address are required (the nominal producer decides jurisdiction
//!   and is the party a referral is addressed to); the seller's USCC is optional.
//! * Shop details (platform, shop name, URL) are required for an online purchase; for on-site
//!   sampling they are optional but, if any is given, all three are.
//! * Test-item names must be unique within a result, because failed items refer to them by name.
//! * A Delta joint campaign (长三角联合抽查) names its product kind, since that campaign is
//!   organised per product kind.
//! * A test item may be "not judged" (不判定, recorded for information); it never counts as a
//!   failed item, and the overall verdict is only ever conforming or non-conforming.
//! * Sampling after the report date is reported on `sampling_date`.
//!
//! # Layout
//!
//! * this file — the limits (`MAX_*`) every check uses;
//! * `input.rs` — the wire mirror; `codes.rs` — the enumerations and their wire numbers;
//! * `model.rs` — the typed result; `parse.rs` — building it; `collector.rs` — field checks;
//! * `violation.rs` — the errors; `canonical.rs` — the idempotency bytes; `dates.rs` — dates.
//!
//! This file re-exports them, so callers keep writing `spotcheck::SpotCheckResult` and so on.

mod canonical;
mod codes;
mod collector;
mod dates;
mod input;
mod model;
mod parse;
mod violation;

#[cfg(test)]
mod tests;

pub use canonical::CANONICAL_PREFIX;
pub use codes::*;
pub use dates::{format_date, parse_date};
pub use input::*;
pub use model::*;
pub use violation::*;

/// Longest name, in characters: product, producer, seller, platform, shop, inspection body,
/// test item, campaign, standard.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest code, in characters: report number, campaign code.
pub const MAX_CODE_CHARS: usize = 100;
/// Longest postal address, in characters.
pub const MAX_ADDRESS_CHARS: usize = 500;
/// Longest free text, in characters: model/specification, production date or batch, a test
/// item's requirement and measured value.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Longest shop URL, in characters (the common de-facto limit of browsers and servers).
pub const MAX_URL_CHARS: usize = 2048;
/// Most standards (依据标准) one result may cite.
pub const MAX_STANDARDS: usize = 20;
/// Most test items (检验项目) one result may carry; also bounds the failed items.
pub const MAX_TEST_ITEMS: usize = 200;
/// Most attachments one result may reference.
pub const MAX_ATTACHMENTS: usize = 20;
/// Longest attachment file name, in characters (the usual file-system limit).
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// Longest media type, in characters (RFC 6838: 127 for the type and 127 for the subtype).
pub const MAX_MEDIA_TYPE_CHARS: usize = 255;
/// Largest attachment, in bytes (1 GiB). The exchange stores only the digest; the bound keeps
/// a typo from announcing an absurd file.
pub const MAX_ATTACHMENT_BYTES: u64 = 1 << 30;
/// What published tables write in a cell that has no value.
pub const NONE_MARK: &str = "/";
