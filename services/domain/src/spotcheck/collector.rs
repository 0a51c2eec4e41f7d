//! The collector: field-level checks (text rules, codes, dates, URLs) that record a violation
//! and return `None` on failure, so the section parsers can go on and report every problem.

use time::Date;
use url::Url;

use crate::ids::RegionCode;
use crate::uscc::Uscc;

use super::dates::{iso, parse_iso_date};
use super::*;

/// How a text field is checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct TextRule {
    /// Most characters allowed.
    max: usize,
    /// Whether line breaks and tabs are allowed.
    multiline: bool,
    /// Whether "/" means "none".
    none_mark: bool,
}

pub(super) const LINE_NAME: TextRule = TextRule {
    max: MAX_NAME_CHARS,
    multiline: false,
    none_mark: false,
};
pub(super) const LINE_NAME_OR_NONE: TextRule = TextRule {
    none_mark: true,
    ..LINE_NAME
};
pub(super) const LINE_CODE: TextRule = TextRule {
    max: MAX_CODE_CHARS,
    ..LINE_NAME
};
pub(super) const LINE_URL: TextRule = TextRule {
    max: MAX_URL_CHARS,
    ..LINE_NAME
};
pub(super) const FILE_NAME: TextRule = TextRule {
    max: MAX_FILE_NAME_CHARS,
    ..LINE_NAME
};
pub(super) const MEDIA_TYPE: TextRule = TextRule {
    max: MAX_MEDIA_TYPE_CHARS,
    ..LINE_NAME
};
pub(super) const ADDRESS: TextRule = TextRule {
    max: MAX_ADDRESS_CHARS,
    ..LINE_NAME
};
pub(super) const TEXT: TextRule = TextRule {
    max: MAX_TEXT_CHARS,
    multiline: true,
    none_mark: false,
};
pub(super) const TEXT_OR_NONE: TextRule = TextRule {
    none_mark: true,
    ..TEXT
};

#[derive(Debug, Default)]
pub(super) struct Collector {
    pub(super) violations: Vec<FieldViolation>,
}

impl Collector {
    pub(super) fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Whether a list of `len` entries has an allowed size: at least one unless `missing` is
    /// `None` (else `missing` is the violation), at most `max` (`noun` names the entries).
    pub(super) fn list_size(
        &mut self,
        field: &str,
        len: usize,
        max: usize,
        noun: &str,
        missing: Option<&str>,
    ) -> bool {
        if let (0, Some(missing)) = (len, missing) {
            self.push(field, missing);
            return false;
        }
        if len > max {
            self.push(
                field,
                format!("{len} {noun} given; at most {max} are allowed"),
            );
            return false;
        }
        true
    }

    pub(super) fn finish(self) -> FieldErrors {
        debug_assert!(
            !self.violations.is_empty(),
            "a section failed without reporting why"
        );
        FieldErrors {
            violations: self.violations,
        }
    }

    /// A required sub-message.
    pub(super) fn message<'a, T>(&mut self, field: &str, value: Option<&'a T>) -> Option<&'a T> {
        if value.is_none() {
            self.push(field, "is required");
        }
        value
    }

    /// A text that may be absent: `Some(None)` when empty (or "/" where that means none),
    /// `Some(Some(trimmed))` when good, `None` after recording a violation.
    pub(super) fn optional(
        &mut self,
        field: &str,
        value: &str,
        rule: TextRule,
    ) -> Option<Option<String>> {
        let value = value.trim();
        if value.is_empty() || (rule.none_mark && value == NONE_MARK) {
            return Some(None);
        }
        let count = value.chars().count();
        if count > rule.max {
            self.push(
                field,
                format!("has {count} characters; at most {} are allowed", rule.max),
            );
            return None;
        }
        let bad = value.chars().enumerate().find(|(_, ch)| {
            ch.is_control() && !(rule.multiline && matches!(ch, '\n' | '\r' | '\t'))
        });
        if let Some((at, ch)) = bad {
            let allowed = if rule.multiline {
                "only line breaks and tabs are allowed"
            } else {
                "this field is one line"
            };
            self.push(
                field,
                format!(
                    "contains control character U+{:04X} at character {}; {allowed}",
                    u32::from(ch),
                    at + 1
                ),
            );
            return None;
        }
        Some(Some(value.to_owned()))
    }

    /// A text that must be present.
    pub(super) fn required(&mut self, field: &str, value: &str, rule: TextRule) -> Option<String> {
        match self.optional(field, value, rule)? {
            Some(value) => Some(value),
            None => {
                self.push(field, "must not be empty");
                None
            }
        }
    }

    /// A required enum given by wire number.
    pub(super) fn enumeration<T>(
        &mut self,
        field: &str,
        n: i32,
        from_wire: impl Fn(i32) -> Option<T>,
        expected: &str,
    ) -> Option<T> {
        let value = from_wire(n);
        if value.is_none() {
            let what = if n == 0 {
                "is unspecified (0)".to_owned()
            } else {
                format!("has unknown value {n}")
            };
            self.push(field, format!("{what}; expected {expected}"));
        }
        value
    }

    pub(super) fn uscc(&mut self, field: &str, value: &str) -> Option<Uscc> {
        Uscc::parse(value)
            .map_err(|e| self.push(field, e.to_string()))
            .ok()
    }

    pub(super) fn region(&mut self, field: &str, value: &str) -> Option<RegionCode> {
        let value = value.trim();
        if value.is_empty() {
            self.push(field, "must not be empty: a 6-digit GB/T 2260 region code");
            return None;
        }
        RegionCode::parse(value)
            .map_err(|e| self.push(field, e.to_string()))
            .ok()
    }

    /// A calendar date `YYYY-MM-DD`, not after `today`.
    pub(super) fn date(&mut self, field: &str, value: &str, today: Date) -> Option<Date> {
        let value = value.trim();
        if value.is_empty() {
            self.push(field, "must not be empty: a date YYYY-MM-DD");
            return None;
        }
        let date = match parse_iso_date(value) {
            Ok(date) => date,
            Err(why) => {
                self.push(field, why);
                return None;
            }
        };
        if date > today {
            self.push(
                field,
                format!("{value} is in the future (today is {})", iso(today)),
            );
            return None;
        }
        Some(date)
    }

    /// An `http`/`https` URL with a host and no credentials. The WHATWG parser of the `url`
    /// crate repairs much (`https:/x`, stray tabs); a published shop address should be exact,
    /// so the text must already start with `http://` or `https://`, and whitespace is refused
    /// before parsing.
    pub(super) fn shop_url(&mut self, field: &str, value: &str) -> Option<Url> {
        let lower = value.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            self.push(
                field,
                format!("{value:?} is not an http(s) URL; it must start with https:// or http://"),
            );
            return None;
        }
        if let Some(ch) = value.chars().find(|c| c.is_whitespace()) {
            self.push(
                field,
                format!(
                    "contains whitespace U+{:04X}; percent-encode it",
                    u32::from(ch)
                ),
            );
            return None;
        }
        let url = match Url::parse(value) {
            Ok(url) => url,
            Err(e) => {
                self.push(field, format!("{value:?} is not a well-formed URL: {e}"));
                return None;
            }
        };
        if url.host_str().is_none_or(str::is_empty) {
            self.push(field, format!("{value:?} has no host"));
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            self.push(
                field,
                "contains credentials (user:password@); a published shop URL carries none",
            );
            return None;
        }
        Some(url)
    }

    /// `type/subtype` of RFC 6838 restricted names, without parameters; lower-cased.
    pub(super) fn media_type(&mut self, field: &str, value: &str) -> Option<String> {
        let restricted = |s: &str| {
            (1..=127).contains(&s.len())
                && s.starts_with(|c: char| c.is_ascii_alphanumeric())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
        };
        match value.split_once('/') {
            Some((kind, sub)) if restricted(kind) && restricted(sub) => {
                Some(value.to_ascii_lowercase())
            }
            _ => {
                self.push(
                    field,
                    format!(
                        "{value:?} is not a media type; write type/subtype without parameters, \
                         e.g. application/pdf"
                    ),
                );
                None
            }
        }
    }

    /// 64 hex digits; lower-cased so one digest has one spelling.
    pub(super) fn sha256(&mut self, field: &str, value: &str) -> Option<String> {
        if value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit()) {
            return Some(value.to_ascii_lowercase());
        }
        self.push(
            field,
            format!(
                "must be a SHA-256 digest of 64 hex digits, got {} characters",
                value.chars().count()
            ),
        );
        None
    }
}
