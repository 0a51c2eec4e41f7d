//! The unified social credit code (统一社会信用代码, GB 32100-2015).
//!
//! Every producer and seller in a spot-check result is named by its USCC, and results are
//! searched and routed by it, so a mistyped code must be caught at the edge: the check
//! character catches every single-character error and most transpositions. Once a [`Uscc`]
//! exists it is known to be well formed, so nothing above this module re-checks it.
//!
//! Layout of the 18 characters (positions counted from 1):
//!
//! | positions | meaning |
//! |---|---|
//! | 1 | registration-authority code (登记管理部门代码) |
//! | 2 | organisation-type code (机构类别代码) |
//! | 3–8 | GB/T 2260 code of the registering authority (登记管理机关行政区划码) |
//! | 9–17 | organisation code (主体标识码) |
//! | 18 | check character (校验码) |
//!
//! The standard writes codes in upper case only. Lower case is refused with a message that
//! says so rather than silently upper-cased: a code is an identifier that is compared, indexed
//! and published, and one spelling per code keeps those comparisons exact.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::RegionCode;

/// The 31 characters a USCC may contain, in the order whose index is a character's value
/// `v(c)` in the check-character formula. I, O, S, V and Z are never used.
pub const CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// The length of a USCC in characters.
pub const LEN: usize = 18;

/// The weights `w_i = 3^(i-1) mod 31` of positions 1 to 17 in the check-character formula.
pub const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Why a text is not a USCC. Each message names the position and character at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    /// The code does not have 18 characters.
    #[error("a unified social credit code has 18 characters, got {found}")]
    Length {
        /// How many characters (not bytes) the text had.
        found: usize,
    },
    /// A lower-case letter: GB 32100-2015 writes codes in upper case only.
    #[error(
        "character {character:?} at position {position} is lower case; GB 32100-2015 writes \
         unified social credit codes in upper case only (write {upper:?})"
    )]
    LowerCase {
        /// 1-based position of the character.
        position: usize,
        /// The lower-case character found.
        character: char,
        /// Its upper-case form.
        upper: char,
    },
    /// A character outside the 31-character set.
    #[error(
        "character {character:?} at position {position} is not allowed; a unified social credit \
         code uses only 0-9 and A-Y without I, O, S, V, Z ({CHARSET})"
    )]
    Character {
        /// 1-based position of the character.
        position: usize,
        /// The character found.
        character: char,
    },
    /// Positions 3–8 are not a GB/T 2260 code of a known province.
    #[error(
        "positions 3-8 ({code}) must be the GB/T 2260 code of the registering authority, with a \
         known province in its first two digits"
    )]
    UnknownRegion {
        /// The six characters found at positions 3–8.
        code: String,
    },
    /// The 18th character does not match the 17 before it.
    #[error("check character (position 18) is {found:?}, but positions 1-17 give {expected:?}")]
    CheckCharacter {
        /// The check character computed from positions 1–17.
        expected: char,
        /// The check character found.
        found: char,
    },
}

/// A unified social credit code (统一社会信用代码) whose characters, region and check
/// character are known good.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uscc {
    /// The 18 characters as given.
    code: String,
    /// Positions 3–8, parsed once by the constructor.
    region: RegionCode,
}

impl Uscc {
    /// Parses a code: 18 characters of [`CHARSET`], upper case, positions 3–8 a GB/T 2260 code
    /// of a known province, position 18 the check character of positions 1–17. Surrounding
    /// whitespace is not trimmed here; the caller decides what its input allows.
    pub fn parse(s: &str) -> Result<Self, UsccError> {
        let chars: Vec<char> = s.chars().collect();
        if chars.len() != LEN {
            return Err(UsccError::Length { found: chars.len() });
        }
        let mut values = [0u32; LEN];
        for (i, (&c, value)) in chars.iter().zip(values.iter_mut()).enumerate() {
            *value = char_value(c, i + 1)?;
        }
        let region_text: String = chars[2..8].iter().collect();
        let region = RegionCode::parse(&region_text).map_err(|_| UsccError::UnknownRegion {
            code: region_text.clone(),
        })?;
        let expected = check_character_of(&values[..LEN - 1]);
        let found = chars[LEN - 1];
        if found != expected {
            return Err(UsccError::CheckCharacter { expected, found });
        }
        Ok(Uscc {
            code: s.to_owned(),
            region,
        })
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.code
    }

    /// The GB/T 2260 region of the registering authority (positions 3–8).
    pub fn region(&self) -> RegionCode {
        self.region
    }
}

/// The check character (position 18) of the 17 characters `body`, by GB 32100-2015:
/// `check = (31 − Σ v(c_i)·w_i mod 31) mod 31`. Fails like [`Uscc::parse`] would on a bad
/// length or character; the region is not checked here.
pub fn check_character(body: &str) -> Result<char, UsccError> {
    let chars: Vec<char> = body.chars().collect();
    if chars.len() != LEN - 1 {
        return Err(UsccError::Length { found: chars.len() });
    }
    let mut values = [0u32; LEN - 1];
    for (i, (&c, value)) in chars.iter().zip(values.iter_mut()).enumerate() {
        *value = char_value(c, i + 1)?;
    }
    Ok(check_character_of(&values))
}

/// The value `v(c)` of a character: its index in [`CHARSET`].
fn char_value(c: char, position: usize) -> Result<u32, UsccError> {
    if let Some(index) = CHARSET.chars().position(|x| x == c) {
        // CHARSET has 31 characters, so the index fits.
        return Ok(u32::try_from(index).unwrap_or(0));
    }
    let upper = c.to_ascii_uppercase();
    if c.is_ascii_lowercase() && CHARSET.contains(upper) {
        return Err(UsccError::LowerCase {
            position,
            character: c,
            upper,
        });
    }
    Err(UsccError::Character {
        position,
        character: c,
    })
}

/// [`CHARSET`] as bytes, for indexing by value.
const CHARSET_BYTES: [u8; 31] = *b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// The check character of 17 character values.
fn check_character_of(values: &[u32]) -> char {
    let sum: u32 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    // `(31 - x) % 31` is below 31, the length of the set.
    let check = (31 - sum % 31) % 31;
    char::from(CHARSET_BYTES[check as usize])
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

parsed_from_text!(Uscc, UsccError, code);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_powers_of_three_mod_31() {
        let mut w = 1u32;
        for (i, weight) in WEIGHTS.iter().enumerate() {
            assert_eq!(*weight, w, "weight of position {}", i + 1);
            w = w * 3 % 31;
        }
        assert_eq!(CHARSET.chars().count(), 31);
        assert_eq!(CHARSET.as_bytes(), CHARSET_BYTES);
    }

    #[test]
    fn domain_examples_parse() {
        for (code, region) in [
            ("91350100M000100Y43", "350100"),
            ("91330100799655058B", "330100"),
        ] {
            let uscc = Uscc::parse(code).unwrap();
            assert_eq!(uscc.as_str(), code);
            assert_eq!(uscc.region().as_str(), region);
            assert_eq!(uscc.to_string(), code);
        }
    }

    #[test]
    fn each_error_kind_names_the_problem() {
        assert_eq!(
            Uscc::parse("91350100M000100Y4"),
            Err(UsccError::Length { found: 17 })
        );
        assert_eq!(Uscc::parse(""), Err(UsccError::Length { found: 0 }));
        // 18 characters but more bytes: length is counted in characters.
        assert_eq!(
            Uscc::parse("统91350100M000100Y4"),
            Err(UsccError::Character {
                position: 1,
                character: '统'
            })
        );
        assert_eq!(
            Uscc::parse("91350100m000100Y43"),
            Err(UsccError::LowerCase {
                position: 9,
                character: 'm',
                upper: 'M'
            })
        );
        // 'I' is excluded from the set, and so is its lower case.
        assert_eq!(
            Uscc::parse("91350100I000100Y43"),
            Err(UsccError::Character {
                position: 9,
                character: 'I'
            })
        );
        assert_eq!(
            Uscc::parse("91350100i000100Y43"),
            Err(UsccError::Character {
                position: 9,
                character: 'i'
            })
        );
        // Positions 3-8 "990100": no province 99.
        let body = "919901007996550580";
        let fixed = format!("{}{}", &body[..17], check_character(&body[..17]).unwrap());
        assert_eq!(
            Uscc::parse(&fixed),
            Err(UsccError::UnknownRegion {
                code: "990100".into()
            })
        );
        // Letters at positions 3-8 are in the set but are no region code.
        assert!(matches!(
            Uscc::parse("91AB0100M000100Y43"),
            Err(UsccError::UnknownRegion { .. })
        ));
        assert_eq!(
            Uscc::parse("91350100M000100Y44"),
            Err(UsccError::CheckCharacter {
                expected: '3',
                found: '4'
            })
        );
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let lower = Uscc::parse("91330100799655058b").unwrap_err().to_string();
        assert!(lower.contains("upper case"), "{lower}");
        assert!(lower.contains("position 18"), "{lower}");
        let check = Uscc::parse("91330100799655058C").unwrap_err().to_string();
        assert!(check.contains("'B'") && check.contains("'C'"), "{check}");
    }

    #[test]
    fn single_character_errors_are_caught() {
        let code: Vec<char> = "91330100799655058B".chars().collect();
        for position in [0usize, 1, 8, 12, 16] {
            for replacement in CHARSET.chars().filter(|c| *c != code[position]) {
                let mut changed = code.clone();
                changed[position] = replacement;
                let changed: String = changed.into_iter().collect();
                assert!(Uscc::parse(&changed).is_err(), "{changed} was accepted");
            }
        }
    }

    #[test]
    fn serde_goes_through_parse() {
        let uscc: Uscc = serde_json::from_str("\"91350100M000100Y43\"").unwrap();
        assert_eq!(
            serde_json::to_string(&uscc).unwrap(),
            "\"91350100M000100Y43\""
        );
        assert!(serde_json::from_str::<Uscc>("\"91350100M000100Y44\"").is_err());
    }

    /// A small deterministic generator (xorshift64*), so the loop needs no extra crate and a
    /// failure is reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn computed_check_character_always_parses() {
        let set: Vec<char> = CHARSET.chars().collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..10_000 {
            let province = crate::ids::PROVINCES[rng.below(crate::ids::PROVINCES.len())].0;
            let mut body = String::new();
            body.push(set[rng.below(31)]);
            body.push(set[rng.below(31)]);
            body.push_str(province);
            for _ in 0..4 {
                body.push(char::from(b'0' + rng.below(10) as u8));
            }
            for _ in 0..9 {
                body.push(set[rng.below(31)]);
            }
            let check = check_character(&body).unwrap();
            let code = format!("{body}{check}");
            let parsed = Uscc::parse(&code);
            assert!(parsed.is_ok(), "{code}: {parsed:?}");
            // And any other check character is refused.
            let wrong = set[(set.iter().position(|c| *c == check).unwrap() + 1) % 31];
            assert!(Uscc::parse(&format!("{body}{wrong}")).is_err());
        }
    }
}
