//! Identifiers of the parties: GB/T 2260 region codes, agency ids, certificate profiles and
//! the SPIFFE-style URI that names an agency system in its certificate.
//!
//! Parse, don't validate: each type has a fallible constructor and, once built, is known good,
//! so the layers above never pass raw strings around.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused. The message names what is wrong, never just "invalid".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("region code must be 6 ASCII digits (GB/T 2260), got {0:?}")]
    RegionCodeFormat(String),
    #[error("region code {0} names no province of GB/T 2260 (first two digits)")]
    UnknownProvince(String),
    #[error("agency id must be <6-digit GB/T 2260 code>-<short code>, got {0:?}")]
    AgencyIdFormat(String),
    #[error(
        "agency short code must be 2 to 16 characters of A-Z, 0-9 and '_', starting with a letter, got {0:?}"
    )]
    AgencyShortCode(String),
    #[error("profile must be one of system, admin, auditor, got {0:?}")]
    Profile(String),
    #[error(
        "certificate identity must be spiffe://yrd-exchange/agency/<agency>/<profile>, got {0:?}"
    )]
    SpiffeFormat(String),
}

/// The provinces of GB/T 2260 by their two-digit prefix, with the Chinese name and the
/// one-character abbreviation (简称) used in licence numbers.
pub const PROVINCES: &[(&str, &str, &str)] = &[
    ("11", "北京市", "京"),
    ("12", "天津市", "津"),
    ("13", "河北省", "冀"),
    ("14", "山西省", "晋"),
    ("15", "内蒙古自治区", "蒙"),
    ("21", "辽宁省", "辽"),
    ("22", "吉林省", "吉"),
    ("23", "黑龙江省", "黑"),
    ("31", "上海市", "沪"),
    ("32", "江苏省", "苏"),
    ("33", "浙江省", "浙"),
    ("34", "安徽省", "皖"),
    ("35", "福建省", "闽"),
    ("36", "江西省", "赣"),
    ("37", "山东省", "鲁"),
    ("41", "河南省", "豫"),
    ("42", "湖北省", "鄂"),
    ("43", "湖南省", "湘"),
    ("44", "广东省", "粤"),
    ("45", "广西壮族自治区", "桂"),
    ("46", "海南省", "琼"),
    ("50", "重庆市", "渝"),
    ("51", "四川省", "川"),
    ("52", "贵州省", "贵"),
    ("53", "云南省", "云"),
    ("54", "西藏自治区", "藏"),
    ("61", "陕西省", "陕"),
    ("62", "甘肃省", "甘"),
    ("63", "青海省", "青"),
    ("64", "宁夏回族自治区", "宁"),
    ("65", "新疆维吾尔自治区", "新"),
    ("71", "台湾省", "台"),
    ("81", "香港特别行政区", "港"),
    ("82", "澳门特别行政区", "澳"),
];

/// A 6-digit GB/T 2260 administrative-division code whose first two digits name a province.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode([u8; 6]);

impl RegionCode {
    /// Parses a 6-digit code and checks that its province prefix exists.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bytes = s.as_bytes();
        if bytes.len() != 6 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(IdError::RegionCodeFormat(s.to_owned()));
        }
        let mut code = [0u8; 6];
        code.copy_from_slice(bytes);
        let region = RegionCode(code);
        if province_entry(region.province_prefix()).is_none() {
            return Err(IdError::UnknownProvince(s.to_owned()));
        }
        Ok(region)
    }

    /// The code as its six digits.
    pub fn as_str(&self) -> &str {
        // The constructor accepts ASCII digits only, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("000000")
    }

    /// The two-digit province prefix, e.g. `"31"` for Shanghai.
    pub fn province_prefix(&self) -> &str {
        &self.as_str()[..2]
    }

    /// The province-level code of this region, e.g. `310000` for `310115`.
    pub fn province(&self) -> RegionCode {
        let mut code = [b'0'; 6];
        code[..2].copy_from_slice(&self.0[..2]);
        RegionCode(code)
    }

    /// True when this code is itself a province (`xx0000`).
    pub fn is_province(&self) -> bool {
        &self.0[2..] == b"0000"
    }

    /// The province's Chinese name (e.g. 上海市).
    pub fn province_name(&self) -> &'static str {
        province_entry(self.province_prefix()).map_or("", |p| p.1)
    }

    /// The province's one-character abbreviation used in licence numbers (e.g. 沪).
    pub fn province_abbreviation(&self) -> &'static str {
        province_entry(self.province_prefix()).map_or("", |p| p.2)
    }
}

fn province_entry(prefix: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    PROVINCES.iter().find(|p| p.0 == prefix)
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RegionCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An agency known to the exchange: `<6-digit GB/T 2260 code>-<short code>`, e.g. `310000-SAMR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgencyId(String);

impl AgencyId {
    /// Parses and checks an agency id.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let (region, short) = s
            .split_once('-')
            .ok_or_else(|| IdError::AgencyIdFormat(s.to_owned()))?;
        RegionCode::parse(region).map_err(|_| IdError::AgencyIdFormat(s.to_owned()))?;
        let valid_short = (2..=16).contains(&short.len())
            && short.starts_with(|c: char| c.is_ascii_uppercase())
            && short
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !valid_short {
            return Err(IdError::AgencyShortCode(short.to_owned()));
        }
        Ok(AgencyId(s.to_owned()))
    }

    /// Parses an agency given either as its resource name (`agencies/370000-AMR`, the form of
    /// the v1 contract) or as the bare id (`370000-AMR`, the form officers type), for filters
    /// that accept both.
    pub fn parse_name_or_id(s: &str) -> Result<Self, IdError> {
        Self::parse(
            s.strip_prefix(Self::COLLECTION)
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or(s),
        )
    }

    /// The collection of agency resource names: `agencies/{agency}`.
    pub const COLLECTION: &'static str = "agencies";

    /// The agency's resource name, `agencies/{agency}`, as the v1 contract names it.
    pub fn resource_name(&self) -> String {
        format!("{}/{}", Self::COLLECTION, self.0)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The agency's GB/T 2260 region code.
    pub fn region(&self) -> RegionCode {
        // Checked by the constructor.
        RegionCode::parse(&self.0[..6]).unwrap_or(RegionCode(*b"000000"))
    }

    /// The agency's province-level region code.
    pub fn province(&self) -> RegionCode {
        self.region().province()
    }
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

parsed_from_text!(AgencyId, IdError, 0);

/// What a certificate admits its holder as. A certificate carries exactly one profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A partner agency's own system: publishes results, handles referrals and applications.
    System,
    /// An administrator: agencies and certificates.
    Admin,
    /// An auditor: reads the exchange log and nothing else.
    Auditor,
}

impl Profile {
    /// Every profile, in a stable order.
    pub const ALL: [Profile; 3] = [Profile::System, Profile::Admin, Profile::Auditor];

    /// The profile's lowercase name, as it appears in the certificate URI.
    pub fn as_str(&self) -> &'static str {
        match self {
            Profile::System => "system",
            Profile::Admin => "admin",
            Profile::Auditor => "auditor",
        }
    }

    /// The profile's certificate as a message names it, with the right article: "a system
    /// certificate", "an admin certificate", "an auditor certificate".
    pub fn certificate(&self) -> &'static str {
        match self {
            Profile::System => "a system certificate",
            Profile::Admin => "an admin certificate",
            Profile::Auditor => "an auditor certificate",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Profile {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(Profile::System),
            "admin" => Ok(Profile::Admin),
            "auditor" => Ok(Profile::Auditor),
            _ => Err(IdError::Profile(s.to_owned())),
        }
    }
}

/// The trust domain of the exchange's certificate URIs.
pub const TRUST_DOMAIN: &str = "yrd-exchange";

/// The SPIFFE-style URI SAN that names an agency system in its certificate:
/// `spiffe://yrd-exchange/agency/310000-SAMR/system`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    /// The agency the certificate belongs to.
    pub agency: AgencyId,
    /// What the certificate admits its holder as.
    pub profile: Profile,
}

impl SpiffeId {
    /// Builds the identity of an agency's certificate.
    pub fn new(agency: AgencyId, profile: Profile) -> Self {
        SpiffeId { agency, profile }
    }

    /// Parses the URI form.
    pub fn parse(uri: &str) -> Result<Self, IdError> {
        let err = || IdError::SpiffeFormat(uri.to_owned());
        let rest = uri
            .strip_prefix("spiffe://")
            .and_then(|r| r.strip_prefix(TRUST_DOMAIN))
            .and_then(|r| r.strip_prefix("/agency/"))
            .ok_or_else(err)?;
        let (agency, profile) = rest.split_once('/').ok_or_else(err)?;
        Ok(SpiffeId {
            agency: AgencyId::parse(agency)?,
            profile: profile.parse()?,
        })
    }

    /// The URI form.
    pub fn to_uri(&self) -> String {
        format!(
            "spiffe://{TRUST_DOMAIN}/agency/{}/{}",
            self.agency, self.profile
        )
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uri())
    }
}

/// The caller of a request as the identity layer established it from the peer certificate.
/// Handlers take the caller from here, never from the message body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgencyIdentity {
    /// The calling agency.
    pub agency: AgencyId,
    /// The profile of the certificate presented.
    pub profile: Profile,
    /// SHA-256 of the DER certificate presented (RFC 8705 `x5t#S256`), lowercase hex.
    pub cert_fingerprint: String,
}

/// The five province agencies of the Yangtze River Delta exchange, seeded on first start.
/// `(agency id, English name, Chinese name)`.
pub const DELTA_AGENCIES: &[(&str, &str, &str)] = &[
    (
        "310000-SAMR",
        "Shanghai Administration for Market Regulation",
        "上海市市场监督管理局",
    ),
    (
        "320000-AMR",
        "Jiangsu Administration for Market Regulation",
        "江苏省市场监督管理局",
    ),
    (
        "330000-AMR",
        "Zhejiang Administration for Market Regulation",
        "浙江省市场监督管理局",
    ),
    (
        "340000-AMR",
        "Anhui Administration for Market Regulation",
        "安徽省市场监督管理局",
    ),
    (
        "370000-AMR",
        "Shandong Administration for Market Regulation",
        "山东省市场监督管理局",
    ),
];

/// The exchange's operator agency by default (Shanghai).
pub const DEFAULT_OPERATOR: &str = "310000-SAMR";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes() {
        assert!(RegionCode::parse("310115").is_ok());
        assert_eq!(
            RegionCode::parse("310115").map(|r| r.province().to_string()),
            Ok("310000".to_owned())
        );
        assert_eq!(
            RegionCode::parse("31011"),
            Err(IdError::RegionCodeFormat("31011".into()))
        );
        assert_eq!(
            RegionCode::parse("990000"),
            Err(IdError::UnknownProvince("990000".into()))
        );
        assert_eq!(
            RegionCode::parse("370000").map(|r| r.province_abbreviation()),
            Ok("鲁")
        );
    }

    #[test]
    fn agency_ids() {
        for (id, _, _) in DELTA_AGENCIES {
            assert!(AgencyId::parse(id).is_ok(), "{id}");
        }
        assert!(matches!(
            AgencyId::parse("310000"),
            Err(IdError::AgencyIdFormat(_))
        ));
        assert!(matches!(
            AgencyId::parse("310000-samr"),
            Err(IdError::AgencyShortCode(_))
        ));
        assert!(matches!(
            AgencyId::parse("990000-AMR"),
            Err(IdError::AgencyIdFormat(_))
        ));
    }

    #[test]
    fn agency_resource_names_and_bare_ids_parse_alike() {
        let bare = AgencyId::parse_name_or_id("370000-AMR");
        assert_eq!(bare, AgencyId::parse("370000-AMR"));
        assert_eq!(AgencyId::parse_name_or_id("agencies/370000-AMR"), bare);
        assert_eq!(
            bare.map(|a| a.resource_name()),
            Ok("agencies/370000-AMR".to_owned())
        );
        for bad in [
            "agencies/",
            "agency/370000-AMR",
            "agencies/370000-amr",
            "results/370000-AMR",
        ] {
            assert!(AgencyId::parse_name_or_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spiffe_round_trip() {
        let id = SpiffeId::parse("spiffe://yrd-exchange/agency/310000-SAMR/admin");
        assert_eq!(
            id.as_ref().map(|i| i.to_uri()),
            Ok("spiffe://yrd-exchange/agency/310000-SAMR/admin".to_owned())
        );
        for bad in [
            "spiffe://other/agency/310000-SAMR/admin",
            "spiffe://yrd-exchange/agency/310000-SAMR",
            "spiffe://yrd-exchange/agency/310000-SAMR/root",
            "https://yrd-exchange/agency/310000-SAMR/admin",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad}");
        }
    }
}
