//! One exchange-log entry (交换日志条目) as `yrd audit` prints, exports and re-reads it, and
//! the checks an auditor can run on it without asking the server anything.
//!
//! # Why it is shaped so
//!
//! An entry reaches the auditor twice over: as the canonical `leaf_input` text that its leaf
//! hash covers, and as fields the server decoded from its database columns. Only the first is
//! protected by the Merkle tree. So an exported line carries both — the index, the leaf hash
//! (hex), the canonical text, and the decoded fields flattened beside them — and
//! [`EntryView::check`] holds the server to its word: the text must hash to the stated leaf
//! hash, must be exactly canonical, and must decode to the very fields printed beside it. A
//! row whose columns were edited but whose text was not is caught here; a text edited
//! consistently with its hash is caught by the Merkle check (`cli::audit::check`).
//!
//! The same [`EntryView`] is the JSON of `yrd audit query --json`, a JSON Lines export line and
//! a `yrd audit tail --json` line, so every auditor tool reads every other tool's output.

use std::io::{self, Write};

use comfy_table::{Table, presets};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::Code;
use yrd_domain::audit::{LEAF_VERSION, LeafData, LeafError};
use yrd_domain::merkle::{Hash, leaf_hash};
use yrd_proto::v1::{self as pb, AuditEntry};

use yrd_client::code_name;

/// The method paths of this contract start with this; tables print the rest.
const METHOD_PREFIX: &str = "/yrd.exchange.v1.";

/// One entry as `yrd audit` prints and exports it: one JSON object per line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    /// Zero-based Merkle leaf index.
    pub index: u64,
    /// The leaf hash the server stated, 64 hex digits.
    pub leaf_hash: Hash,
    /// The canonical text the leaf hash covers.
    pub leaf_input: String,
    /// When the call arrived, RFC 3339 UTC with microseconds: `time_us` for people.
    pub time: String,
    /// The fields as the server decoded them (from its columns, not from `leaf_input`).
    #[serde(flatten)]
    pub fields: LeafData,
}

/// What is wrong with one entry, found without the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    /// The line sits where another index belongs: an entry is missing before it, or indexes
    /// were rewritten.
    #[error("it carries index {found} where index {expected} belongs")]
    IndexOutOfSequence {
        /// The index its position calls for.
        expected: u64,
        /// The index it carries.
        found: u64,
    },
    /// The canonical text does not hash to the stated leaf hash.
    #[error("its leaf_input hashes to {computed}, but its leaf_hash says {stated}")]
    HashMismatch {
        /// The hash the line states.
        stated: Hash,
        /// SHA-256(0x00 ‖ leaf_input).
        computed: Hash,
    },
    /// The text is not a canonical leaf.
    #[error("its leaf_input is not a canonical leaf: {0}")]
    NotALeaf(LeafError),
    /// A decoded field differs from what the canonical text says.
    #[error("its decoded field {field} differs from its leaf_input")]
    FieldDiffers {
        /// The first differing field, by its JSON name.
        field: String,
    },
}

impl EntryView {
    /// The view of an entry the server sent.
    ///
    /// Nothing here is refused: an entry from a tampered log must still be exported so that
    /// verification can name it. A leaf input that is not UTF-8 is kept lossily (it then fails
    /// [`EntryView::check`], since canonical text is UTF-8); the entry format does not carry
    /// the leaf version, so `v` is read from the leaf input (this tool's version when absent).
    pub fn from_pb(entry: &AuditEntry) -> EntryView {
        let leaf_input = String::from_utf8_lossy(&entry.leaf_input).into_owned();
        let v = serde_json::from_str::<serde_json::Value>(&leaf_input)
            .ok()
            .and_then(|json| json.get("v").and_then(serde_json::Value::as_u64))
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(LEAF_VERSION);
        let time_us = entry.time.as_ref().map_or(0, |t| {
            t.seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(t.nanos / 1_000))
        });
        let duration_us = entry.duration.as_ref().map_or(0, |d| {
            d.seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(d.nanos / 1_000))
        });
        let fields = LeafData {
            v,
            time_us,
            trace_id: entry.trace_id.clone(),
            span_id: entry.span_id.clone(),
            agency: entry
                .caller_agency
                .strip_prefix("agencies/")
                .unwrap_or(&entry.caller_agency)
                .to_owned(),
            cert_fingerprint: entry.certificate_fingerprint_sha256.clone(),
            profile: profile_name(entry.profile).to_owned(),
            officer: entry.officer.clone(),
            token_id: entry.token_id.clone(),
            method: entry.method.clone(),
            resources: entry.resource_names.clone(),
            code: entry.outcome_code,
            message: entry.outcome_message.clone(),
            request_sha256: hex::encode(&entry.request_sha256),
            duration_us,
        };
        EntryView {
            index: entry.index,
            // A hash of the wrong length cannot be the leaf's: keep a zero hash so the line
            // fails its check instead of vanishing from the export.
            leaf_hash: Hash::try_from(entry.leaf_hash.as_slice()).unwrap_or(Hash([0; 32])),
            leaf_input,
            time: micros_rfc3339(time_us),
            fields,
        }
    }

    /// SHA-256(0x00 ‖ leaf_input): the leaf hash the text really has.
    pub fn computed_hash(&self) -> Hash {
        leaf_hash(self.leaf_input.as_bytes())
    }

    /// Checks the line against itself: the text hashes to the stated hash, is canonical, and
    /// decodes to the printed fields and time.
    pub fn check(&self) -> Result<(), LineProblem> {
        let computed = self.computed_hash();
        if computed != self.leaf_hash {
            return Err(LineProblem::HashMismatch {
                stated: self.leaf_hash,
                computed,
            });
        }
        let canonical =
            LeafData::from_leaf_input(self.leaf_input.as_bytes()).map_err(LineProblem::NotALeaf)?;
        if let Some(field) = first_differing_field(&canonical, &self.fields) {
            return Err(LineProblem::FieldDiffers { field });
        }
        if self.time != micros_rfc3339(canonical.time_us) {
            return Err(LineProblem::FieldDiffers {
                field: "time".to_owned(),
            });
        }
        Ok(())
    }

    /// The method without the contract's package, e.g. `AdminService/IssueCertificate`.
    pub fn short_method(&self) -> &str {
        self.fields
            .method
            .strip_prefix(METHOD_PREFIX)
            .unwrap_or(&self.fields.method)
    }

    /// The outcome as its canonical code name, e.g. `OK`, `UNAUTHENTICATED`.
    pub fn outcome(&self) -> &'static str {
        code_name(Code::from_i32(self.fields.code))
    }

    /// One line for `yrd audit tail`: index, time, caller, method, outcome, trace id.
    pub fn one_line(&self) -> String {
        let f = &self.fields;
        let caller = match (f.agency.as_str(), f.profile.as_str()) {
            ("", "") => "-".to_owned(),
            (agency, "") => agency.to_owned(),
            (agency, profile) => format!("{agency}/{profile}"),
        };
        let mut line = format!(
            "#{} {} {} {} {}",
            self.index,
            self.time,
            caller,
            self.short_method(),
            self.outcome()
        );
        if !f.message.is_empty() {
            line.push_str(&format!(" {:?}", f.message));
        }
        if !f.officer.is_empty() {
            line.push_str(&format!(" officer={}", f.officer));
        }
        line.push_str(&format!(" trace={}", f.trace_id));
        line
    }
}

/// The JSON name of the first field where `a` and `b` differ, in canonical order.
fn first_differing_field(a: &LeafData, b: &LeafData) -> Option<String> {
    if a == b {
        return None;
    }
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return Some("(unreadable)".to_owned());
    };
    a.iter()
        .find(|(name, value)| b.get(name.as_str()) != Some(value))
        .map(|(name, _)| name.clone())
        .or_else(|| Some("(unknown)".to_owned()))
}

/// The profile's name as leaves record it ("" when unset).
fn profile_name(value: i32) -> &'static str {
    match pb::Profile::try_from(value) {
        Ok(pb::Profile::System) => "system",
        Ok(pb::Profile::Admin) => "admin",
        Ok(pb::Profile::Auditor) => "auditor",
        _ => "",
    }
}

/// Unix microseconds as RFC 3339 UTC with six fractional digits.
pub fn micros_rfc3339(us: i64) -> String {
    match OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000) {
        Ok(t) => {
            let base = t
                .replace_nanosecond(0)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default();
            // `2024-05-01T08:00:00Z` → `2024-05-01T08:00:00.123456Z`.
            match base.strip_suffix('Z') {
                Some(head) => format!("{head}.{:06}Z", t.microsecond()),
                None => base,
            }
        }
        Err(_) => format!("@{us}us"),
    }
}

/// Writes entries as a table (an empty listing says so).
pub fn write_table(entries: &[EntryView], out: &mut dyn Write) -> io::Result<()> {
    if entries.is_empty() {
        return writeln!(out, "no audit entries match");
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED).set_header([
        "index",
        "time (UTC)",
        "agency",
        "profile",
        "officer",
        "method",
        "outcome",
        "resources",
        "trace id",
    ]);
    for e in entries {
        let outcome = if e.fields.message.is_empty() {
            e.outcome().to_owned()
        } else {
            format!("{}: {}", e.outcome(), e.fields.message)
        };
        table.add_row([
            e.index.to_string(),
            e.time.clone(),
            e.fields.agency.clone(),
            e.fields.profile.clone(),
            e.fields.officer.clone(),
            e.short_method().to_owned(),
            outcome,
            e.fields.resources.join("\n"),
            e.fields.trace_id.clone(),
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(
        out,
        "{} entr{}",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    )
}

/// The CSV header of an export.
pub const CSV_HEADER: &str = "index,leaf_hash,time,time_us,trace_id,span_id,agency,\
cert_fingerprint,profile,officer,token_id,method,resources,code,outcome,message,request_sha256,\
duration_us,leaf_input";

/// One CSV record (RFC 4180: fields with commas, quotes or line breaks are quoted, quotes
/// doubled); resource names are joined with a space, which no AIP name contains.
pub fn csv_record(e: &EntryView) -> String {
    let f = &e.fields;
    let cells = [
        e.index.to_string(),
        e.leaf_hash.to_string(),
        e.time.clone(),
        f.time_us.to_string(),
        f.trace_id.clone(),
        f.span_id.clone(),
        f.agency.clone(),
        f.cert_fingerprint.clone(),
        f.profile.clone(),
        f.officer.clone(),
        f.token_id.clone(),
        f.method.clone(),
        f.resources.join(" "),
        f.code.to_string(),
        e.outcome().to_owned(),
        f.message.clone(),
        f.request_sha256.clone(),
        f.duration_us.to_string(),
        e.leaf_input.clone(),
    ];
    cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",")
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrd_call::timestamp;

    fn leaf() -> LeafData {
        LeafData {
            v: LEAF_VERSION,
            time_us: 1_700_000_000_123_456,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            agency: "370000-AMR".into(),
            cert_fingerprint: "ab".repeat(32),
            profile: "system".into(),
            officer: "鲁-0042".into(),
            token_id: "t-1".into(),
            method: "/yrd.exchange.v1.AdminService/ListAgencies".into(),
            resources: vec!["agencies/370000-AMR".into()],
            code: 16,
            message: "missing \"bearer\" token, please".into(),
            request_sha256: "cd".repeat(32),
            duration_us: 1_234,
        }
    }

    /// The entry the server would send for `leaf` at `index`.
    fn wire(index: u64, leaf: &LeafData) -> AuditEntry {
        AuditEntry {
            index,
            leaf_hash: leaf.leaf_hash().as_bytes().to_vec(),
            leaf_input: leaf.leaf_input(),
            time: OffsetDateTime::from_unix_timestamp_nanos(i128::from(leaf.time_us) * 1_000)
                .ok()
                .map(timestamp),
            trace_id: leaf.trace_id.clone(),
            span_id: leaf.span_id.clone(),
            caller_agency: format!("agencies/{}", leaf.agency),
            certificate_fingerprint_sha256: leaf.cert_fingerprint.clone(),
            profile: pb::Profile::System as i32,
            officer: leaf.officer.clone(),
            token_id: leaf.token_id.clone(),
            method: leaf.method.clone(),
            resource_names: leaf.resources.clone(),
            outcome_code: leaf.code,
            outcome_message: leaf.message.clone(),
            request_sha256: hex::decode(&leaf.request_sha256).expect("hex"),
            duration: Some(prost_types::Duration {
                seconds: 0,
                nanos: 1_234_000,
            }),
        }
    }

    #[test]
    fn an_honest_entry_checks_and_survives_a_json_round_trip() {
        let view = EntryView::from_pb(&wire(7, &leaf()));
        assert_eq!(view.fields, leaf());
        assert_eq!(view.time, "2023-11-14T22:13:20.123456Z");
        assert_eq!(view.check(), Ok(()));
        let line = serde_json::to_string(&view).expect("json");
        assert!(line.starts_with("{\"index\":7,\"leaf_hash\":\""), "{line}");
        let back: EntryView = serde_json::from_str(&line).expect("reads back");
        assert_eq!(back, view);
        assert_eq!(view.short_method(), "AdminService/ListAgencies");
        assert_eq!(view.outcome(), "UNAUTHENTICATED");
        assert!(view.one_line().starts_with("#7 2023-11-14T22:13:20.123456Z 370000-AMR/system AdminService/ListAgencies UNAUTHENTICATED"));
    }

    #[test]
    fn each_kind_of_alteration_is_named() {
        let honest = EntryView::from_pb(&wire(3, &leaf()));

        let mut column_edited = honest.clone();
        column_edited.fields.code = 0;
        assert_eq!(
            column_edited.check(),
            Err(LineProblem::FieldDiffers {
                field: "code".into()
            })
        );

        let mut text_edited = honest.clone();
        text_edited.leaf_input = text_edited.leaf_input.replace("\"code\":16", "\"code\":0");
        assert!(matches!(
            text_edited.check(),
            Err(LineProblem::HashMismatch { stated, .. }) if stated == honest.leaf_hash
        ));

        let mut respaced = honest.clone();
        respaced.leaf_input = respaced.leaf_input.replacen(",\"", ", \"", 1);
        respaced.leaf_hash = respaced.computed_hash();
        assert_eq!(
            respaced.check(),
            Err(LineProblem::NotALeaf(LeafError::NotCanonical))
        );

        let mut time_edited = honest.clone();
        time_edited.time = "2020-01-01T00:00:00.000000Z".into();
        assert_eq!(
            time_edited.check(),
            Err(LineProblem::FieldDiffers {
                field: "time".into()
            })
        );
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let view = EntryView::from_pb(&wire(0, &leaf()));
        let record = csv_record(&view);
        assert!(record.starts_with("0,"), "{record}");
        assert!(
            record.contains(",\"missing \"\"bearer\"\" token, please\","),
            "{record}"
        );
        assert_eq!(
            CSV_HEADER.split(',').count(),
            19,
            "the header names every cell"
        );
        assert_eq!(csv_cell("plain"), "plain");
    }
}
