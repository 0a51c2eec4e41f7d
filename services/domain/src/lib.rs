//! Pure types and rules of the exchange: identifiers, validation, routing and the state
//! machines of a referral and of a licence application.
//!
//! No I/O and no async live here, so every rule is a plain function that a table test can
//! cover. Time comes in through [`clock::Clock`] so deadline rules never read the wall clock.
//!
//! # Layout
//!
//! * [`audit`] — one exchange-log entry and the canonical bytes its Merkle leaf hashes.
//! * [`ids`] — region codes (GB/T 2260), agency ids, certificate profiles and identities.
//! * [`uscc`] — the unified social credit code (统一社会信用代码, GB 32100-2015).
//! * [`clock`] — the injected clock.
//! * [`calendar`] — working days and statutory deadlines.
//! * [`spotcheck`] — a spot-check result (监督抽查结果) and its validation.
//! * [`routing`] — who must see which feed event.
//! * [`case`] — when two non-conforming results concern the same product (串案).
//! * [`referral`] — the state machine of a disposal referral (不合格产品联动处置).
//! * [`licensing`] — the state machine of a production-licence application (沪鲁通办).
//! * [`merkle`] — RFC 6962 / RFC 9162 Merkle tree hashing and proofs of the exchange log.
//! * [`roles`] — roles, what each profile is granted, and the role each method requires.
//! * [`text`] — free text a party supplies ([`text::Remark`]), shared by referrals and licensing.

#![forbid(unsafe_code)]

/// The text conversions of a type parsed by its `parse(&str)`: `FromStr`, and the
/// `TryFrom<String>` / `From<_> for String` pair serde's `try_from` / `into` go through. The
/// text is `$text` (a field moved out) or, without it, the type's `Display`.
macro_rules! parsed_from_text {
    ($ty:ty, $err:ty $(, $text:tt)?) => {
        impl std::str::FromStr for $ty {
            type Err = $err;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $err;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> Self {
                parsed_from_text!(@text value $(, $text)?)
            }
        }
    };
    (@text $value:ident, $text:tt) => {
        $value.$text
    };
    (@text $value:ident) => {
        $value.to_string()
    };
}

pub mod audit;
pub mod calendar;
pub mod case;
pub mod clock;
pub mod ids;
pub mod licensing;
pub mod merkle;
pub mod referral;
pub mod roles;
pub mod routing;
pub mod spotcheck;
#[cfg(test)]
mod test_fixtures;
#[cfg(test)]
mod test_properties;
pub mod text;
pub mod uscc;

pub use ids::{AgencyId, AgencyIdentity, IdError, Profile, RegionCode, SpiffeId};
