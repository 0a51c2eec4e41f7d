//! Field checks shared by the requests: each pushes a violation naming the field (with its
//! path, e.g. `report.verifiers[0].id`) and answers the parsed value, so a request reports
//! every bad field at once.

use time::Date;
use yrd_call::{FieldErrors, resource_id, violation};
use yrd_domain::licensing::{ItemList, VerifierCount};
use yrd_domain::referral::Remark;
use yrd_domain::spotcheck::parse_date;
use yrd_proto::v1 as pb;

/// Longest short text (names, references), in characters.
pub const MAX_SHORT_CHARS: usize = yrd_domain::text::SHORT_TEXT_CHARS;
/// Longest free text (notes, reasons, findings), in characters.
pub const MAX_TEXT_CHARS: usize = yrd_domain::text::REASON_CHARS;
/// Most attachments or list items in one field.
pub const MAX_ITEMS: usize = 100;

/// The field parsers of one request: each parses a field into a value or adds a violation
/// naming it to the shared [`FieldErrors`], which the call answers as one `BadRequest`.
#[derive(Debug, Default)]
pub struct Errors(pub FieldErrors);

impl Errors {
    /// Adds a violation of `field`.
    pub fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(violation(field, description));
    }

    /// True when nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The request id, required.
    pub fn request_id(&mut self, value: &str) -> String {
        yrd_call::request_id(value, &mut self.0)
    }

    /// The id of `applications/{id}`.
    pub fn application_id(&mut self, field: &str, name: &str) -> Option<String> {
        match resource_id(name.trim(), "applications", field) {
            Ok(id) => Some(id.to_owned()),
            Err(v) => {
                self.0.push(v);
                None
            }
        }
    }

    /// Required text of at most `max` characters.
    pub fn required(&mut self, field: &str, value: &str, max: usize) -> String {
        let value = value.trim();
        if value.is_empty() {
            self.push(field, "is required");
        } else {
            self.max(field, value, max);
        }
        value.to_owned()
    }

    /// Optional text of at most `max` characters.
    pub fn optional(&mut self, field: &str, value: &str, max: usize) -> String {
        let value = value.trim();
        self.max(field, value, max);
        value.to_owned()
    }

    fn max(&mut self, field: &str, value: &str, max: usize) {
        if value.chars().count() > max {
            self.push(field, format!("must be at most {max} characters"));
        }
    }

    /// Required text as a domain remark.
    pub fn remark(&mut self, field: &str, value: &str, max: usize) -> Option<Remark> {
        let value = self.required(field, value, max);
        Remark::parse("text", &value).ok()
    }

    /// A required date `YYYY-MM-DD`, not after `today`.
    pub fn past_date(&mut self, field: &str, value: &str, today: Date) -> Option<Date> {
        let date = self.date(field, value)?;
        if date > today {
            self.push(
                field,
                format!("must not be in the future (today is {today})"),
            );
            return None;
        }
        Some(date)
    }

    /// A required date `YYYY-MM-DD`.
    pub fn date(&mut self, field: &str, value: &str) -> Option<Date> {
        let value = value.trim();
        if value.is_empty() {
            self.push(field, "is required (YYYY-MM-DD)");
            return None;
        }
        parse_date(value)
            .map_err(|e| self.push(field, format!("must be a date YYYY-MM-DD: {e}")))
            .ok()
    }

    /// Attachments, each complete; at least one when `required`.
    pub fn attachments(&mut self, field: &str, items: &[pb::Attachment], required: bool) {
        if required && items.is_empty() {
            self.push(field, "must list at least one file");
        }
        if items.len() > MAX_ITEMS {
            self.push(field, format!("must list at most {MAX_ITEMS} files"));
        }
        for (i, a) in items.iter().enumerate() {
            let f = |name: &str| format!("{field}[{i}].{name}");
            self.required(&f("file_name"), &a.file_name, 255);
            let media = a.media_type.trim();
            if media.is_empty() || !media.contains('/') || media.len() > 127 {
                self.push(
                    f("media_type"),
                    "must be an IANA media type, e.g. application/pdf",
                );
            }
            let sha = a.sha256.trim();
            if sha.len() != 64
                || !sha
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                self.push(f("sha256"), "must be 64 lower-case hexadecimal characters");
            }
            if a.size_bytes == 0 {
                self.push(f("size_bytes"), "must be the file's size, at least 1");
            }
            self.optional(&f("description"), &a.description, MAX_SHORT_CHARS);
        }
    }

    /// Text items, at least one, each non-empty.
    pub fn items(&mut self, field: &'static str, items: &[String]) -> Option<ItemList> {
        if items.is_empty() {
            self.push(field, "must list at least one item");
            return None;
        }
        if items.len() > MAX_ITEMS {
            self.push(field, format!("must list at most {MAX_ITEMS} items"));
            return None;
        }
        let before = self.0.len();
        let remarks: Vec<Remark> = items
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.remark(&format!("{field}[{i}]"), s, MAX_TEXT_CHARS))
            .collect();
        if self.0.len() != before {
            return None;
        }
        ItemList::new(field, remarks).ok()
    }

    /// 2 to 4 verifiers (条例 art. 15), each with an id.
    pub fn verifiers(&mut self, field: &str, officers: &[pb::Officer]) -> Option<VerifierCount> {
        for (i, o) in officers.iter().enumerate() {
            self.required(&format!("{field}[{i}].id"), &o.id, 64);
            self.optional(
                &format!("{field}[{i}].display_name"),
                &o.display_name,
                MAX_SHORT_CHARS,
            );
        }
        u8::try_from(officers.len())
            .ok()
            .and_then(|n| VerifierCount::new(n).ok())
            .or_else(|| {
                self.push(
                    field,
                    format!(
                        "must name 2 to 4 verifiers (条例 art. 15), got {}",
                        officers.len()
                    ),
                );
                None
            })
    }

    /// A check outcome, passed or failed.
    pub fn outcome(&mut self, field: &str, value: i32) -> Option<bool> {
        match pb::CheckOutcome::try_from(value) {
            Ok(pb::CheckOutcome::Passed) => Some(true),
            Ok(pb::CheckOutcome::Failed) => Some(false),
            _ => {
                self.push(
                    field,
                    "must be CHECK_OUTCOME_PASSED or CHECK_OUTCOME_FAILED",
                );
                None
            }
        }
    }

    /// Findings: at least one when the check failed.
    pub fn findings(&mut self, field: &str, findings: &[String], passed: Option<bool>) {
        if passed == Some(false) && findings.is_empty() {
            self.push(
                field,
                "must list at least one finding when the outcome is FAILED",
            );
        }
        for (i, f) in findings.iter().enumerate() {
            self.required(&format!("{field}[{i}]"), f, MAX_TEXT_CHARS);
        }
    }
}
