//! Free text a party supplies — a reason, a summary, a decision number — and the one rule
//! for it: trimmed, not empty, at most [`Remark::MAX_CHARS`] characters. Shared by referrals
//! and licence applications, so it lives apart from both.
//!
//! The longest text of each kind of field is defined here once, and every service checks its
//! fields against these: [`SHORT_TEXT_CHARS`] (names, numbers, references — the 200 characters
//! `spotcheck.proto` gives a product name), [`REASON_CHARS`] (a spot-check correction or
//! withdrawal reason, a licensing note, reason or finding), [`Remark::MAX_CHARS`] (a referral's
//! notes and remarks) and [`OFFICER_ID_CHARS`] (an officer's id, as `common.proto` says).

/// Longest short text (names, numbers, references), in characters.
pub const SHORT_TEXT_CHARS: usize = 200;
/// Longest reason or note of a spot-check or licensing call, in characters.
pub const REASON_CHARS: usize = 2000;
/// Longest officer id (执法证号), in characters (`common.proto`).
pub const OFFICER_ID_CHARS: usize = 64;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A piece of free text a party supplies (a reason, a summary, a decision number): trimmed,
/// not empty, at most [`Remark::MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Remark(String);

/// Why a [`Remark`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// The text is empty or only whitespace.
    #[error("{field} must not be empty")]
    Empty {
        /// The field that was empty.
        field: &'static str,
    },
    /// The text is longer than allowed.
    #[error("{field} must be at most {max} characters, got {len}")]
    TooLong {
        /// The field that was too long.
        field: &'static str,
        /// The maximum number of characters.
        max: usize,
        /// The number of characters given.
        len: usize,
    },
}

impl Remark {
    /// The longest text accepted, in characters.
    pub const MAX_CHARS: usize = 4000;

    /// Parses `text` given for `field` (the field name goes into the error).
    pub fn parse(field: &'static str, text: &str) -> Result<Self, TextError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(TextError::Empty { field });
        }
        let len = trimmed.chars().count();
        if len > Self::MAX_CHARS {
            return Err(TextError::TooLong {
                field,
                max: Self::MAX_CHARS,
                len,
            });
        }
        Ok(Remark(trimmed.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Remark {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Remark::parse("text", &s)
    }
}

impl From<Remark> for String {
    fn from(r: Remark) -> Self {
        r.0
    }
}

impl fmt::Display for Remark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
