//! What an enterprise hands in: the holder, the items and verifiers of a submission, and a
//! later change of the licence. Validated values only, so the state machine never re-checks.

use serde::{Deserialize, Serialize};

use crate::referral::Remark;

use super::{CatalogueEntry, LicensingError, Route};

/// The licence holder as the business licence names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The enterprise name.
    pub name: Remark,
    /// The production address.
    pub address: Remark,
}

/// A list of one or more items: materials to supplement, or conditions of an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemList(Vec<Remark>);

impl ItemList {
    /// Refuses an empty list, naming `field`.
    pub fn new(field: &'static str, items: Vec<Remark>) -> Result<Self, LicensingError> {
        if items.is_empty() {
            return Err(LicensingError::EmptyList { field });
        }
        Ok(ItemList(items))
    }

    /// The items.
    pub fn items(&self) -> &[Remark] {
        &self.0
    }
}

/// A linked change of the licence after a change of the business licence (营业执照联动变更).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceChange {
    name: Option<Remark>,
    address: Option<Remark>,
    /// The registered address (住所), printed on the licence next to the production address.
    #[serde(default)]
    residence: Option<Remark>,
}

impl LicenceChange {
    /// A change of the name, the address or both; refuses a change of neither.
    pub fn new(name: Option<Remark>, address: Option<Remark>) -> Result<Self, LicensingError> {
        Self::of(name, None, address)
    }

    /// A change of the name, the registered address (住所), the production address, or any of
    /// them together; refuses a change of none.
    pub fn of(
        name: Option<Remark>,
        residence: Option<Remark>,
        address: Option<Remark>,
    ) -> Result<Self, LicensingError> {
        if name.is_none() && address.is_none() && residence.is_none() {
            return Err(LicensingError::NothingToChange);
        }
        Ok(LicenceChange {
            name,
            address,
            residence,
        })
    }

    /// The new registered address, if it changes.
    pub fn residence(&self) -> Option<&Remark> {
        self.residence.as_ref()
    }

    /// The new name, if it changes.
    pub fn name(&self) -> Option<&Remark> {
        self.name.as_ref()
    }

    /// The new address, if it changes.
    pub fn address(&self) -> Option<&Remark> {
        self.address.as_ref()
    }
}

/// The number of on-site verifiers, 2 to 4 (条例 art. 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct VerifierCount(u8);

impl VerifierCount {
    /// A count in 2..=4.
    pub fn new(n: u8) -> Result<Self, LicensingError> {
        if (2..=4).contains(&n) {
            Ok(VerifierCount(n))
        } else {
            Err(LicensingError::VerifierCount(n))
        }
    }

    /// The count.
    pub fn get(&self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for VerifierCount {
    type Error = LicensingError;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        VerifierCount::new(n)
    }
}

impl From<VerifierCount> for u8 {
    fn from(v: VerifierCount) -> Self {
        v.0
    }
}

/// A validated application as the accepting window received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    pub(super) product: CatalogueEntry,
    pub(super) route: Route,
    pub(super) holder: Holder,
}

impl Submission {
    /// Checks that the product may be licensed on `route` (a commitment-based fertilizer
    /// application is refused here).
    pub fn new(
        product: CatalogueEntry,
        route: Route,
        holder: Holder,
    ) -> Result<Self, LicensingError> {
        product.check_route(route)?;
        Ok(Submission {
            product,
            route,
            holder,
        })
    }
}
