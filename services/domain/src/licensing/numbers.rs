//! The licence number (许可证编号) and its parts: the industry and product codes of the
//! catalogue and the enterprise serial. Parsing and formatting are one concept, so they live
//! together, apart from the procedure that assigns them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::PROVINCES;

use super::LicensingError;

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

parsed_from_text!(LicenceNumber, LicensingError);
