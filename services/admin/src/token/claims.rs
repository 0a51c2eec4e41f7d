//! The claims of an exchange access token, and the two values a partner or a certificate
//! contributes to them: the acting officer's id and the certificate thumbprint.
//!
//! `sub` names the agency *system* as the SPIFFE id of its certificate
//! (`spiffe://yrd-exchange/agency/310000-SAMR/system`), not the bare agency id: one agency holds
//! system, admin and auditor certificates, and the subject should say which of them the token
//! speaks for. `agency` and `profile` repeat the two parts as plain claims so nobody has to parse
//! the URI; the verifier checks that the three agree.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use yrd_domain::{AgencyId, Profile};

/// The longest officer id accepted (characters).
pub const OFFICER_MAX_CHARS: usize = yrd_domain::text::OFFICER_ID_CHARS;

/// Why an officer id or a certificate thumbprint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The officer id is the empty string.
    #[error("officer id must not be empty (leave it out when no officer acts)")]
    OfficerEmpty,
    /// The officer id is longer than [`OFFICER_MAX_CHARS`].
    #[error("officer id must be at most {OFFICER_MAX_CHARS} characters, got {0}")]
    OfficerTooLong(usize),
    /// The officer id starts or ends with whitespace, which would make two ids look alike.
    #[error("officer id must not start or end with whitespace")]
    OfficerSurroundingWhitespace,
    /// The officer id contains a control character (newline, tab, NUL, …).
    #[error(
        "officer id must not contain control characters (character {position} is U+{code:04X})"
    )]
    OfficerControlCharacter {
        /// 1-based position of the character.
        position: usize,
        /// Its code point.
        code: u32,
    },
    /// The officer id contains an invisible formatting character (zero-width, bidi override,
    /// soft hyphen, …) or whitespace other than a plain space, which would let two different
    /// ids print alike in the audit log.
    #[error(
        "officer id must contain printable characters only (character {position} is U+{code:04X})"
    )]
    OfficerInvisibleCharacter {
        /// 1-based position of the character.
        position: usize,
        /// Its code point.
        code: u32,
    },
    /// The certificate fingerprint is not 64 hex digits (a SHA-256).
    #[error("certificate fingerprint must be a SHA-256 as 64 hex digits, got {0} characters")]
    Fingerprint(usize),
}

/// The id of the officer acting through a partner system (e.g. a law-enforcement certificate
/// number), as the partner asserts it: 1 to 64 printable characters, no control or invisible
/// characters, no surrounding whitespace. It becomes the token's `act.sub` and appears in every
/// audit entry made with the token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OfficerId(String);

impl OfficerId {
    /// Parses an officer id; the error names the first defect.
    pub fn parse(s: &str) -> Result<Self, ClaimError> {
        if s.is_empty() {
            return Err(ClaimError::OfficerEmpty);
        }
        let chars = s.chars().count();
        if chars > OFFICER_MAX_CHARS {
            return Err(ClaimError::OfficerTooLong(chars));
        }
        if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
            return Err(ClaimError::OfficerSurroundingWhitespace);
        }
        for (i, c) in s.chars().enumerate() {
            let position = i + 1;
            let code = u32::from(c);
            if c.is_control() {
                return Err(ClaimError::OfficerControlCharacter { position, code });
            }
            if is_invisible(c) || (c.is_whitespace() && c != ' ') {
                return Err(ClaimError::OfficerInvisibleCharacter { position, code });
            }
        }
        Ok(OfficerId(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OfficerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Formatting characters that print as nothing: soft hyphen, zero-width spaces and joiners,
/// bidirectional marks, embeddings, overrides and isolates, word joiner and invisible
/// operators, the byte-order mark, and the private-use area.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{034F}'
        | '\u{061C}'
        | '\u{115F}'..='\u{1160}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}'
        | '\u{E000}'..='\u{F8FF}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}'
        | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFFF}'
    )
}

/// Converts a certificate fingerprint as the identity layer carries it (lowercase or uppercase
/// hex of the SHA-256 of the DER certificate) into the RFC 8705 `x5t#S256` form:
/// base64url without padding of the same 32 bytes.
pub fn x5t_s256_from_hex(fingerprint_hex: &str) -> Result<String, ClaimError> {
    let bytes = hex::decode(fingerprint_hex)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or(ClaimError::Fingerprint(fingerprint_hex.len()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The confirmation claim (RFC 7800 `cnf`) that binds a token to a client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// base64url (no padding) of the SHA-256 of the DER client certificate (RFC 8705 §3.1).
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

impl Confirmation {
    /// The thumbprint as lowercase hex, the form the identity layer and the store use; `None`
    /// when the claim is not a base64url SHA-256.
    pub fn fingerprint_hex(&self) -> Option<String> {
        URL_SAFE_NO_PAD
            .decode(&self.x5t_s256)
            .ok()
            .filter(|b| b.len() == 32)
            .map(hex::encode)
    }
}

/// The actor claim (RFC 8693 §4.1): who acts through the agency system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The officer id, as asserted by the partner.
    pub sub: String,
}

/// The claims of an exchange access token (RFC 7519, RFC 8693 `act`, RFC 8705 `cnf`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the exchange ([`super::TokenSettings::issuer`]).
    pub iss: String,
    /// Subject: the SPIFFE id of the certificate the token was issued to,
    /// `spiffe://yrd-exchange/agency/<agency>/<profile>`.
    pub sub: String,
    /// Audience ([`super::TokenSettings::audience`]).
    pub aud: String,
    /// Expiry, seconds since the Unix epoch; refused from this second on.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// Not-before, seconds since the Unix epoch (equal to `iat` in tokens the exchange issues).
    pub nbf: i64,
    /// Unique token id (UUID v4), recorded in the audit log.
    pub jti: Uuid,
    /// The roles granted, as scope names (`results:publish`, …).
    pub roles: Vec<String>,
    /// The officer acting, when the partner named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The certificate binding. Always present in tokens the exchange issues; optional here
    /// only so that a token without it is reported as such rather than as malformed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The calling agency (the agency part of `sub`).
    pub agency: AgencyId,
    /// The certificate profile (the profile part of `sub`).
    pub profile: Profile,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn officer_ids_accepted() {
        for ok in ["SH-ZF-0001", "张三 31010020230001", "a", &"x".repeat(64)] {
            assert_eq!(
                OfficerId::parse(ok).map(|o| o.to_string()),
                Ok(ok.to_owned())
            );
        }
        // 64 characters counted as characters, not bytes.
        assert!(OfficerId::parse(&"执".repeat(64)).is_ok());
    }

    #[test]
    fn officer_ids_refused() {
        assert_eq!(OfficerId::parse(""), Err(ClaimError::OfficerEmpty));
        assert_eq!(
            OfficerId::parse(&"x".repeat(65)),
            Err(ClaimError::OfficerTooLong(65))
        );
        assert_eq!(
            OfficerId::parse(" SH-1"),
            Err(ClaimError::OfficerSurroundingWhitespace)
        );
        assert_eq!(
            OfficerId::parse("SH-1\n"),
            Err(ClaimError::OfficerSurroundingWhitespace)
        );
        assert_eq!(
            OfficerId::parse("SH\u{0}1"),
            Err(ClaimError::OfficerControlCharacter {
                position: 3,
                code: 0
            })
        );
        assert_eq!(
            OfficerId::parse("SH\t1"),
            Err(ClaimError::OfficerControlCharacter {
                position: 3,
                code: 9
            })
        );
        assert_eq!(
            OfficerId::parse("SH\u{202E}1"),
            Err(ClaimError::OfficerInvisibleCharacter {
                position: 3,
                code: 0x202E
            })
        );
        assert_eq!(
            OfficerId::parse("SH\u{200B}1"),
            Err(ClaimError::OfficerInvisibleCharacter {
                position: 3,
                code: 0x200B
            })
        );
        assert_eq!(
            OfficerId::parse("SH\u{3000}1"),
            Err(ClaimError::OfficerInvisibleCharacter {
                position: 3,
                code: 0x3000
            })
        );
    }

    #[test]
    fn thumbprint_hex_to_base64url_and_back() {
        let hex_fp = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let x5t = x5t_s256_from_hex(hex_fp).expect("valid fingerprint");
        assert_eq!(x5t, "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg");
        let cnf = Confirmation { x5t_s256: x5t };
        assert_eq!(cnf.fingerprint_hex().as_deref(), Some(hex_fp));
        assert_eq!(
            x5t_s256_from_hex(&hex_fp.to_uppercase()).as_deref(),
            Ok("n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg")
        );
        assert_eq!(x5t_s256_from_hex("abcd"), Err(ClaimError::Fingerprint(4)));
        assert_eq!(
            x5t_s256_from_hex(&"zz".repeat(32)),
            Err(ClaimError::Fingerprint(64))
        );
    }

    #[test]
    fn claims_serialise_with_rfc_names() {
        let claims = Claims {
            iss: "yrd-exchange".into(),
            sub: "spiffe://yrd-exchange/agency/310000-SAMR/system".into(),
            aud: "yrd-exchange".into(),
            exp: 1_700_000_600,
            iat: 1_700_000_000,
            nbf: 1_700_000_000,
            jti: Uuid::nil(),
            roles: vec!["results:read".into()],
            act: Some(Actor { sub: "SH-1".into() }),
            cnf: Some(Confirmation {
                x5t_s256: "abc".into(),
            }),
            agency: AgencyId::parse("310000-SAMR").expect("agency id"),
            profile: Profile::System,
        };
        let json = serde_json::to_value(&claims).expect("serialise");
        assert_eq!(json["cnf"]["x5t#S256"], "abc");
        assert_eq!(json["act"]["sub"], "SH-1");
        assert_eq!(json["profile"], "system");
        assert_eq!(json["agency"], "310000-SAMR");
        assert_eq!(json["jti"], "00000000-0000-0000-0000-000000000000");
        let back: Claims = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, claims);
    }
}
