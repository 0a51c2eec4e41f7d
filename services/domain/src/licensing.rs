//! The state machine of a production-licence application (工业产品生产许可证) processed
//! jointly by Shanghai and Shandong (沪鲁通办).
//!
//! An enterprise applies at the window of one province (the *accepting* agency, 受理地) for a
//! licence that the province of its production address issues (the *issuing* agency, 发证地,
//! 条例 art. 11). Which of the two may take which step, and by when, is fixed by the
//! Administrative Licensing Law (行政许可法) and the licensing regulations, so — as for
//! referrals — the rules are one pure function, [`apply`], tested as a state-by-command table.
//!
//! Choices, each following the statute where DOMAIN.md is silent:
//!
//! * **Who accepts**: the accepting window (受理地) receives the materials and submits them; the
//!   issuing province (发证地), which examines and decides, also decides on acceptance: it
//!   accepts, asks for a supplement or does not accept (the exchange contract,
//!   `licensing.proto`, and the Hu-Lu scenario: "Shandong accepts"). The window hands in the
//!   applicant's supplement.
//! * **Deemed acceptance** (行政许可法 art. 32(4)): when the issuing agency neither accepts,
//!   refuses nor asks for a supplement within 5 working days of receiving the materials, the
//!   application counts as accepted *from the day the materials were received*. The machine
//!   models it twice over: the scheduler's [`LicensingCommand::MarkOverdue`] moves such an
//!   application to `Accepted` with `deemed_accepted = true`, and a late `Accept` is recorded the
//!   same way, while a late supplement request or non-acceptance is refused. The decision
//!   clock then runs from the receipt day.
//! * **One supplement notice** (一次性告知, art. 32(4)): a second supplement request is refused;
//!   the applicant's supplement restarts the 5-day acceptance clock from its receipt.
//! * **Working days for the licensing law's own limits only** (art. 82): acceptance 5, decision
//!   20 or the catalogue's shorter limit, +10 once (art. 42), issue of the certificate 10
//!   (art. 44), post-issue check of a commitment-based licence 30 (a rule parameter: the statute
//!   names none). The verification result is due 30 *calendar* days after acceptance (条例
//!   art. 18, "30日"), rolled to the next working day when the last day is a day off (民法典
//!   art. 203); [`DeadlineKind::counting`] says which kind each limit is.
//! * **Testing pauses the decision clock** (art. 45) by the working days between its start and
//!   its result; the verification clock keeps running.
//! * **Verification**: the issuing agency either verifies itself or delegates to the accepting
//!   agency (实地核查委托), which alone may then report. The commitment route may skip it.
//! * **Validity**: five years, ending on the corresponding day of the fifth year after issue
//!   (民法典 art. 202; 29 February ends on 28 February).
//! * **Pilot**: only the configured pilot agencies (Shanghai and Shandong) may submit, see or
//!   act; every other agency is refused as not permitted.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::calendar::{CalendarError, Deadline, DeadlineKind, WorkingCalendar, china_date};
use crate::ids::{AgencyId, PROVINCES};
pub use crate::referral::{Actor, Remark};

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

macro_rules! digit_code {
    ($(#[$doc:meta])* $name:ident, $digits:literal, $err:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name([u8; $digits]);

        impl $name {
            /// Parses the code from its digits.
            pub fn parse(s: &str) -> Result<Self, LicensingError> {
                let bytes = s.as_bytes();
                if bytes.len() != $digits || !bytes.iter().all(u8::is_ascii_digit) {
                    return Err(LicensingError::$err(s.to_owned()));
                }
                let mut code = [0u8; $digits];
                code.copy_from_slice(bytes);
                Ok($name(code))
            }

            /// The digits.
            pub fn as_str(&self) -> &str {
                // Only ASCII digits are ever stored.
                std::str::from_utf8(&self.0).unwrap_or("")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = LicensingError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(c: $name) -> Self {
                c.as_str().to_owned()
            }
        }
    };
}

digit_code!(
    /// The 2-digit industry (product category) code of a licence number, e.g. `13`.
    IndustryCode,
    2,
    IndustryCode
);
digit_code!(
    /// The 3-digit product (unit) code of a licence number, e.g. `001`.
    ProductCode,
    3,
    ProductCode
);

/// The 5-digit enterprise serial of a licence number, 1 to 99999. The issuing province
/// assigns it; the store guarantees it is unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Serial(u32);

impl Serial {
    /// A serial in 1..=99999.
    pub fn new(n: u32) -> Result<Self, LicensingError> {
        if (1..=99_999).contains(&n) {
            Ok(Serial(n))
        } else {
            Err(LicensingError::Serial(n))
        }
    }

    /// The number.
    pub fn get(&self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Serial {
    type Error = LicensingError;
    fn try_from(n: u32) -> Result<Self, Self::Error> {
        Serial::new(n)
    }
}

impl From<Serial> for u32 {
    fn from(s: Serial) -> Self {
        s.0
    }
}

/// A production-licence number, `(<province abbreviation>)XK<2-digit industry>-<3-digit
/// product>-<5-digit serial>`, e.g. `(鲁)XK13-001-00001`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LicenceNumber {
    province_abbrev: String,
    industry: IndustryCode,
    product: ProductCode,
    serial: Serial,
}

impl LicenceNumber {
    /// Builds a number; `province_abbrev` must be a GB/T 2260 province abbreviation (沪, 鲁, …).
    pub fn new(
        province_abbrev: &str,
        industry: IndustryCode,
        product: ProductCode,
        serial: Serial,
    ) -> Result<Self, LicensingError> {
        let abbrev = PROVINCES
            .iter()
            .map(|p| p.2)
            .find(|a| *a == province_abbrev)
            .ok_or_else(|| LicensingError::ProvinceAbbreviation(province_abbrev.to_owned()))?;
        Ok(LicenceNumber {
            province_abbrev: abbrev.to_owned(),
            industry,
            product,
            serial,
        })
    }

    /// Parses the printed form; full-width parentheses (（鲁）) are accepted too.
    pub fn parse(s: &str) -> Result<Self, LicensingError> {
        let err = || LicensingError::LicenceNumberFormat(s.to_owned());
        let rest = s
            .strip_prefix('(')
            .or_else(|| s.strip_prefix('（'))
            .ok_or_else(err)?;
        let (abbrev, rest) = rest
            .split_once(')')
            .or_else(|| rest.split_once('）'))
            .ok_or_else(err)?;
        let rest = rest.strip_prefix("XK").ok_or_else(err)?;
        let mut parts = rest.split('-');
        let (Some(industry), Some(product), Some(serial), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        if serial.len() != 5 || !serial.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let serial = serial.parse::<u32>().map_err(|_| err())?;
        Self::new(
            abbrev,
            IndustryCode::parse(industry).map_err(|_| err())?,
            ProductCode::parse(product).map_err(|_| err())?,
            Serial::new(serial).map_err(|_| err())?,
        )
        .map_err(|_| err())
    }

    /// The province abbreviation.
    pub fn province_abbrev(&self) -> &str {
        &self.province_abbrev
    }
    /// The industry code.
    pub fn industry(&self) -> IndustryCode {
        self.industry
    }
    /// The product code.
    pub fn product(&self) -> ProductCode {
        self.product
    }
    /// The serial.
    pub fn serial(&self) -> Serial {
        self.serial
    }
}

impl fmt::Display for LicenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "({})XK{}-{}-{:05}",
            self.province_abbrev, self.industry, self.product, self.serial.0
        )
    }
}

impl FromStr for LicenceNumber {
    type Err = LicensingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for LicenceNumber {
    type Error = LicensingError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<LicenceNumber> for String {
    fn from(n: LicenceNumber) -> Self {
        n.to_string()
    }
}

/// The key of a catalogue entry in configuration, e.g. `fertilizer`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CatalogueCode(String);

impl CatalogueCode {
    /// Parses a key of 1–32 characters of `a-z`, `0-9`, `-`, `_`.
    pub fn parse(s: &str) -> Result<Self, LicensingError> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(CatalogueCode(s.to_owned()))
        } else {
            Err(LicensingError::CatalogueCode(s.to_owned()))
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CatalogueCode {
    type Error = LicensingError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<CatalogueCode> for String {
    fn from(c: CatalogueCode) -> Self {
        c.0
    }
}

impl fmt::Display for CatalogueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A decision time limit in working days, 1 to 20 (行政许可法 art. 42; provinces commit to
/// shorter ones). Defaults to 20.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct DecisionLimit(u32);

impl DecisionLimit {
    /// A limit in 1..=20 working days.
    pub fn new(days: u32) -> Result<Self, LicensingError> {
        if (1..=20).contains(&days) {
            Ok(DecisionLimit(days))
        } else {
            Err(LicensingError::DecisionLimit(days))
        }
    }

    /// The working days.
    pub fn working_days(&self) -> u32 {
        self.0
    }
}

impl Default for DecisionLimit {
    fn default() -> Self {
        DecisionLimit(20)
    }
}

impl TryFrom<u32> for DecisionLimit {
    type Error = LicensingError;
    fn try_from(n: u32) -> Result<Self, Self::Error> {
        DecisionLimit::new(n)
    }
}

impl From<DecisionLimit> for u32 {
    fn from(d: DecisionLimit) -> Self {
        d.0
    }
}

/// A product of the licensing catalogue (工业产品生产许可证管理目录), loaded from configuration
/// because the catalogue changes when products enter or leave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    /// The configuration key.
    pub code: CatalogueCode,
    /// The product name, e.g. 化肥.
    pub name: Remark,
    /// The industry code of the licence number.
    pub industry_code: IndustryCode,
    /// The product code of the licence number.
    pub product_code: ProductCode,
    /// Whether the commitment route (告知承诺) is open. False for fertilizer since the State
    /// Council's 2024 catalogue decision.
    pub commitment_allowed: bool,
    /// The decision limit in working days.
    #[serde(default)]
    pub decision_limit_working_days: DecisionLimit,
}

impl CatalogueEntry {
    /// Refuses `route` when the product may not be licensed that way.
    pub fn check_route(&self, route: Route) -> Result<(), LicensingError> {
        if route == Route::Commitment && !self.commitment_allowed {
            return Err(LicensingError::CommitmentNotAllowed {
                code: self.code.to_string(),
                name: self.name.to_string(),
            });
        }
        Ok(())
    }
}

/// How the application is examined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Route {
    /// Verify, then issue (先核后证).
    Ordinary,
    /// Issue on the applicant's commitment, check after issue (告知承诺).
    Commitment,
}

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
    product: CatalogueEntry,
    route: Route,
    holder: Holder,
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

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApplicationState {
    /// Received at the accepting window.
    Submitted,
    /// Supplement requested (补正).
    SupplementRequested,
    /// Not accepted (不予受理); terminal.
    NotAccepted,
    /// Accepted (受理); the decision clock runs.
    Accepted,
    /// The issuing agency examines it.
    UnderReview,
    /// On-site verification delegated to the accepting agency (实地核查委托).
    VerificationDelegated,
    /// The verification report is in.
    VerificationReported,
    /// Product testing (产品检验); the decision clock is paused.
    Testing {
        /// Where the examination resumes.
        resume: TestingFrom,
    },
    /// Approved.
    Approved,
    /// Approved with conditions (附条件审批).
    ApprovedWithConditions,
    /// Refused; terminal.
    Refused,
    /// The licence was issued.
    LicenceIssued,
    /// The post-issue check (证后核查) of a commitment-based licence passed.
    PostIssueCheckPassed,
    /// Revoked after a failed post-issue check; terminal.
    Revoked,
}

/// The states testing can interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TestingFrom {
    /// See [`ApplicationState::UnderReview`].
    UnderReview,
    /// See [`ApplicationState::VerificationReported`].
    VerificationReported,
}

impl TestingFrom {
    fn state(self) -> ApplicationState {
        match self {
            TestingFrom::UnderReview => ApplicationState::UnderReview,
            TestingFrom::VerificationReported => ApplicationState::VerificationReported,
        }
    }
}

impl ApplicationState {
    /// The state's name in the contract (`yrd.exchange.v1.ApplicationState`), e.g.
    /// `APPLICATION_STATE_UNDER_REVIEW`; testing shows as the state it interrupts, as on the wire.
    pub fn contract_name(&self) -> &'static str {
        match self {
            ApplicationState::Submitted => "APPLICATION_STATE_SUBMITTED",
            ApplicationState::SupplementRequested => "APPLICATION_STATE_SUPPLEMENT_REQUESTED",
            ApplicationState::NotAccepted => "APPLICATION_STATE_NOT_ACCEPTED",
            ApplicationState::Accepted => "APPLICATION_STATE_ACCEPTED",
            ApplicationState::UnderReview => "APPLICATION_STATE_UNDER_REVIEW",
            ApplicationState::VerificationDelegated => "APPLICATION_STATE_VERIFICATION_DELEGATED",
            ApplicationState::VerificationReported => "APPLICATION_STATE_VERIFICATION_REPORTED",
            ApplicationState::Testing { resume } => resume.state().contract_name(),
            ApplicationState::Approved => "APPLICATION_STATE_DECIDED_APPROVED",
            ApplicationState::ApprovedWithConditions => {
                "APPLICATION_STATE_DECIDED_APPROVED_WITH_CONDITIONS"
            }
            ApplicationState::Refused => "APPLICATION_STATE_REFUSED",
            ApplicationState::LicenceIssued => "APPLICATION_STATE_LICENCE_ISSUED",
            ApplicationState::PostIssueCheckPassed => "APPLICATION_STATE_POST_ISSUE_CHECK_PASSED",
            ApplicationState::Revoked => "APPLICATION_STATE_REVOKED",
        }
    }

    /// The Chinese term an officer knows the state by, as the contract's comment gives it.
    pub fn chinese_term(&self) -> &'static str {
        match self {
            ApplicationState::Submitted => "已提交",
            ApplicationState::SupplementRequested => "补正中",
            ApplicationState::NotAccepted => "不予受理",
            ApplicationState::Accepted => "已受理",
            ApplicationState::UnderReview => "审查中",
            ApplicationState::VerificationDelegated => "实地核查委托",
            ApplicationState::VerificationReported => "实地核查完成",
            ApplicationState::Testing { resume } => resume.state().chinese_term(),
            ApplicationState::Approved => "准予许可",
            ApplicationState::ApprovedWithConditions => "附条件准予许可",
            ApplicationState::Refused => "不予许可",
            ApplicationState::LicenceIssued => "已发证",
            ApplicationState::PostIssueCheckPassed => "证后核查通过",
            ApplicationState::Revoked => "撤销",
        }
    }
}

/// The contract's name with the Chinese term beside it, e.g.
/// `APPLICATION_STATE_SUBMITTED (已提交)`; during product testing, the state it interrupts with
/// the testing noted (the wire shows it so, with `clock_paused`).
impl fmt::Display for ApplicationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.contract_name(), self.chinese_term())?;
        if let ApplicationState::Testing { .. } = self {
            f.write_str(", product testing 产品检验 under way")?;
        }
        f.write_str(")")
    }
}

/// A licensing decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Approve (准予许可).
    Approve,
    /// Approve with conditions to be met by a date (附条件审批).
    ApproveWithConditions {
        /// The conditions.
        conditions: ItemList,
        /// The day by which they must be met.
        due: Date,
    },
    /// Refuse (不予许可).
    Refuse {
        /// Why.
        reason: Remark,
    },
}

/// A step asked of the application machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LicensingCommand {
    /// Issuing agency: accept (受理).
    Accept,
    /// Issuing agency: one notice of everything to supplement (补正).
    RequestSupplement {
        /// What is missing.
        missing: ItemList,
    },
    /// Issuing agency: not accepted (不予受理).
    NotAccept {
        /// Why.
        reason: Remark,
    },
    /// Accepting agency: the applicant supplied what was missing.
    RecordSupplement,
    /// Issuing agency: start the examination.
    StartReview,
    /// Issuing agency: delegate on-site verification to the accepting agency.
    DelegateVerification,
    /// The verifying agency: the verification report.
    ReportVerification {
        /// How many verifiers.
        verifiers: VerifierCount,
        /// Whether the site passed.
        passed: bool,
    },
    /// Issuing agency: samples went for product testing.
    StartTesting,
    /// Issuing agency: the test result.
    RecordTestResult {
        /// Whether the product conformed.
        conforming: bool,
    },
    /// Issuing agency: extend the decision limit once by 10 working days.
    ExtendDecisionLimit,
    /// Issuing agency: the decision.
    Decide(Decision),
    /// Issuing agency: issue the licence with the serial the store assigned.
    IssueLicence {
        /// The enterprise serial.
        serial: Serial,
    },
    /// Issuing agency: the conditions of a conditional approval are met.
    ConfirmConditionsMet,
    /// Issuing agency: the post-issue check of a commitment-based licence.
    RecordPostIssueCheck {
        /// Passed; failed revokes the licence.
        passed: bool,
    },
    /// Issuing agency: linked change after a business-licence change (营业执照联动变更).
    ChangeLicence(LicenceChange),
    /// Scheduler: flag deadlines that passed; deems a late application accepted.
    MarkOverdue,
}

impl LicensingCommand {
    /// The command's name, for refusals and logs: the `LicensingService` method that issues it
    /// (`AcceptApplication`), as the contract names it; `MarkOverdue` is the exchange's own
    /// scheduler, which no partner calls.
    pub fn name(&self) -> &'static str {
        match self {
            LicensingCommand::Accept => "AcceptApplication",
            LicensingCommand::RequestSupplement { .. } => "RequestSupplement",
            LicensingCommand::NotAccept { .. } => "RejectApplication",
            LicensingCommand::RecordSupplement => "SupplementApplication",
            LicensingCommand::StartReview => "StartReview",
            LicensingCommand::DelegateVerification => "DelegateVerification",
            LicensingCommand::ReportVerification { .. } => "SubmitVerificationReport",
            LicensingCommand::StartTesting => "RecordTesting",
            LicensingCommand::RecordTestResult { .. } => "RecordTesting",
            LicensingCommand::ExtendDecisionLimit => "ExtendTimeLimit",
            LicensingCommand::Decide(_) => "DecideApplication",
            LicensingCommand::IssueLicence { .. } => "IssueLicence",
            LicensingCommand::ConfirmConditionsMet => "ConfirmConditions",
            LicensingCommand::RecordPostIssueCheck { .. } => "RecordPostIssueCheck",
            LicensingCommand::ChangeLicence(_) => "ChangeLicence",
            LicensingCommand::MarkOverdue => "MarkOverdue",
        }
    }

    /// Whether `role` may issue this command at all (the state may narrow it further).
    pub fn permits(&self, role: Role) -> bool {
        use LicensingCommand as C;
        match self {
            // The window hands in what the applicant supplies; the issuing province decides
            // on acceptance (see the module docs).
            C::RecordSupplement => role == Role::AcceptingAgency,
            C::ReportVerification { .. } => {
                matches!(role, Role::AcceptingAgency | Role::IssuingAgency)
            }
            C::MarkOverdue => role == Role::Scheduler,
            _ => role == Role::IssuingAgency,
        }
    }
}

/// What an actor is to an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// The window where the enterprise applied (受理地).
    AcceptingAgency,
    /// The province that examines and issues (发证地).
    IssuingAgency,
    /// Any other agency: may neither see nor act.
    Outsider,
    /// The exchange's scheduler.
    Scheduler,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::AcceptingAgency => "the accepting agency",
            Role::IssuingAgency => "the issuing agency",
            Role::Outsider => "an agency not party to the application",
            Role::Scheduler => "the exchange's deadline scheduler",
        })
    }
}

/// The rules a deployment configures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicensingRules {
    /// The working-day calendar.
    pub calendar: WorkingCalendar,
    /// The agencies of the pilot; only they may submit, see or act.
    pub pilot_agencies: BTreeSet<AgencyId>,
    /// Accept, supplement or not-accept within this many working days (5, art. 32).
    pub acceptance_working_days: u32,
    /// Verification result within this many calendar days of acceptance (30, 条例 art. 18).
    pub verification_calendar_days: u32,
    /// The one extension of the decision limit (10, art. 42).
    pub extension_working_days: u32,
    /// Issue the certificate within this many working days of approval (10, art. 44).
    pub issuance_working_days: u32,
    /// Post-issue check of a commitment-based licence within this many working days (30).
    pub post_issue_check_working_days: u32,
    /// Years a licence is valid (5).
    pub validity_years: i32,
}

impl Default for LicensingRules {
    fn default() -> Self {
        LicensingRules {
            calendar: WorkingCalendar::weekends_only(),
            pilot_agencies: ["310000-SAMR", "370000-AMR"]
                .iter()
                .filter_map(|id| AgencyId::parse(id).ok())
                .collect(),
            acceptance_working_days: 5,
            verification_calendar_days: 30,
            extension_working_days: 10,
            issuance_working_days: 10,
            post_issue_check_working_days: 30,
            validity_years: 5,
        }
    }
}

/// The application's clocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationDeadlines {
    /// Acceptance, while submitted.
    pub acceptance: Option<Deadline>,
    /// Verification result, ordinary route, until reported.
    pub verification: Option<Deadline>,
    /// Decision, until decided; moves with testing and the extension.
    pub decision: Option<Deadline>,
    /// Issue of the certificate after approval.
    pub issuance: Option<Deadline>,
    /// Conditions of a conditional approval, until met.
    pub conditions: Option<Deadline>,
    /// Post-issue check of a commitment-based licence, until recorded.
    pub post_issue_check: Option<Deadline>,
}

/// A verification report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationReport {
    /// The agency that verified.
    pub by: AgencyId,
    /// How many verifiers.
    pub verifiers: VerifierCount,
    /// Whether the site passed.
    pub passed: bool,
}

/// An issued licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Licence {
    /// The number.
    pub number: LicenceNumber,
    /// The holder, as changed by linked changes.
    pub holder: Holder,
    /// First day of validity (the issue date).
    pub valid_from: Date,
    /// Last day of validity.
    pub valid_until: Date,
}

/// The data of an application that the machine needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Where it stands.
    pub state: ApplicationState,
    /// The route.
    pub route: Route,
    /// The window where it was submitted (受理地).
    pub accepting_agency: AgencyId,
    /// The province that issues (发证地).
    pub issuing_agency: AgencyId,
    /// The product applied for.
    pub product: CatalogueEntry,
    /// The applicant.
    pub holder: Holder,
    /// The day the application was first submitted.
    pub submitted_on: Date,
    /// The day the current materials were received (submission or supplement).
    pub materials_received_on: Date,
    /// A supplement was requested once already.
    pub supplement_requested: bool,
    /// The day acceptance took effect.
    pub accepted_on: Option<Date>,
    /// Accepted by law after the 5-day limit passed (行政许可法 art. 32(4)).
    pub deemed_accepted: bool,
    /// The clocks.
    pub deadlines: ApplicationDeadlines,
    /// The decision limit was extended.
    pub decision_extended: bool,
    /// The first day of a running test's pause.
    pub paused_since: Option<Date>,
    /// Working days the decision clock has been paused by testing.
    pub paused_working_days: u32,
    /// The verification report.
    pub verification: Option<VerificationReport>,
    /// The product test result.
    pub test_conforming: Option<bool>,
    /// The conditions of a conditional approval.
    pub conditions: Option<ItemList>,
    /// The conditions were confirmed as met.
    pub conditions_met: bool,
    /// The licence, once issued.
    pub licence: Option<Licence>,
    /// Deadlines already flagged overdue.
    pub overdue: BTreeSet<DeadlineKind>,
    /// Number of timeline entries (the submission is entry 1).
    pub timeline_len: u32,
}

/// What happened, for the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LicensingEventKind {
    /// Submitted at the accepting window.
    Submitted,
    /// Supplement requested.
    SupplementRequested,
    /// Not accepted.
    NotAccepted,
    /// Accepted; `deemed` when by operation of law.
    Accepted {
        /// Accepted by law after the limit passed.
        deemed: bool,
    },
    /// The applicant's supplement was received.
    SupplementRecorded,
    /// Examination started.
    ReviewStarted,
    /// Verification delegated.
    VerificationDelegated,
    /// Verification reported.
    VerificationReported {
        /// Whether the site passed.
        passed: bool,
    },
    /// Testing started.
    TestingStarted,
    /// Test result recorded.
    TestResultRecorded {
        /// Whether the product conformed.
        conforming: bool,
    },
    /// Decision limit extended.
    DecisionLimitExtended {
        /// The new decision deadline.
        due: Date,
    },
    /// Approved.
    Approved,
    /// Approved with conditions.
    ApprovedWithConditions {
        /// When they must be met.
        due: Date,
    },
    /// Refused.
    Refused,
    /// Licence issued.
    LicenceIssued {
        /// Its number.
        number: LicenceNumber,
    },
    /// Conditions met.
    ConditionsMet,
    /// Post-issue check passed.
    PostIssueCheckPassed,
    /// Licence revoked after a failed post-issue check.
    Revoked,
    /// Linked change of the licence.
    LicenceChanged,
    /// A deadline passed.
    Overdue(Deadline),
}

/// One feed event and the agencies that must be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicensingEvent {
    /// What happened.
    pub kind: LicensingEventKind,
    /// Who must be told: the other province, or both when the scheduler acted.
    pub notify: Vec<AgencyId>,
}

/// An accepted step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The application after the step.
    pub new_state: Application,
    /// The feed events of the step.
    pub events: Vec<LicensingEvent>,
}

/// Why the gateway must refuse a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The actor may not issue the command (PERMISSION_DENIED).
    #[error("{command} may not be called by {role}")]
    NotPermitted {
        /// The actor's role.
        role: Role,
        /// The command.
        command: &'static str,
    },
    /// The agency is not part of the pilot (PERMISSION_DENIED).
    #[error("{agency} is not part of the joint-processing pilot (沪鲁通办)")]
    OutsidePilot {
        /// The agency.
        agency: AgencyId,
    },
    /// The issuing province is not part of the pilot, or is the accepting one
    /// (FAILED_PRECONDITION).
    #[error("the application cannot be issued by {agency} through the exchange: {why}")]
    IssuingAgency {
        /// The issuing agency computed from the production address.
        agency: AgencyId,
        /// Why not.
        why: &'static str,
    },
    /// The command is not allowed in the current state (FAILED_PRECONDITION).
    #[error("{command} is not allowed in state {state}")]
    IllegalInState {
        /// The current state.
        state: ApplicationState,
        /// The command.
        command: &'static str,
    },
    /// A condition of the command does not hold (FAILED_PRECONDITION).
    #[error("{command} is not allowed in state {state}: {reason}")]
    Precondition {
        /// The current state.
        state: ApplicationState,
        /// The command.
        command: &'static str,
        /// What does not hold.
        reason: Unmet,
    },
}

pub use crate::referral::RefusalKind;

impl Refusal {
    /// The gateway status class of this refusal.
    pub fn kind(&self) -> RefusalKind {
        match self {
            Refusal::NotPermitted { .. } | Refusal::OutsidePilot { .. } => {
                RefusalKind::PermissionDenied
            }
            _ => RefusalKind::FailedPrecondition,
        }
    }
}

/// A condition of a step that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmet {
    /// The 5-day limit passed: the application is accepted by law.
    #[error(
        "the application counts as accepted since {since} (行政许可法 art. 32: no notice within 5 working days)"
    )]
    DeemedAccepted {
        /// The day acceptance took effect.
        since: Date,
    },
    /// One supplement notice only (一次性告知).
    #[error("a supplement was already requested once; the notice must list everything at once")]
    SupplementAlreadyRequested,
    /// The ordinary route needs the examination started.
    #[error("the ordinary route (先核后证) is decided only after the examination starts")]
    ReviewNotStarted,
    /// Approval on the ordinary route needs a verification report.
    #[error("approval on the ordinary route needs an on-site verification report")]
    VerificationMissing,
    /// The verification failed.
    #[error("the on-site verification failed")]
    VerificationFailed,
    /// The product test failed.
    #[error("the product test failed")]
    TestFailed,
    /// The decision limit was already extended once.
    #[error("the decision limit was already extended once (行政许可法 art. 42)")]
    AlreadyExtended,
    /// The conditions' deadline must lie after today.
    #[error("the conditions' deadline {due} must lie after today ({today})")]
    ConditionsDueNotInFuture {
        /// The deadline given.
        due: Date,
        /// Today.
        today: Date,
    },
    /// No conditions are open.
    #[error("no conditions of approval are open")]
    NoOpenConditions,
    /// Post-issue checks belong to the commitment route.
    #[error("post-issue checks (证后核查) belong to the commitment route (告知承诺)")]
    NotCommitmentRoute,
    /// Nothing has newly passed its deadline.
    #[error("nothing is newly overdue (next deadline: {})", next.map_or("none".to_owned(), |d| d.to_string()))]
    NothingOverdue {
        /// The next deadline, if any.
        next: Option<Deadline>,
    },
    /// A date computation left the supported range.
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

/// The day a period of `years` ending on the corresponding day ends (民法典 art. 202).
pub fn years_later(date: Date, years: i32) -> Date {
    let year = date.year().saturating_add(years);
    date.replace_year(year)
        .or_else(|_| date.replace_day(28).and_then(|d| d.replace_year(year)))
        .unwrap_or(Date::MAX)
}

impl Application {
    /// Submits `submission` at the window of `caller` for issue by `issuing`. Both must be
    /// pilot agencies and different.
    pub fn submit(
        submission: Submission,
        caller: &AgencyId,
        issuing: AgencyId,
        now: OffsetDateTime,
        rules: &LicensingRules,
    ) -> Result<Transition, Refusal> {
        if !rules.pilot_agencies.contains(caller) {
            return Err(Refusal::OutsidePilot {
                agency: caller.clone(),
            });
        }
        if !rules.pilot_agencies.contains(&issuing) {
            return Err(Refusal::IssuingAgency {
                agency: issuing,
                why: "it is not part of the joint-processing pilot",
            });
        }
        if *caller == issuing {
            return Err(Refusal::IssuingAgency {
                agency: issuing,
                why: "it is the accepting window itself; joint processing needs the other province",
            });
        }
        let today = china_date(now);
        let due = rules
            .calendar
            .add_working_days(today, rules.acceptance_working_days)
            .map_err(|e| Refusal::Precondition {
                state: ApplicationState::Submitted,
                command: "SubmitApplication",
                reason: e.into(),
            })?;
        let application = Application {
            state: ApplicationState::Submitted,
            route: submission.route,
            accepting_agency: caller.clone(),
            issuing_agency: issuing.clone(),
            product: submission.product,
            holder: submission.holder,
            submitted_on: today,
            materials_received_on: today,
            supplement_requested: false,
            accepted_on: None,
            deemed_accepted: false,
            deadlines: ApplicationDeadlines {
                acceptance: Some(Deadline::new(DeadlineKind::Acceptance, due)),
                ..ApplicationDeadlines::default()
            },
            decision_extended: false,
            paused_since: None,
            paused_working_days: 0,
            verification: None,
            test_conforming: None,
            conditions: None,
            conditions_met: false,
            licence: None,
            overdue: BTreeSet::new(),
            timeline_len: 1,
        };
        Ok(Transition {
            new_state: application,
            events: vec![LicensingEvent {
                kind: LicensingEventKind::Submitted,
                notify: vec![issuing],
            }],
        })
    }

    /// The role of `actor` on this application.
    pub fn role_of(&self, actor: &Actor) -> Role {
        match actor {
            Actor::Scheduler => Role::Scheduler,
            Actor::Agency(a) if *a == self.issuing_agency => Role::IssuingAgency,
            Actor::Agency(a) if *a == self.accepting_agency => Role::AcceptingAgency,
            Actor::Agency(_) => Role::Outsider,
        }
    }

    /// Whether `agency` may read this application: only its two provinces.
    pub fn can_see(&self, agency: &AgencyId) -> bool {
        *agency == self.accepting_agency || *agency == self.issuing_agency
    }

    /// The deadlines running in the current state.
    pub fn running_deadlines(&self) -> Vec<Deadline> {
        use ApplicationState as S;
        let d = &self.deadlines;
        let open_conditions = if self.conditions_met {
            None
        } else {
            d.conditions
        };
        let verification = if self.verification.is_none() {
            d.verification
        } else {
            None
        };
        match self.state {
            S::Submitted => d.acceptance.into_iter().collect(),
            S::Accepted | S::UnderReview | S::VerificationDelegated | S::VerificationReported => {
                verification.into_iter().chain(d.decision).collect()
            }
            S::Testing { .. } => verification.into_iter().collect(),
            S::Approved => d.issuance.into_iter().collect(),
            S::ApprovedWithConditions => d.issuance.into_iter().chain(open_conditions).collect(),
            S::LicenceIssued => open_conditions
                .into_iter()
                .chain(d.post_issue_check)
                .collect(),
            S::PostIssueCheckPassed => open_conditions.into_iter().collect(),
            S::SupplementRequested | S::NotAccepted | S::Refused | S::Revoked => Vec::new(),
        }
    }

    /// The earliest running deadline not yet flagged overdue.
    pub fn next_deadline(&self) -> Option<Deadline> {
        self.running_deadlines()
            .into_iter()
            .filter(|d| !self.overdue.contains(&d.kind))
            .min_by_key(|d| d.due)
    }

    /// Accepts as of `on`, starting the verification and decision clocks.
    fn accept(&mut self, on: Date, deemed: bool, rules: &LicensingRules) -> Result<(), Unmet> {
        self.state = ApplicationState::Accepted;
        self.accepted_on = Some(on);
        self.deemed_accepted = deemed;
        self.deadlines.acceptance = None;
        if self.route == Route::Ordinary {
            let due = rules
                .calendar
                .calendar_deadline(on, i64::from(rules.verification_calendar_days))?;
            self.deadlines.verification = Some(Deadline::new(DeadlineKind::Verification, due));
        }
        self.recompute_decision(rules)
    }

    /// The decision deadline: acceptance + limit (+ extension) + working days paused.
    fn recompute_decision(&mut self, rules: &LicensingRules) -> Result<(), Unmet> {
        if let Some(accepted_on) = self.accepted_on {
            let mut days =
                self.product.decision_limit_working_days.working_days() + self.paused_working_days;
            if self.decision_extended {
                days += rules.extension_working_days;
            }
            let due = rules.calendar.add_working_days(accepted_on, days)?;
            self.deadlines.decision = Some(Deadline::new(DeadlineKind::Decision, due));
        }
        Ok(())
    }

    /// True when the 5-day acceptance limit has passed on `today`.
    fn acceptance_lapsed(&self, today: Date) -> bool {
        self.deadlines
            .acceptance
            .is_some_and(|d| d.is_overdue(today))
    }
}

/// Applies `command` by `actor` at `now`. Checks, in order: the actor's role, the state, then
/// the command's own conditions. Pure: the caller persists the result.
pub fn apply(
    app: &Application,
    command: &LicensingCommand,
    actor: &Actor,
    now: OffsetDateTime,
    rules: &LicensingRules,
) -> Result<Transition, Refusal> {
    use ApplicationState as S;
    use LicensingCommand as C;
    let role = app.role_of(actor);
    let not_permitted = || Refusal::NotPermitted {
        role,
        command: command.name(),
    };
    if !command.permits(role) {
        return Err(not_permitted());
    }
    let state = app.state;
    let illegal = || Refusal::IllegalInState {
        state,
        command: command.name(),
    };
    let unmet = |reason: Unmet| Refusal::Precondition {
        state,
        command: command.name(),
        reason,
    };
    let today = china_date(now);
    let cal = &rules.calendar;
    let mut next = app.clone();
    let mut kinds = Vec::new();

    match command {
        C::Accept => {
            if state != S::Submitted {
                return Err(illegal());
            }
            let deemed = app.acceptance_lapsed(today);
            let on = if deemed {
                app.materials_received_on
            } else {
                today
            };
            next.accept(on, deemed, rules).map_err(unmet)?;
            kinds.push(LicensingEventKind::Accepted { deemed });
        }
        C::RequestSupplement { .. } => {
            if state != S::Submitted {
                return Err(illegal());
            }
            if app.acceptance_lapsed(today) {
                return Err(unmet(Unmet::DeemedAccepted {
                    since: app.materials_received_on,
                }));
            }
            if app.supplement_requested {
                return Err(unmet(Unmet::SupplementAlreadyRequested));
            }
            next.state = S::SupplementRequested;
            next.supplement_requested = true;
            next.deadlines.acceptance = None;
            kinds.push(LicensingEventKind::SupplementRequested);
        }
        C::NotAccept { .. } => {
            match state {
                S::Submitted if app.acceptance_lapsed(today) => {
                    return Err(unmet(Unmet::DeemedAccepted {
                        since: app.materials_received_on,
                    }));
                }
                S::Submitted | S::SupplementRequested => {}
                _ => return Err(illegal()),
            }
            next.state = S::NotAccepted;
            next.deadlines.acceptance = None;
            kinds.push(LicensingEventKind::NotAccepted);
        }
        C::RecordSupplement => {
            if state != S::SupplementRequested {
                return Err(illegal());
            }
            let due = cal
                .add_working_days(today, rules.acceptance_working_days)
                .map_err(|e| unmet(e.into()))?;
            next.state = S::Submitted;
            next.materials_received_on = today;
            next.deadlines.acceptance = Some(Deadline::new(DeadlineKind::Acceptance, due));
            next.overdue.remove(&DeadlineKind::Acceptance);
            kinds.push(LicensingEventKind::SupplementRecorded);
        }
        C::StartReview => {
            if state != S::Accepted {
                return Err(illegal());
            }
            next.state = S::UnderReview;
            kinds.push(LicensingEventKind::ReviewStarted);
        }
        C::DelegateVerification => {
            if state != S::UnderReview {
                return Err(illegal());
            }
            next.state = S::VerificationDelegated;
            kinds.push(LicensingEventKind::VerificationDelegated);
        }
        C::ReportVerification { verifiers, passed } => {
            // Whoever verifies reports: the issuing agency itself, or the delegate.
            let verifier = match state {
                S::UnderReview => Role::IssuingAgency,
                S::VerificationDelegated => Role::AcceptingAgency,
                _ => return Err(illegal()),
            };
            if role != verifier {
                return Err(not_permitted());
            }
            let Actor::Agency(by) = actor else {
                return Err(not_permitted());
            };
            next.verification = Some(VerificationReport {
                by: by.clone(),
                verifiers: *verifiers,
                passed: *passed,
            });
            next.state = S::VerificationReported;
            kinds.push(LicensingEventKind::VerificationReported { passed: *passed });
        }
        C::StartTesting => {
            let resume = match state {
                S::UnderReview => TestingFrom::UnderReview,
                S::VerificationReported => TestingFrom::VerificationReported,
                _ => return Err(illegal()),
            };
            next.state = S::Testing { resume };
            next.paused_since = Some(today);
            kinds.push(LicensingEventKind::TestingStarted);
        }
        C::RecordTestResult { conforming } => {
            let S::Testing { resume } = state else {
                return Err(illegal());
            };
            let since = next.paused_since.take().unwrap_or(today);
            let paused = u32::try_from(cal.working_days_between(since, today)).unwrap_or(0);
            next.paused_working_days += paused;
            next.recompute_decision(rules).map_err(unmet)?;
            next.test_conforming = Some(*conforming);
            next.state = resume.state();
            kinds.push(LicensingEventKind::TestResultRecorded {
                conforming: *conforming,
            });
        }
        C::ExtendDecisionLimit => {
            if !matches!(
                state,
                S::Accepted
                    | S::UnderReview
                    | S::VerificationDelegated
                    | S::VerificationReported
                    | S::Testing { .. }
            ) {
                return Err(illegal());
            }
            if app.decision_extended {
                return Err(unmet(Unmet::AlreadyExtended));
            }
            next.decision_extended = true;
            next.recompute_decision(rules).map_err(unmet)?;
            next.overdue.remove(&DeadlineKind::Decision);
            let due = next.deadlines.decision.map_or(today, |d| d.due);
            kinds.push(LicensingEventKind::DecisionLimitExtended { due });
        }
        C::Decide(decision) => {
            match state {
                S::UnderReview | S::VerificationReported => {}
                S::Accepted if app.route == Route::Commitment => {}
                S::Accepted => return Err(unmet(Unmet::ReviewNotStarted)),
                _ => return Err(illegal()),
            }
            if !matches!(decision, Decision::Refuse { .. }) {
                match (&app.verification, app.route) {
                    (Some(v), _) if !v.passed => return Err(unmet(Unmet::VerificationFailed)),
                    (None, Route::Ordinary) => return Err(unmet(Unmet::VerificationMissing)),
                    _ => {}
                }
                if app.test_conforming == Some(false) {
                    return Err(unmet(Unmet::TestFailed));
                }
            }
            next.deadlines.decision = None;
            next.deadlines.verification = None;
            let issuance = || {
                cal.add_working_days(today, rules.issuance_working_days)
                    .map(|due| Some(Deadline::new(DeadlineKind::Issuance, due)))
                    .map_err(|e| unmet(e.into()))
            };
            match decision {
                Decision::Approve => {
                    next.state = S::Approved;
                    next.deadlines.issuance = issuance()?;
                    kinds.push(LicensingEventKind::Approved);
                }
                Decision::ApproveWithConditions { conditions, due } => {
                    if *due <= today {
                        return Err(unmet(Unmet::ConditionsDueNotInFuture { due: *due, today }));
                    }
                    next.state = S::ApprovedWithConditions;
                    next.deadlines.issuance = issuance()?;
                    next.conditions = Some(conditions.clone());
                    next.deadlines.conditions = Some(Deadline::new(DeadlineKind::Conditions, *due));
                    kinds.push(LicensingEventKind::ApprovedWithConditions { due: *due });
                }
                Decision::Refuse { .. } => {
                    next.state = S::Refused;
                    kinds.push(LicensingEventKind::Refused);
                }
            }
        }
        C::IssueLicence { serial } => {
            if !matches!(state, S::Approved | S::ApprovedWithConditions) {
                return Err(illegal());
            }
            let number = LicenceNumber::new(
                app.issuing_agency.province().province_abbreviation(),
                app.product.industry_code,
                app.product.product_code,
                *serial,
            )
            // An agency id always names a province, so this only fails on a corrupt store.
            .map_err(|_| illegal())?;
            next.licence = Some(Licence {
                number: number.clone(),
                holder: app.holder.clone(),
                valid_from: today,
                valid_until: years_later(today, rules.validity_years),
            });
            next.deadlines.issuance = None;
            if app.route == Route::Commitment {
                let due = cal
                    .add_working_days(today, rules.post_issue_check_working_days)
                    .map_err(|e| unmet(e.into()))?;
                next.deadlines.post_issue_check =
                    Some(Deadline::new(DeadlineKind::PostIssueCheck, due));
            }
            next.state = S::LicenceIssued;
            kinds.push(LicensingEventKind::LicenceIssued { number });
        }
        C::ConfirmConditionsMet => {
            if !matches!(
                state,
                S::ApprovedWithConditions | S::LicenceIssued | S::PostIssueCheckPassed
            ) {
                return Err(illegal());
            }
            if app.conditions.is_none() || app.conditions_met {
                return Err(unmet(Unmet::NoOpenConditions));
            }
            next.conditions_met = true;
            kinds.push(LicensingEventKind::ConditionsMet);
        }
        C::RecordPostIssueCheck { passed } => {
            if state != S::LicenceIssued {
                return Err(illegal());
            }
            if app.route != Route::Commitment {
                return Err(unmet(Unmet::NotCommitmentRoute));
            }
            next.deadlines.post_issue_check = None;
            if *passed {
                next.state = S::PostIssueCheckPassed;
                kinds.push(LicensingEventKind::PostIssueCheckPassed);
            } else {
                next.state = S::Revoked;
                kinds.push(LicensingEventKind::Revoked);
            }
        }
        C::ChangeLicence(change) => {
            if !matches!(state, S::LicenceIssued | S::PostIssueCheckPassed) {
                return Err(illegal());
            }
            if let Some(name) = change.name() {
                next.holder.name = name.clone();
            }
            if let Some(address) = change.address() {
                next.holder.address = address.clone();
            }
            if let Some(licence) = next.licence.as_mut() {
                licence.holder = next.holder.clone();
            }
            kinds.push(LicensingEventKind::LicenceChanged);
        }
        C::MarkOverdue => {
            if matches!(
                state,
                S::SupplementRequested | S::NotAccepted | S::Refused | S::Revoked
            ) {
                return Err(illegal());
            }
            if state == S::Submitted && app.acceptance_lapsed(today) {
                // Accepted by law as of the receipt of the materials (art. 32(4)).
                next.accept(app.materials_received_on, true, rules)
                    .map_err(unmet)?;
                kinds.push(LicensingEventKind::Accepted { deemed: true });
            } else {
                let newly: Vec<Deadline> = app
                    .running_deadlines()
                    .into_iter()
                    .filter(|d| d.is_overdue(today) && !app.overdue.contains(&d.kind))
                    .collect();
                if newly.is_empty() {
                    return Err(unmet(Unmet::NothingOverdue {
                        next: app.next_deadline(),
                    }));
                }
                for d in newly {
                    next.overdue.insert(d.kind);
                    kinds.push(LicensingEventKind::Overdue(d));
                }
            }
        }
    }

    // Every step goes to the other province; the scheduler's to both.
    let notify: Vec<AgencyId> = [app.accepting_agency.clone(), app.issuing_agency.clone()]
        .into_iter()
        .filter(|a| !matches!(actor, Actor::Agency(me) if me == a))
        .collect();
    next.timeline_len += 1;
    Ok(Transition {
        new_state: next,
        events: kinds
            .into_iter()
            .map(|kind| LicensingEvent {
                kind,
                notify: notify.clone(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::{date, offset};

    // Monday 4 March 2024 is day 0.
    const BASE: Date = date!(2024 - 03 - 04);

    fn day(n: i64) -> Date {
        BASE + Duration::days(n)
    }
    fn at(n: i64) -> OffsetDateTime {
        day(n)
            .with_hms(10, 0, 0)
            .unwrap()
            .assume_offset(offset!(+8))
    }
    fn agency(id: &str) -> AgencyId {
        AgencyId::parse(id).unwrap()
    }
    fn shanghai() -> AgencyId {
        agency("310000-SAMR")
    }
    fn shandong() -> AgencyId {
        agency("370000-AMR")
    }
    fn jiangsu() -> AgencyId {
        agency("320000-AMR")
    }
    fn text(s: &str) -> Remark {
        Remark::parse("text", s).unwrap()
    }
    fn rules() -> LicensingRules {
        LicensingRules::default()
    }

    fn fertilizer() -> CatalogueEntry {
        CatalogueEntry {
            code: CatalogueCode::parse("fertilizer").unwrap(),
            name: text("化肥"),
            industry_code: IndustryCode::parse("13").unwrap(),
            product_code: ProductCode::parse("001").unwrap(),
            commitment_allowed: false,
            decision_limit_working_days: DecisionLimit::default(),
        }
    }
    fn cable() -> CatalogueEntry {
        CatalogueEntry {
            code: CatalogueCode::parse("wire-cable").unwrap(),
            name: text("电线电缆"),
            industry_code: IndustryCode::parse("06").unwrap(),
            product_code: ProductCode::parse("001").unwrap(),
            commitment_allowed: true,
            decision_limit_working_days: DecisionLimit::new(15).unwrap(),
        }
    }
    fn holder() -> Holder {
        Holder {
            name: text("山东某化肥有限公司"),
            address: text("山东省济南市历城区某路1号"),
        }
    }

    /// A Shandong producer applies at the Shanghai window on day 0.
    fn submit(product: CatalogueEntry, route: Route) -> Application {
        let submission = Submission::new(product, route, holder()).unwrap();
        Application::submit(submission, &shanghai(), shandong(), at(0), &rules())
            .unwrap()
            .new_state
    }

    fn rightful(app: &Application, command: &LicensingCommand) -> Actor {
        let role = match command {
            LicensingCommand::MarkOverdue => Role::Scheduler,
            LicensingCommand::ReportVerification { .. }
                if app.state == ApplicationState::VerificationDelegated =>
            {
                Role::AcceptingAgency
            }
            c if c.permits(Role::IssuingAgency) => Role::IssuingAgency,
            _ => Role::AcceptingAgency,
        };
        match role {
            Role::AcceptingAgency => Actor::Agency(app.accepting_agency.clone()),
            Role::IssuingAgency => Actor::Agency(app.issuing_agency.clone()),
            Role::Outsider => Actor::Agency(jiangsu()),
            Role::Scheduler => Actor::Scheduler,
        }
    }

    fn run(app: &Application, command: LicensingCommand, n: i64) -> Result<Transition, Refusal> {
        apply(app, &command, &rightful(app, &command), at(n), &rules())
    }

    fn step(app: &Application, command: LicensingCommand, n: i64) -> Application {
        match run(app, command.clone(), n) {
            Ok(t) => t.new_state,
            Err(e) => panic!("{command:?} on day {n}: {e}"),
        }
    }

    fn report(passed: bool) -> LicensingCommand {
        LicensingCommand::ReportVerification {
            verifiers: VerifierCount::new(3).unwrap(),
            passed,
        }
    }
    fn issue(serial: u32) -> LicensingCommand {
        LicensingCommand::IssueLicence {
            serial: Serial::new(serial).unwrap(),
        }
    }
    fn with_conditions(due: i64) -> LicensingCommand {
        LicensingCommand::Decide(Decision::ApproveWithConditions {
            conditions: ItemList::new("conditions", vec![text("replace the dryer")]).unwrap(),
            due: day(due),
        })
    }

    fn submitted() -> Application {
        submit(fertilizer(), Route::Ordinary)
    }
    fn supplement_requested() -> Application {
        step(
            &submitted(),
            LicensingCommand::RequestSupplement {
                missing: ItemList::new("missing", vec![text("site plan")]).unwrap(),
            },
            0,
        )
    }
    fn not_accepted() -> Application {
        step(
            &submitted(),
            LicensingCommand::NotAccept {
                reason: text("not a licensed product"),
            },
            0,
        )
    }
    fn accepted() -> Application {
        step(&submitted(), LicensingCommand::Accept, 0)
    }
    fn under_review() -> Application {
        step(&accepted(), LicensingCommand::StartReview, 0)
    }
    fn delegated() -> Application {
        step(&under_review(), LicensingCommand::DelegateVerification, 0)
    }
    fn reported() -> Application {
        step(&delegated(), report(true), 0)
    }
    fn testing() -> Application {
        step(&reported(), LicensingCommand::StartTesting, 0)
    }
    fn approved() -> Application {
        step(&reported(), LicensingCommand::Decide(Decision::Approve), 0)
    }
    fn approved_with_conditions() -> Application {
        step(&reported(), with_conditions(30), 0)
    }
    fn refused() -> Application {
        step(
            &reported(),
            LicensingCommand::Decide(Decision::Refuse {
                reason: text("does not meet the conditions"),
            }),
            0,
        )
    }
    fn commitment_issued() -> Application {
        let accepted = step(
            &submit(cable(), Route::Commitment),
            LicensingCommand::Accept,
            0,
        );
        let approved = step(&accepted, LicensingCommand::Decide(Decision::Approve), 0);
        step(&approved, issue(1), 0)
    }
    fn post_issue_passed() -> Application {
        step(
            &commitment_issued(),
            LicensingCommand::RecordPostIssueCheck { passed: true },
            0,
        )
    }
    fn revoked() -> Application {
        step(
            &commitment_issued(),
            LicensingCommand::RecordPostIssueCheck { passed: false },
            0,
        )
    }

    fn every_state() -> Vec<(&'static str, Application)> {
        vec![
            ("Submitted", submitted()),
            ("SupplementRequested", supplement_requested()),
            ("NotAccepted", not_accepted()),
            ("Accepted", accepted()),
            ("UnderReview", under_review()),
            ("VerificationDelegated", delegated()),
            ("VerificationReported", reported()),
            ("Testing", testing()),
            ("Approved", approved()),
            ("ApprovedWithConditions", approved_with_conditions()),
            ("Refused", refused()),
            ("LicenceIssued", commitment_issued()),
            ("PostIssueCheckPassed", post_issue_passed()),
            ("Revoked", revoked()),
        ]
    }

    fn every_command() -> Vec<(&'static str, LicensingCommand, i64)> {
        vec![
            ("Accept", LicensingCommand::Accept, 0),
            (
                "RequestSupplement",
                LicensingCommand::RequestSupplement {
                    missing: ItemList::new("missing", vec![text("x")]).unwrap(),
                },
                0,
            ),
            (
                "NotAccept",
                LicensingCommand::NotAccept { reason: text("x") },
                0,
            ),
            ("RecordSupplement", LicensingCommand::RecordSupplement, 0),
            ("StartReview", LicensingCommand::StartReview, 0),
            ("Delegate", LicensingCommand::DelegateVerification, 0),
            ("Report", report(true), 0),
            ("StartTesting", LicensingCommand::StartTesting, 0),
            (
                "TestResult",
                LicensingCommand::RecordTestResult { conforming: true },
                0,
            ),
            ("Extend", LicensingCommand::ExtendDecisionLimit, 0),
            ("Approve", LicensingCommand::Decide(Decision::Approve), 0),
            ("ApproveWithConditions", with_conditions(30), 0),
            (
                "Refuse",
                LicensingCommand::Decide(Decision::Refuse { reason: text("x") }),
                0,
            ),
            ("Issue", issue(7), 0),
            ("ConditionsMet", LicensingCommand::ConfirmConditionsMet, 0),
            (
                "PostIssueCheck",
                LicensingCommand::RecordPostIssueCheck { passed: true },
                0,
            ),
            (
                "Change",
                LicensingCommand::ChangeLicence(
                    LicenceChange::new(Some(text("新名称有限公司")), None).unwrap(),
                ),
                0,
            ),
            ("MarkOverdue", LicensingCommand::MarkOverdue, 100),
        ]
    }

    /// A: accepted; S: refused for the state; P: refused for a condition of the command.
    /// Columns follow `every_command`, rows `every_state`.
    const TABLE: &[(&str, &str)] = &[
        //  Acc Sup NotA RecS Rev Del Rep Tst TRes Ext Appr AppC Ref Iss Cond Post Chg Overdue
        ("Submitted", "AAASSSSSSSSSSSSSSA"),
        ("SupplementRequested", "SSAASSSSSSSSSSSSSS"),
        ("NotAccepted", "SSSSSSSSSSSSSSSSSS"),
        ("Accepted", "SSSSASSSSAPPPSSSSA"),
        ("UnderReview", "SSSSSAAASAPPASSSSA"),
        ("VerificationDelegated", "SSSSSSASSASSSSSSSA"),
        ("VerificationReported", "SSSSSSSASAAAASSSSA"),
        ("Testing", "SSSSSSSSAASSSSSSSP"),
        ("Approved", "SSSSSSSSSSSSSASSSA"),
        ("ApprovedWithConditions", "SSSSSSSSSSSSSAASSA"),
        ("Refused", "SSSSSSSSSSSSSSSSSS"),
        ("LicenceIssued", "SSSSSSSSSSSSSSPAAA"),
        ("PostIssueCheckPassed", "SSSSSSSSSSSSSSPSAP"),
        ("Revoked", "SSSSSSSSSSSSSSSSSS"),
    ];

    #[test]
    fn every_state_by_every_command() {
        let commands = every_command();
        let states = every_state();
        assert_eq!(states.len(), TABLE.len());
        let mut wrong = Vec::new();
        for ((name, app), (row_name, row)) in states.iter().zip(TABLE) {
            assert_eq!(name, row_name);
            assert_eq!(row.len(), commands.len(), "row {name}");
            for ((cmd_name, command, n), expected) in commands.iter().zip(row.chars()) {
                let got = match run(app, command.clone(), *n) {
                    Ok(t) => {
                        assert!(!t.events.is_empty(), "{name} × {cmd_name} emitted no event");
                        assert_eq!(t.new_state.timeline_len, app.timeline_len + 1);
                        'A'
                    }
                    Err(Refusal::IllegalInState { state, .. }) => {
                        assert_eq!(state, app.state);
                        'S'
                    }
                    Err(Refusal::Precondition { state, .. }) => {
                        assert_eq!(state, app.state);
                        'P'
                    }
                    Err(e) => panic!("{name} × {cmd_name}: {e}"),
                };
                if got != expected {
                    wrong.push(format!(
                        "{name} × {cmd_name}: expected {expected}, got {got}"
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn outsiders_and_wrong_roles_are_denied_in_every_state() {
        let actors = [
            Actor::Agency(shanghai()),
            Actor::Agency(shandong()),
            Actor::Agency(jiangsu()),
            Actor::Agency(agency("340000-AMR")),
            Actor::Scheduler,
        ];
        for (name, app) in every_state() {
            for (cmd_name, command, n) in every_command() {
                let rightful = rightful(&app, &command);
                for actor in &actors {
                    if *actor == rightful {
                        continue;
                    }
                    let refusal = apply(&app, &command, actor, at(n), &rules());
                    let refusal = match refusal {
                        Err(r) => r,
                        Ok(_) => panic!("{name} × {cmd_name} accepted from {actor:?}"),
                    };
                    // A step the state forbids anyway may answer for the state; an outsider
                    // is always denied.
                    let role = app.role_of(actor);
                    if role == Role::Outsider || !command.permits(role) {
                        assert_eq!(
                            refusal.kind(),
                            RefusalKind::PermissionDenied,
                            "{name} × {cmd_name} by {actor:?}: {refusal}"
                        );
                    }
                }
            }
            assert!(app.can_see(&shanghai()) && app.can_see(&shandong()));
            assert!(!app.can_see(&jiangsu()));
        }
    }

    #[test]
    fn commitment_based_fertilizer_is_refused_at_submission() {
        assert_eq!(
            Submission::new(fertilizer(), Route::Commitment, holder()),
            Err(LicensingError::CommitmentNotAllowed {
                code: "fertilizer".into(),
                name: "化肥".into()
            })
        );
        assert!(Submission::new(fertilizer(), Route::Ordinary, holder()).is_ok());
        assert!(Submission::new(cable(), Route::Commitment, holder()).is_ok());
    }

    #[test]
    fn only_pilot_provinces_take_part() {
        let submission = || Submission::new(fertilizer(), Route::Ordinary, holder()).unwrap();
        let at_jiangsu = Application::submit(submission(), &jiangsu(), shandong(), at(0), &rules());
        assert_eq!(
            at_jiangsu.as_ref().map_err(Refusal::kind).err(),
            Some(RefusalKind::PermissionDenied)
        );
        let to_jiangsu = Application::submit(submission(), &shanghai(), jiangsu(), at(0), &rules());
        assert_eq!(
            to_jiangsu.map_err(|r| r.kind()).err(),
            Some(RefusalKind::FailedPrecondition)
        );
        let same = Application::submit(submission(), &shandong(), shandong(), at(0), &rules());
        assert!(matches!(same, Err(Refusal::IssuingAgency { .. })));
        let t =
            Application::submit(submission(), &shanghai(), shandong(), at(0), &rules()).unwrap();
        assert_eq!(t.events[0].notify, vec![shandong()]);
        // Monday + 5 working days = next Monday.
        assert_eq!(t.new_state.next_deadline().map(|d| d.due), Some(day(7)));
    }

    #[test]
    fn silence_past_five_working_days_counts_as_acceptance() {
        let app = submitted();
        // Due Monday 11 March; on Tuesday 12 the window may no longer ask for a supplement.
        let late = run(
            &app,
            LicensingCommand::RequestSupplement {
                missing: ItemList::new("missing", vec![text("x")]).unwrap(),
            },
            8,
        );
        assert!(matches!(
            late,
            Err(Refusal::Precondition { reason: Unmet::DeemedAccepted { since }, .. }) if since == day(0)
        ));
        assert!(matches!(
            run(&app, LicensingCommand::NotAccept { reason: text("x") }, 8),
            Err(Refusal::Precondition {
                reason: Unmet::DeemedAccepted { .. },
                ..
            })
        ));
        assert!(matches!(
            run(&app, LicensingCommand::MarkOverdue, 7),
            Err(Refusal::Precondition {
                reason: Unmet::NothingOverdue { .. },
                ..
            })
        ));
        let t = run(&app, LicensingCommand::MarkOverdue, 8).unwrap();
        let deemed = t.new_state;
        assert_eq!(deemed.state, ApplicationState::Accepted);
        assert!(deemed.deemed_accepted);
        assert_eq!(deemed.accepted_on, Some(day(0)));
        assert_eq!(
            t.events[0].kind,
            LicensingEventKind::Accepted { deemed: true }
        );
        assert_eq!(t.events[0].notify, vec![shanghai(), shandong()]);
        // The decision clock runs from the receipt: 20 working days after 4 March is 1 April.
        assert_eq!(
            deemed.deadlines.decision.map(|d| d.due),
            Some(date!(2024 - 04 - 01))
        );
        // A late Accept is recorded the same way.
        let late_accept = step(&app, LicensingCommand::Accept, 10);
        assert!(late_accept.deemed_accepted);
        assert_eq!(late_accept.accepted_on, Some(day(0)));
        let on_time = step(&app, LicensingCommand::Accept, 7);
        assert!(!on_time.deemed_accepted);
        assert_eq!(on_time.accepted_on, Some(day(7)));
    }

    #[test]
    fn supplement_round_trip_restarts_the_acceptance_clock_once() {
        let app = supplement_requested();
        assert_eq!(
            app.next_deadline(),
            None,
            "the applicant's time is not counted"
        );
        let back = step(&app, LicensingCommand::RecordSupplement, 9);
        assert_eq!(back.state, ApplicationState::Submitted);
        // Wednesday 13 March + 5 working days = Wednesday 20 March.
        assert_eq!(
            back.next_deadline().map(|d| d.due),
            Some(date!(2024 - 03 - 20))
        );
        let again = run(
            &back,
            LicensingCommand::RequestSupplement {
                missing: ItemList::new("missing", vec![text("more")]).unwrap(),
            },
            10,
        );
        assert!(matches!(
            again,
            Err(Refusal::Precondition {
                reason: Unmet::SupplementAlreadyRequested,
                ..
            })
        ));
        assert_eq!(
            step(&back, LicensingCommand::Accept, 10).accepted_on,
            Some(day(10))
        );
    }

    #[test]
    fn acceptance_sets_verification_and_decision_clocks() {
        let app = accepted();
        // 30 calendar days after 4 March is 3 April; 20 working days is 1 April.
        assert_eq!(
            app.deadlines.verification.map(|d| d.due),
            Some(date!(2024 - 04 - 03))
        );
        assert_eq!(
            app.deadlines.decision.map(|d| d.due),
            Some(date!(2024 - 04 - 01))
        );
        assert_eq!(
            app.next_deadline().map(|d| d.kind),
            Some(DeadlineKind::Decision)
        );
        // The catalogue's shorter limit applies; commitment route has no verification clock.
        let cable = step(
            &submit(cable(), Route::Commitment),
            LicensingCommand::Accept,
            0,
        );
        assert_eq!(cable.deadlines.verification, None);
        assert_eq!(
            cable.deadlines.decision.map(|d| d.due),
            Some(date!(2024 - 03 - 25))
        );
        // Extended once by 10 working days.
        let extended = step(&app, LicensingCommand::ExtendDecisionLimit, 3);
        assert_eq!(
            extended.deadlines.decision.map(|d| d.due),
            Some(date!(2024 - 04 - 15))
        );
        assert!(matches!(
            run(&extended, LicensingCommand::ExtendDecisionLimit, 4),
            Err(Refusal::Precondition {
                reason: Unmet::AlreadyExtended,
                ..
            })
        ));
        // Overdue at day 100: both flagged once.
        let t = run(&app, LicensingCommand::MarkOverdue, 100).unwrap();
        let kinds: Vec<_> = t.events.iter().map(|e| e.kind.clone()).collect();
        assert_eq!(kinds.len(), 2);
        assert!(matches!(
            run(&t.new_state, LicensingCommand::MarkOverdue, 101),
            Err(Refusal::Precondition {
                reason: Unmet::NothingOverdue { next: None },
                ..
            })
        ));
    }

    /// The verification limit counts 30 calendar days from acceptance (条例 art. 18) and rolls a
    /// last day off to the next working day (民法典 art. 203); the decision limit keeps counting
    /// working days (行政许可法 art. 42).
    #[test]
    fn verification_counts_calendar_days_and_rolls_past_days_off() {
        // New Year's Day 2027 (a Friday) off; Saturday 9 January 2027 worked (调休).
        let calendar =
            WorkingCalendar::new([date!(2027 - 01 - 01)], [date!(2027 - 01 - 09)]).unwrap();
        let with_days_off = LicensingRules {
            calendar,
            ..rules()
        };
        let cases = [
            // (accepted on, rules, verification due, decision due)
            (
                date!(2026 - 12 - 07),
                rules(),
                date!(2027 - 01 - 06),
                date!(2027 - 01 - 04),
            ),
            // Day 30 is Saturday 9 January: Monday 11 January.
            (
                date!(2026 - 12 - 10),
                rules(),
                date!(2027 - 01 - 11),
                date!(2027 - 01 - 07),
            ),
            // …unless that Saturday is a make-up working day.
            (
                date!(2026 - 12 - 10),
                with_days_off.clone(),
                date!(2027 - 01 - 09),
                date!(2027 - 01 - 08),
            ),
            // Day 30 is the holiday of 1 January, then a weekend: Monday 4 January.
            (
                date!(2026 - 12 - 02),
                with_days_off.clone(),
                date!(2027 - 01 - 04),
                date!(2026 - 12 - 30),
            ),
            // The same day on a weekends-only calendar is a working Friday.
            (
                date!(2026 - 12 - 02),
                rules(),
                date!(2027 - 01 - 01),
                date!(2026 - 12 - 30),
            ),
        ];
        for (accepted_on, rules, verification, decision) in cases {
            let now = accepted_on
                .with_hms(10, 0, 0)
                .unwrap()
                .assume_offset(offset!(+8));
            let submission = Submission::new(fertilizer(), Route::Ordinary, holder()).unwrap();
            let submitted = Application::submit(submission, &shanghai(), shandong(), now, &rules)
                .unwrap()
                .new_state;
            let issuing = Actor::Agency(shandong());
            let app = apply(&submitted, &LicensingCommand::Accept, &issuing, now, &rules)
                .unwrap()
                .new_state;
            assert_eq!(
                app.deadlines.verification.map(|d| d.due),
                Some(verification),
                "verification after acceptance on {accepted_on}"
            );
            assert_eq!(
                app.deadlines.decision.map(|d| d.due),
                Some(decision),
                "decision after acceptance on {accepted_on}"
            );
        }
    }

    #[test]
    fn testing_pauses_the_decision_clock() {
        let app = reported();
        let before = app.deadlines.decision.map(|d| d.due);
        let testing = step(&app, LicensingCommand::StartTesting, 1);
        assert_eq!(testing.next_deadline(), None);
        // Tuesday 5 March to Tuesday 19 March: 10 working days paused.
        let done = step(
            &testing,
            LicensingCommand::RecordTestResult { conforming: true },
            15,
        );
        assert_eq!(done.state, ApplicationState::VerificationReported);
        assert_eq!(done.paused_working_days, 10);
        assert_eq!(before, Some(date!(2024 - 04 - 01)));
        assert_eq!(
            done.deadlines.decision.map(|d| d.due),
            Some(date!(2024 - 04 - 15))
        );
        // A failed test forbids approval but not refusal.
        let failed = step(
            &testing,
            LicensingCommand::RecordTestResult { conforming: false },
            15,
        );
        assert!(matches!(
            run(&failed, LicensingCommand::Decide(Decision::Approve), 16),
            Err(Refusal::Precondition {
                reason: Unmet::TestFailed,
                ..
            })
        ));
        assert!(
            run(
                &failed,
                LicensingCommand::Decide(Decision::Refuse { reason: text("x") }),
                16
            )
            .is_ok()
        );
    }

    #[test]
    fn verification_is_delegated_and_reported_by_the_delegate() {
        let app = delegated();
        let by_issuer = apply(
            &app,
            &report(true),
            &Actor::Agency(shandong()),
            at(1),
            &rules(),
        );
        assert!(matches!(
            by_issuer,
            Err(Refusal::NotPermitted {
                role: Role::IssuingAgency,
                ..
            })
        ));
        let t = apply(
            &app,
            &report(false),
            &Actor::Agency(shanghai()),
            at(1),
            &rules(),
        )
        .unwrap();
        assert_eq!(t.events[0].notify, vec![shandong()]);
        assert_eq!(
            t.new_state.verification.as_ref().map(|v| v.by.clone()),
            Some(shanghai())
        );
        assert!(matches!(
            run(&t.new_state, LicensingCommand::Decide(Decision::Approve), 2),
            Err(Refusal::Precondition {
                reason: Unmet::VerificationFailed,
                ..
            })
        ));
        // Not delegated: the accepting agency may not report.
        let own = apply(
            &under_review(),
            &report(true),
            &Actor::Agency(shanghai()),
            at(1),
            &rules(),
        );
        assert!(matches!(own, Err(Refusal::NotPermitted { .. })));
        assert!(VerifierCount::new(1).is_err() && VerifierCount::new(5).is_err());
    }

    #[test]
    fn conditional_approval_then_issue_with_number_and_validity() {
        let app = reported();
        assert!(matches!(
            run(&app, with_conditions(0), 0),
            Err(Refusal::Precondition {
                reason: Unmet::ConditionsDueNotInFuture { .. },
                ..
            })
        ));
        let approved = step(&app, with_conditions(60), 0);
        // Issue within 10 working days: Monday 18 March.
        assert_eq!(
            approved.next_deadline().map(|d| (d.kind, d.due)),
            Some((DeadlineKind::Issuance, day(14)))
        );
        let t = run(&approved, issue(42), 2).unwrap();
        let licence = t.new_state.licence.clone().unwrap();
        assert_eq!(licence.number.to_string(), "(鲁)XK13-001-00042");
        assert_eq!(licence.valid_from, day(2));
        assert_eq!(licence.valid_until, date!(2029 - 03 - 06));
        assert_eq!(t.events[0].notify, vec![shanghai()]);
        let issued = t.new_state;
        assert_eq!(
            issued.next_deadline().map(|d| d.kind),
            Some(DeadlineKind::Conditions)
        );
        assert!(matches!(
            run(
                &issued,
                LicensingCommand::RecordPostIssueCheck { passed: true },
                3
            ),
            Err(Refusal::Precondition {
                reason: Unmet::NotCommitmentRoute,
                ..
            })
        ));
        let met = step(&issued, LicensingCommand::ConfirmConditionsMet, 30);
        assert_eq!(met.next_deadline(), None);
        // Linked change after a business-licence change.
        let changed = step(
            &met,
            LicensingCommand::ChangeLicence(
                LicenceChange::new(None, Some(text("山东省淄博市某路2号"))).unwrap(),
            ),
            40,
        );
        let licence = changed.licence.unwrap();
        assert_eq!(licence.holder.address.as_str(), "山东省淄博市某路2号");
        assert_eq!(licence.holder.name, holder().name);
        assert_eq!(
            LicenceChange::new(None, None),
            Err(LicensingError::NothingToChange)
        );
        // A change of the registered address (住所) alone is a change too; the holder's name
        // and production address stay.
        let residence = LicenceChange::of(None, Some(text("山东省济南市新路9号")), None).unwrap();
        assert_eq!(
            residence.residence().map(Remark::as_str),
            Some("山东省济南市新路9号")
        );
        let moved = step(&met, LicensingCommand::ChangeLicence(residence), 41);
        assert_eq!(moved.licence.unwrap().holder, holder());
        assert_eq!(
            LicenceChange::of(None, None, None),
            Err(LicensingError::NothingToChange)
        );
    }

    #[test]
    fn commitment_route_is_checked_after_issue() {
        let app = commitment_issued();
        // Post-issue check within 30 working days of Monday 4 March: Monday 15 April.
        assert_eq!(
            app.next_deadline(),
            Some(Deadline::new(
                DeadlineKind::PostIssueCheck,
                date!(2024 - 04 - 15)
            ))
        );
        let t = run(&app, LicensingCommand::MarkOverdue, 43).unwrap();
        assert_eq!(
            t.events[0].kind,
            LicensingEventKind::Overdue(app.next_deadline().unwrap())
        );
        let revoked = step(
            &t.new_state,
            LicensingCommand::RecordPostIssueCheck { passed: false },
            44,
        );
        assert_eq!(revoked.state, ApplicationState::Revoked);
        assert!(matches!(
            run(
                &revoked,
                LicensingCommand::ChangeLicence(LicenceChange::new(Some(text("x")), None).unwrap()),
                45
            ),
            Err(Refusal::IllegalInState { .. })
        ));
        // Ordinary route without verification cannot be decided from Accepted.
        assert!(matches!(
            run(&accepted(), LicensingCommand::Decide(Decision::Approve), 1),
            Err(Refusal::Precondition {
                reason: Unmet::ReviewNotStarted,
                ..
            })
        ));
    }

    /// The form issue 16 pins: the contract's method and state names, the Chinese term beside
    /// the state, the reason after a colon, the role in plain English.
    #[test]
    fn refusals_speak_the_contracts_language() {
        let late = run(&not_accepted(), LicensingCommand::Accept, 1).unwrap_err();
        assert_eq!(
            late.to_string(),
            "AcceptApplication is not allowed in state APPLICATION_STATE_NOT_ACCEPTED (不予受理)"
        );
        let early = run(&accepted(), LicensingCommand::Decide(Decision::Approve), 1).unwrap_err();
        assert_eq!(
            early.to_string(),
            "DecideApplication is not allowed in state APPLICATION_STATE_ACCEPTED (已受理): the \
             ordinary route (先核后证) is decided only after the examination starts"
        );
        let window = Actor::Agency(accepted().accepting_agency.clone());
        let denied = apply(
            &accepted(),
            &LicensingCommand::StartReview,
            &window,
            at(1),
            &rules(),
        )
        .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "StartReview may not be called by the accepting agency"
        );
        let testing = ApplicationState::Testing {
            resume: TestingFrom::UnderReview,
        };
        assert_eq!(
            testing.to_string(),
            "APPLICATION_STATE_UNDER_REVIEW (审查中, product testing 产品检验 under way)"
        );
    }

    #[test]
    fn licence_numbers_format_and_parse() {
        let n = LicenceNumber::new(
            "鲁",
            IndustryCode::parse("13").unwrap(),
            ProductCode::parse("001").unwrap(),
            Serial::new(1).unwrap(),
        )
        .unwrap();
        assert_eq!(n.to_string(), "(鲁)XK13-001-00001");
        assert_eq!(LicenceNumber::parse("(鲁)XK13-001-00001"), Ok(n.clone()));
        assert_eq!(LicenceNumber::parse("（鲁）XK13-001-00001"), Ok(n));
        for bad in [
            "(鲁)XK13-001-0001",
            "(鲁)XK13-01-00001",
            "(鲁)XK1-001-00001",
            "(X)XK13-001-00001",
            "鲁XK13-001-00001",
            "(鲁)QS13-001-00001",
            "(鲁)XK13-001-00000",
            "(鲁)XK13-001-00001-1",
            "(鲁)XK13-001-+0001",
        ] {
            assert!(
                matches!(
                    LicenceNumber::parse(bad),
                    Err(LicensingError::LicenceNumberFormat(_))
                ),
                "{bad}"
            );
        }
        assert!(Serial::new(0).is_err() && Serial::new(100_000).is_err());
        assert!(DecisionLimit::new(21).is_err() && DecisionLimit::new(0).is_err());
        assert!(matches!(
            LicenceNumber::new(
                "X",
                IndustryCode::parse("13").unwrap(),
                ProductCode::parse("001").unwrap(),
                Serial::new(1).unwrap()
            ),
            Err(LicensingError::ProvinceAbbreviation(_))
        ));
        assert_eq!(years_later(date!(2024 - 02 - 29), 5), date!(2029 - 02 - 28));
    }

    #[test]
    fn catalogue_entries_load_from_configuration() {
        let json = r#"{"code":"fertilizer","name":"化肥","industry_code":"13","product_code":"001","commitment_allowed":false}"#;
        let entry: CatalogueEntry = serde_json::from_str(json).unwrap();
        assert_eq!(entry, fertilizer());
        let bad = r#"{"code":"fertilizer","name":"化肥","industry_code":"133","product_code":"001","commitment_allowed":false}"#;
        assert!(serde_json::from_str::<CatalogueEntry>(bad).is_err());
    }
}
