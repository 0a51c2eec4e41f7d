//! [`LicensingError`]: why a value of the licensing model (a code, a number, a limit, a
//! change) is invalid. Kept apart from the step refusals of `refusal.rs`, which need a state.

/// Why a licensing value was refused at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LicensingError {
    /// Industry codes are two digits.
    #[error("industry code must be 2 ASCII digits, got {0:?}")]
    IndustryCode(String),
    /// Product codes are three digits.
    #[error("product code must be 3 ASCII digits, got {0:?}")]
    ProductCode(String),
    /// Serials are 1 to 99999.
    #[error("licence serial must be between 1 and 99999, got {0}")]
    Serial(u32),
    /// Decision limits are 1 to 20 working days (行政许可法 art. 42).
    #[error("decision limit must be 1 to 20 working days, got {0}")]
    DecisionLimit(u32),
    /// On-site verification needs 2 to 4 verifiers (条例 art. 15).
    #[error("on-site verification needs 2 to 4 verifiers, got {0}")]
    VerifierCount(u8),
    /// Catalogue codes are short lowercase keys.
    #[error("catalogue code must be 1 to 32 characters of a-z, 0-9, '-' and '_', got {0:?}")]
    CatalogueCode(String),
    /// The abbreviation names no province.
    #[error("{0:?} is not a province abbreviation of GB/T 2260 (e.g. 沪, 鲁)")]
    ProvinceAbbreviation(String),
    /// A licence number that does not follow `(<abbr>)XK<2>-<3>-<5>`.
    #[error("licence number must look like (鲁)XK13-001-00001, got {0:?}")]
    LicenceNumberFormat(String),
    /// The product may not be licensed on a commitment.
    #[error(
        "{name} ({code}) may not be licensed on a commitment (告知承诺); apply on the ordinary route (先核后证)"
    )]
    CommitmentNotAllowed {
        /// The catalogue code.
        code: String,
        /// The product name.
        name: String,
    },
    /// A list that must name at least one item is empty.
    #[error("{field} must list at least one item")]
    EmptyList {
        /// The field.
        field: &'static str,
    },
    /// A licence change that changes nothing.
    #[error(
        "a licence change must change the name, the registered address or the production address"
    )]
    NothingToChange,
}
