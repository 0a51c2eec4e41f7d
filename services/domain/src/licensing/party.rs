//! [`Party`]: what an actor is to one application (accepting or issuing agency, outsider,
//! scheduler). Named apart from the permission [`crate::roles::Role`] of an access token: a
//! token's role lets a caller reach the licensing methods at all; the party decides which
//! step of this application it may take.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What an actor is to an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Party {
    /// The window where the enterprise applied (受理地).
    AcceptingAgency,
    /// The province that examines and issues (发证地).
    IssuingAgency,
    /// Any other agency: may neither see nor act.
    Outsider,
    /// The exchange's scheduler.
    Scheduler,
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Party::AcceptingAgency => "the accepting agency",
            Party::IssuingAgency => "the issuing agency",
            Party::Outsider => "an agency not party to the application",
            Party::Scheduler => "the exchange's deadline scheduler",
        })
    }
}
