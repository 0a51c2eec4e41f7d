//! Who acts ([`Actor`]) and what an actor is to one referral ([`Party`]). Named apart from
//! the permission [`crate::roles::Role`] of an access token: the token's role lets a caller
//! reach the disposal methods at all; the party decides which step of this referral it may take.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::AgencyId;

/// Who is calling: an agency (from its certificate) or the exchange's own scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A partner agency's system.
    Agency(AgencyId),
    /// The exchange's deadline scheduler.
    Scheduler,
}

/// What an actor is to a given referral, derived from the referral and the caller's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Party {
    /// The agency that organised the spot check.
    SamplingAgency,
    /// The agency with jurisdiction that handles the result.
    HandlingAgency,
    /// Any other agency: may react, nothing more.
    OtherAgency,
    /// The exchange's scheduler.
    Scheduler,
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Party::SamplingAgency => "the referral's sampling agency",
            Party::HandlingAgency => "the referral's handling agency",
            Party::OtherAgency => "an agency not party to the referral",
            Party::Scheduler => "the exchange's deadline scheduler",
        })
    }
}
