//! The enumerations of a result (sampling way, verdicts, campaign kind) with their wire
//! numbers, which must equal those of `spotcheck.proto` and `common.proto`.

use serde::Serialize;

/// How the sample was taken (抽样方式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingWay {
    /// Bought online as a mystery shopper (网购/买样). Wire number 1.
    OnlinePurchase,
    /// Taken on site (现场抽样). Wire number 2.
    OnSite,
}

impl SamplingWay {
    /// The value of a wire number; `None` for 0 (unspecified) and unknown numbers.
    pub fn from_wire(n: i32) -> Option<Self> {
        match n {
            1 => Some(SamplingWay::OnlinePurchase),
            2 => Some(SamplingWay::OnSite),
            _ => None,
        }
    }

    /// The wire number.
    pub fn wire(self) -> i32 {
        match self {
            SamplingWay::OnlinePurchase => 1,
            SamplingWay::OnSite => 2,
        }
    }
}

/// A verdict (检验结论), of the whole result or of one test item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Conforming (合格). Wire number 1.
    Conforming,
    /// Non-conforming (不合格). Wire number 2.
    NonConforming,
}

impl Verdict {
    /// The value of a wire number; `None` for 0 (unspecified) and unknown numbers.
    pub fn from_wire(n: i32) -> Option<Self> {
        match n {
            1 => Some(Verdict::Conforming),
            2 => Some(Verdict::NonConforming),
            _ => None,
        }
    }

    /// The wire number.
    pub fn wire(self) -> i32 {
        match self {
            Verdict::Conforming => 1,
            Verdict::NonConforming => 2,
        }
    }
}

/// The verdict on one test item (单项判定): besides conforming and non-conforming, an item may
/// be measured but not judged (不判定).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemVerdict {
    /// Conforming (合格). Wire number 1.
    Conforming,
    /// Non-conforming (不合格). Wire number 2.
    NonConforming,
    /// Measured but not judged (不判定). Wire number 3.
    NotJudged,
}

impl ItemVerdict {
    /// The value of a wire number; `None` for 0 (unspecified) and unknown numbers.
    pub fn from_wire(n: i32) -> Option<Self> {
        match n {
            1 => Some(ItemVerdict::Conforming),
            2 => Some(ItemVerdict::NonConforming),
            3 => Some(ItemVerdict::NotJudged),
            _ => None,
        }
    }

    /// The wire number.
    pub fn wire(self) -> i32 {
        match self {
            ItemVerdict::Conforming => 1,
            ItemVerdict::NonConforming => 2,
            ItemVerdict::NotJudged => 3,
        }
    }
}

/// Who organised the spot-check campaign (抽查计划/专项).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    /// A national supervision spot-check organised by SAMR (国家监督抽查). Wire number 1.
    National,
    /// A provincial supervision spot-check (省级监督抽查). Wire number 2.
    Provincial,
    /// A city or county spot-check (市县级监督抽查). Wire number 3.
    Local,
    /// A special campaign on one product or risk (专项抽查). Wire number 4.
    Special,
    /// The Yangtze River Delta joint spot-check (长三角联合抽查): every Delta agency sees its
    /// results. Wire number 5.
    DeltaJoint,
}

impl CampaignKind {
    /// The value of a wire number; `None` for 0 (unspecified) and unknown numbers.
    pub fn from_wire(n: i32) -> Option<Self> {
        match n {
            1 => Some(CampaignKind::National),
            2 => Some(CampaignKind::Provincial),
            3 => Some(CampaignKind::Local),
            4 => Some(CampaignKind::Special),
            5 => Some(CampaignKind::DeltaJoint),
            _ => None,
        }
    }

    /// The wire number.
    pub fn wire(self) -> i32 {
        match self {
            CampaignKind::National => 1,
            CampaignKind::Provincial => 2,
            CampaignKind::Local => 3,
            CampaignKind::Special => 4,
            CampaignKind::DeltaJoint => 5,
        }
    }
}
