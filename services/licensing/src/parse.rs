//! Field checks shared by the requests: each pushes a violation naming the field (with its
//! path, e.g. `report.verifiers[0].id`) and answers the parsed value, so a request reports
//! every bad field at once.

use time::Date;
use yrd_call::{FieldErrors, resource_id};
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

/// The field parsers of one request, on the request's [`FieldErrors`]: each parses a field
/// into a value or adds a violation naming it, which the call answers as one `BadRequest`.
pub trait FieldParse {
    /// The request id, required.
    fn request_id(&mut self, value: &str) -> String;
    /// The id of `applications/{id}`.
    fn application_id(&mut self, field: &str, name: &str) -> Option<String>;
    /// A required message: a copy of it, or when absent its default (every field empty, so
    /// the fields checked after it are named too).
    fn message<T: Clone + Default>(&mut self, field: &str, value: &Option<T>) -> T;
    /// Required text of at most `max` characters.
    fn required(&mut self, field: &str, value: &str, max: usize) -> String;
    /// Optional text of at most `max` characters.
    fn optional(&mut self, field: &str, value: &str, max: usize) -> String;
    /// Required text as a domain remark.
    fn remark(&mut self, field: &str, value: &str, max: usize) -> Option<Remark>;
    /// A required date `YYYY-MM-DD`, not after `today`.
    fn past_date(&mut self, field: &str, value: &str, today: Date) -> Option<Date>;
    /// A required date `YYYY-MM-DD`.
    fn date(&mut self, field: &str, value: &str) -> Option<Date>;
    /// Attachments, each complete; at least one when `required`.
    fn attachments(&mut self, field: &str, items: &[pb::Attachment], required: bool);
    /// Text items, at least one, each non-empty.
    fn items(&mut self, field: &'static str, items: &[String]) -> Option<ItemList>;
    /// 2 to 4 verifiers (条例 art. 15), each with an id.
    fn verifiers(&mut self, field: &str, officers: &[pb::Officer]) -> Option<VerifierCount>;
    /// A check outcome, passed or failed.
    fn outcome(&mut self, field: &str, value: i32) -> Option<bool>;
    /// Findings: at least one when the check failed.
    fn findings(&mut self, field: &str, findings: &[String], passed: Option<bool>);
}

impl FieldParse for FieldErrors {
    /// The request id, required.
    fn request_id(&mut self, value: &str) -> String {
        yrd_call::request_id(value, self)
    }

    /// A required message: a copy of it, or when absent its default.
    fn message<T: Clone + Default>(&mut self, field: &str, value: &Option<T>) -> T {
        if value.is_none() {
            self.add(field, "is required");
        }
        value.clone().unwrap_or_default()
    }

    /// The id of `applications/{id}`.
    fn application_id(&mut self, field: &str, name: &str) -> Option<String> {
        match resource_id(name.trim(), "applications", field) {
            Ok(id) => Some(id.to_owned()),
            Err(v) => {
                self.push(v);
                None
            }
        }
    }

    /// Required text of at most `max` characters.
    fn required(&mut self, field: &str, value: &str, max: usize) -> String {
        let value = value.trim();
        if value.is_empty() {
            self.add(field, "is required");
        } else {
            at_most(self, field, value, max);
        }
        value.to_owned()
    }

    /// Optional text of at most `max` characters.
    fn optional(&mut self, field: &str, value: &str, max: usize) -> String {
        let value = value.trim();
        at_most(self, field, value, max);
        value.to_owned()
    }

    /// Required text as a domain remark.
    fn remark(&mut self, field: &str, value: &str, max: usize) -> Option<Remark> {
        let value = self.required(field, value, max);
        Remark::parse("text", &value).ok()
    }

    /// A required date `YYYY-MM-DD`, not after `today`.
    fn past_date(&mut self, field: &str, value: &str, today: Date) -> Option<Date> {
        let date = self.date(field, value)?;
        if date > today {
            self.add(
                field,
                format!("must not be in the future (today is {today})"),
            );
            return None;
        }
        Some(date)
    }

    /// A required date `YYYY-MM-DD`.
    fn date(&mut self, field: &str, value: &str) -> Option<Date> {
        let value = value.trim();
        if value.is_empty() {
            self.add(field, "is required (YYYY-MM-DD)");
            return None;
        }
        parse_date(value)
            .map_err(|e| self.add(field, format!("must be a date YYYY-MM-DD: {e}")))
            .ok()
    }

    /// Attachments, each complete; at least one when `required`.
    fn attachments(&mut self, field: &str, items: &[pb::Attachment], required: bool) {
        if required && items.is_empty() {
            self.add(field, "must list at least one file");
        }
        if items.len() > MAX_ITEMS {
            self.add(field, format!("must list at most {MAX_ITEMS} files"));
        }
        for (i, a) in items.iter().enumerate() {
            let f = |name: &str| format!("{field}[{i}].{name}");
            self.required(&f("file_name"), &a.file_name, 255);
            let media = a.media_type.trim();
            if media.is_empty() || !media.contains('/') || media.len() > 127 {
                self.add(
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
                self.add(f("sha256"), "must be 64 lower-case hexadecimal characters");
            }
            if a.size_bytes == 0 {
                self.add(f("size_bytes"), "must be the file's size, at least 1");
            }
            self.optional(&f("description"), &a.description, MAX_SHORT_CHARS);
        }
    }

    /// Text items, at least one, each non-empty.
    fn items(&mut self, field: &'static str, items: &[String]) -> Option<ItemList> {
        if items.is_empty() {
            self.add(field, "must list at least one item");
            return None;
        }
        if items.len() > MAX_ITEMS {
            self.add(field, format!("must list at most {MAX_ITEMS} items"));
            return None;
        }
        let before = self.len();
        let remarks: Vec<Remark> = items
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.remark(&format!("{field}[{i}]"), s, MAX_TEXT_CHARS))
            .collect();
        if self.len() != before {
            return None;
        }
        ItemList::new(field, remarks).ok()
    }

    /// 2 to 4 verifiers (条例 art. 15), each with an id.
    fn verifiers(&mut self, field: &str, officers: &[pb::Officer]) -> Option<VerifierCount> {
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
                self.add(
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
    fn outcome(&mut self, field: &str, value: i32) -> Option<bool> {
        match pb::CheckOutcome::try_from(value) {
            Ok(pb::CheckOutcome::Passed) => Some(true),
            Ok(pb::CheckOutcome::Failed) => Some(false),
            _ => {
                self.add(
                    field,
                    "must be CHECK_OUTCOME_PASSED or CHECK_OUTCOME_FAILED",
                );
                None
            }
        }
    }

    /// Findings: at least one when the check failed.
    fn findings(&mut self, field: &str, findings: &[String], passed: Option<bool>) {
        if passed == Some(false) && findings.is_empty() {
            self.add(
                field,
                "must list at least one finding when the outcome is FAILED",
            );
        }
        for (i, f) in findings.iter().enumerate() {
            self.required(&format!("{field}[{i}]"), f, MAX_TEXT_CHARS);
        }
    }
}

/// Adds a violation of `field` when `value` is longer than `max` characters.
fn at_most(errors: &mut FieldErrors, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        errors.add(field, format!("must be at most {max} characters"));
    }
}
