//! Parsing at the edge: each request field becomes a domain value or a named violation, and
//! every violation of a request is reported at once (one `BadRequest`). Past this module the
//! handler holds `AgencyId`s, `Remark`s, dates and domain commands, never raw strings.
//!
//! Conditions that depend on the referral (dates against its clocks, the objection window, the
//! state) are the domain's to check; they answer `FAILED_PRECONDITION`, not a bad field.

use time::{Date, OffsetDateTime};
use yrd_call::{FieldErrors, from_timestamp, resource_id};
use yrd_domain::AgencyId;
use yrd_domain::referral::{Measure, Outcome, ReactionKind, ReferralRules, Remark, ReviewResult};
use yrd_domain::spotcheck::parse_date;
use yrd_proto::v1 as pb;

use crate::convert::{day_of, outcome_from_wire, reaction_kind_from_wire, review_from_wire};

/// Longest officer id, in characters (`common.proto`).
pub const MAX_OFFICER_ID_CHARS: usize = yrd_domain::text::OFFICER_ID_CHARS;
/// Most attachments on one step.
pub const MAX_ATTACHMENTS: usize = 20;
/// Longest short text (names, numbers), in characters.
pub const MAX_SHORT_CHARS: usize = yrd_domain::text::SHORT_TEXT_CHARS;

/// The readers of a disposal request's fields: each returns the parsed value and adds a
/// violation for each bad field to the request's [`FieldErrors`].
pub trait RequestFields {
    fn request_id(&mut self, value: &str) -> String;
    fn referral_id(&mut self, field: &str, name: &str) -> Option<String>;
    fn agency(&mut self, field: &str, name: &str, required: bool) -> Option<AgencyId>;
    fn remark(&mut self, field: &'static str, value: &str) -> Option<Remark>;
    fn remark_at(&mut self, field: &str, value: &str) -> Option<Remark>;
    fn optional_text(&mut self, field: &str, value: &str) -> String;
    fn short(&mut self, field: &str, value: &str) -> String;
    fn date(&mut self, field: &str, value: &str) -> Option<Date>;
    fn attachments(&mut self, prefix: &str, list: &[pb::Attachment]) -> Vec<pb::Attachment>;
    fn officers(&mut self, prefix: &str, list: &[pb::Officer]) -> Vec<pb::Officer>;
    fn requested_actions(&mut self, list: &[i32]) -> Vec<i32>;
    fn measure(
        &mut self,
        m: Option<&pb::Measure>,
        now: OffsetDateTime,
        rules: &ReferralRules,
    ) -> Option<(Measure, pb::Measure)>;
    fn objection(&mut self, o: Option<&pb::Objection>) -> Option<(Date, Date, pb::Objection)>;
    fn reinspection(
        &mut self,
        r: Option<&pb::Reinspection>,
        today: Date,
    ) -> Option<(ReviewResult, pb::Reinspection)>;
    fn closure(
        &mut self,
        c: Option<&pb::ReferralClosure>,
    ) -> Option<(Outcome, Remark, pb::ReferralClosure)>;
    fn reaction(
        &mut self,
        r: Option<&pb::Reaction>,
    ) -> Option<(ReactionKind, Remark, pb::Reaction)>;
}

impl RequestFields for FieldErrors {
    /// The client-chosen idempotency key.
    fn request_id(&mut self, value: &str) -> String {
        yrd_call::request_id(value, self)
    }

    /// The id of `referrals/{id}` in `field`.
    fn referral_id(&mut self, field: &str, name: &str) -> Option<String> {
        match resource_id(name.trim(), "referrals", field) {
            Ok(id) => Some(id.to_owned()),
            Err(v) => {
                self.push(v);
                None
            }
        }
    }

    /// The agency of `agencies/{agency}` in `field`; `None` without a violation when empty and
    /// not `required`.
    fn agency(&mut self, field: &str, name: &str, required: bool) -> Option<AgencyId> {
        let name = name.trim();
        if name.is_empty() && !required {
            return None;
        }
        let id = match resource_id(name, "agencies", field) {
            Ok(id) => id,
            Err(v) => {
                self.push(v);
                return None;
            }
        };
        match AgencyId::parse(id) {
            Ok(agency) => Some(agency),
            Err(e) => {
                self.add(field, format!("is not an agency id: {e}"));
                None
            }
        }
    }

    /// Required free text.
    fn remark(&mut self, field: &'static str, value: &str) -> Option<Remark> {
        match Remark::parse(field, value) {
            Ok(r) => Some(r),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    /// Required free text under a dynamic field path (`measure.detail`, …).
    fn remark_at(&mut self, field: &str, value: &str) -> Option<Remark> {
        match Remark::parse("text", value) {
            Ok(r) => Some(r),
            Err(_) if value.trim().is_empty() => {
                self.add(field, "is required");
                None
            }
            Err(_) => {
                self.add(
                    field,
                    format!("must be at most {} characters", Remark::MAX_CHARS),
                );
                None
            }
        }
    }

    /// Optional free text, trimmed, at most [`Remark::MAX_CHARS`].
    fn optional_text(&mut self, field: &str, value: &str) -> String {
        let value = value.trim();
        if value.chars().count() > Remark::MAX_CHARS {
            self.add(
                field,
                format!("must be at most {} characters", Remark::MAX_CHARS),
            );
        }
        value.to_owned()
    }

    /// Required short text (a name, a number), trimmed.
    fn short(&mut self, field: &str, value: &str) -> String {
        let value = value.trim();
        if value.is_empty() {
            self.add(field, "is required");
        } else if value.chars().count() > MAX_SHORT_CHARS {
            self.add(
                field,
                format!("must be at most {MAX_SHORT_CHARS} characters"),
            );
        }
        value.to_owned()
    }

    /// A required `YYYY-MM-DD` date.
    fn date(&mut self, field: &str, value: &str) -> Option<Date> {
        let value = value.trim();
        if value.is_empty() {
            self.add(field, "is required (YYYY-MM-DD)");
            return None;
        }
        match parse_date(value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.add(field, e);
                None
            }
        }
    }

    /// Attachments by digest, under `prefix` (`measure.attachments`).
    fn attachments(&mut self, prefix: &str, list: &[pb::Attachment]) -> Vec<pb::Attachment> {
        if list.len() > MAX_ATTACHMENTS {
            self.add(prefix, format!("at most {MAX_ATTACHMENTS} attachments"));
        }
        let mut out = Vec::with_capacity(list.len());
        for (i, a) in list.iter().enumerate() {
            let field = |f: &str| format!("{prefix}[{i}].{f}");
            let file_name = self.short(&field("file_name"), &a.file_name);
            if file_name.contains('/') || file_name.contains('\\') {
                self.add(
                    field("file_name"),
                    "must be a bare file name, without a path",
                );
            }
            let media_type = a.media_type.trim().to_owned();
            let shape_ok = media_type
                .split_once('/')
                .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty() && !s.contains('/'));
            if !shape_ok {
                self.add(
                    field("media_type"),
                    "must be a media type such as application/pdf",
                );
            }
            let sha256 = a.sha256.trim().to_owned();
            if sha256.len() != 64
                || !sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                self.add(
                    field("sha256"),
                    "must be 64 lower-case hexadecimal characters",
                );
            }
            if a.size_bytes == 0 {
                self.add(field("size_bytes"), "must be at least 1");
            }
            let description = self.optional_text(&field("description"), &a.description);
            out.push(pb::Attachment {
                file_name,
                media_type,
                sha256,
                size_bytes: a.size_bytes,
                description,
            });
        }
        out
    }

    /// The officers of a measure.
    fn officers(&mut self, prefix: &str, list: &[pb::Officer]) -> Vec<pb::Officer> {
        list.iter()
            .enumerate()
            .map(|(i, o)| {
                let field = format!("{prefix}[{i}].id");
                let id = o.id.trim().to_owned();
                if id.is_empty() {
                    self.add(&field, "is required");
                } else if id.chars().count() > MAX_OFFICER_ID_CHARS {
                    self.add(
                        &field,
                        format!("must be at most {MAX_OFFICER_ID_CHARS} characters"),
                    );
                }
                pb::Officer {
                    id,
                    display_name: o.display_name.trim().to_owned(),
                }
            })
            .collect()
    }

    /// The actions a referral asks for.
    fn requested_actions(&mut self, list: &[i32]) -> Vec<i32> {
        let mut out: Vec<i32> = Vec::new();
        for (i, n) in list.iter().enumerate() {
            match pb::MeasureKind::try_from(*n) {
                Ok(pb::MeasureKind::Unspecified) | Err(_) => {
                    self.add(format!("requested_actions[{i}]"), "is not a measure kind");
                }
                Ok(_) if out.contains(n) => {
                    self.add(format!("requested_actions[{i}]"), "is listed twice");
                }
                Ok(_) => out.push(*n),
            }
        }
        out
    }

    /// A measure: the domain's, and the wire one as it is stored in the timeline.
    fn measure(
        &mut self,
        m: Option<&pb::Measure>,
        now: OffsetDateTime,
        rules: &ReferralRules,
    ) -> Option<(Measure, pb::Measure)> {
        let Some(m) = m else {
            self.add("measure", "is required");
            return None;
        };
        let kind = match pb::MeasureKind::try_from(m.kind) {
            Ok(pb::MeasureKind::Unspecified) | Err(_) => {
                self.add("measure.kind", "is required: one of the MeasureKind values");
                None
            }
            Ok(k) => Some(k),
        };
        let occurred = match m.occur_time.as_ref().map(from_timestamp) {
            None => {
                self.add("measure.occur_time", "is required");
                None
            }
            Some(None) => {
                self.add("measure.occur_time", "is not a valid timestamp");
                None
            }
            Some(Some(t)) if t > now => {
                self.add("measure.occur_time", "must not lie in the future");
                None
            }
            Some(Some(t)) => Some(t),
        };
        let day = occurred.map(day_of);
        let officers = self.officers("measure.officers", &m.officers);
        let attachments = self.attachments("measure.attachments", &m.attachments);
        let detail = self.optional_text("measure.detail", &m.detail);
        let decision_number = m.decision_number.trim().to_owned();
        if decision_number.chars().count() > MAX_SHORT_CHARS {
            self.add(
                "measure.decision_number",
                format!("must be at most {MAX_SHORT_CHARS} characters"),
            );
        }
        let needs_review = matches!(
            kind,
            Some(pb::MeasureKind::Review | pb::MeasureKind::SecondReview)
        );
        let review = review_from_wire(m.review_outcome);
        if needs_review && review.is_none() {
            self.add(
                "measure.review_outcome",
                "is required for a review: CONFORMING or NON_CONFORMING",
            );
        } else if !needs_review && m.review_outcome != 0 {
            self.add("measure.review_outcome", "is only set for a review");
        }
        let deadline_allowed = matches!(
            kind,
            Some(pb::MeasureKind::OrderRectification | pb::MeasureKind::SuspendBusiness)
        );
        let deadline = if m.deadline.trim().is_empty() {
            None
        } else if !deadline_allowed {
            self.add(
                "measure.deadline",
                "is only set for ORDER_RECTIFICATION and SUSPEND_BUSINESS",
            );
            None
        } else {
            self.date("measure.deadline", &m.deadline)
        };
        if let (Some(pb::MeasureKind::OrderRectification), Some(due), Some(day)) =
            (kind, deadline, day)
        {
            let latest = rules
                .calendar
                .calendar_deadline(day, yrd_domain::referral::CORRECTION_DAYS)
                .unwrap_or(day);
            if due < day || due > latest {
                self.add(
                    "measure.deadline",
                    format!("must lie between the order ({day}) and {latest} (60 days, art. 46)"),
                );
            }
        }
        let number = |v: &mut Self| {
            if decision_number.is_empty() {
                v.add("measure.decision_number", "is required for this measure");
                None
            } else {
                Remark::parse("decision_number", &decision_number).ok()
            }
        };
        let measure = match kind? {
            pb::MeasureKind::Unspecified => return None,
            pb::MeasureKind::SealOrSeize => Some(Measure::SealOrSeize),
            pb::MeasureKind::StopSales => Some(Measure::StopSales),
            pb::MeasureKind::DelistOnline => Some(Measure::DelistOnline),
            pb::MeasureKind::StopProduction => Some(Measure::StopProduction),
            pb::MeasureKind::ClearStock => Some(Measure::ClearStock),
            pb::MeasureKind::Recall => Some(Measure::Recall),
            pb::MeasureKind::OrderRectification => {
                day.map(|ordered_on| Measure::OrderRectification { ordered_on })
            }
            pb::MeasureKind::Review => {
                day.zip(review)
                    .map(|(reviewed_on, result)| Measure::Review {
                        result,
                        reviewed_on,
                    })
            }
            pb::MeasureKind::CaseFiled => number(self).map(|_| Measure::CaseFiled),
            pb::MeasureKind::AdministrativePenalty => number(self)
                .map(|decision_number| Measure::AdministrativePenalty { decision_number }),
            pb::MeasureKind::TransferToJudicial => Some(Measure::TransferToJudicial),
            pb::MeasureKind::PublicAnnouncement => {
                day.map(|announced_on| Measure::PublicAnnouncement { announced_on })
            }
            pb::MeasureKind::SecondReview => {
                day.zip(review)
                    .map(|(reviewed_on, result)| Measure::SecondReview {
                        result,
                        reviewed_on,
                    })
            }
            pb::MeasureKind::SuspendBusiness => Some(Measure::SuspendBusiness),
            pb::MeasureKind::RevokeBusinessLicence => Some(Measure::RevokeBusinessLicence),
            pb::MeasureKind::Other => self
                .remark_at("measure.detail", &detail)
                .map(|description| Measure::Other { description }),
        };
        let wire = pb::Measure {
            kind: m.kind,
            occur_time: m.occur_time,
            officers,
            detail,
            decision_number,
            deadline: deadline
                .map(yrd_domain::spotcheck::format_date)
                .unwrap_or_default(),
            review_outcome: m.review_outcome,
            attachments,
        };
        measure.map(|measure| (measure, wire))
    }

    /// An objection: the producer's receipt of the result, the filing day, and the wire
    /// objection.
    fn objection(&mut self, o: Option<&pb::Objection>) -> Option<(Date, Date, pb::Objection)> {
        let Some(o) = o else {
            self.add("objection", "is required");
            return None;
        };
        let party_name = self.short("objection.party_name", &o.party_name);
        let received_result = self.date("objection.result_received_date", &o.result_received_date);
        let filed = self.date("objection.received_date", &o.received_date);
        let grounds = self.remark_at("objection.grounds", &o.grounds);
        let attachments = self.attachments("objection.attachments", &o.attachments);
        let (received_result, filed, grounds) = (received_result?, filed?, grounds?);
        Some((
            received_result,
            filed,
            pb::Objection {
                party_name,
                result_received_date: yrd_domain::spotcheck::format_date(received_result),
                received_date: yrd_domain::spotcheck::format_date(filed),
                grounds: grounds.to_string(),
                attachments,
            },
        ))
    }

    /// A re-inspection outcome; its report may not be dated after `today`.
    fn reinspection(
        &mut self,
        r: Option<&pb::Reinspection>,
        today: Date,
    ) -> Option<(ReviewResult, pb::Reinspection)> {
        let Some(r) = r else {
            self.add("reinspection", "is required");
            return None;
        };
        let outcome = review_from_wire(r.outcome);
        if outcome.is_none() {
            self.add(
                "reinspection.outcome",
                "is required: CONFORMING or NON_CONFORMING",
            );
        }
        let inspection_body = self.short("reinspection.inspection_body", &r.inspection_body);
        let report_number = self.short("reinspection.report_number", &r.report_number);
        let report_date = self.date("reinspection.report_date", &r.report_date);
        if let Some(d) = report_date {
            if d > today {
                self.add("reinspection.report_date", "must not lie in the future");
            }
        }
        let detail = self.optional_text("reinspection.detail", &r.detail);
        let attachments = self.attachments("reinspection.attachments", &r.attachments);
        let (outcome, report_date) = (outcome?, report_date?);
        Some((
            outcome,
            pb::Reinspection {
                outcome: r.outcome,
                inspection_body,
                report_number,
                report_date: yrd_domain::spotcheck::format_date(report_date),
                detail,
                attachments,
            },
        ))
    }

    /// A closure.
    fn closure(
        &mut self,
        c: Option<&pb::ReferralClosure>,
    ) -> Option<(Outcome, Remark, pb::ReferralClosure)> {
        let Some(c) = c else {
            self.add("closure", "is required");
            return None;
        };
        let outcome = outcome_from_wire(c.outcome);
        if outcome.is_none() {
            self.add(
                "closure.outcome",
                "is required: one of the ReferralOutcome values",
            );
        }
        let summary = self.remark_at("closure.summary", &c.summary);
        let (outcome, summary) = (outcome?, summary?);
        Some((
            outcome,
            summary.clone(),
            pb::ReferralClosure {
                outcome: c.outcome,
                summary: summary.to_string(),
            },
        ))
    }

    /// A reaction; its output-only fields are ignored.
    fn reaction(
        &mut self,
        r: Option<&pb::Reaction>,
    ) -> Option<(ReactionKind, Remark, pb::Reaction)> {
        let Some(r) = r else {
            self.add("reaction", "is required");
            return None;
        };
        let kind = reaction_kind_from_wire(r.kind);
        if kind.is_none() {
            self.add(
                "reaction.kind",
                "is required: one of the ReactionKind values",
            );
        }
        let text = self.remark_at("reaction.text", &r.text);
        let attachments = self.attachments("reaction.attachments", &r.attachments);
        let (kind, text) = (kind?, text?);
        Some((
            kind,
            text.clone(),
            pb::Reaction {
                kind: r.kind,
                text: text.to_string(),
                attachments,
                ..Default::default()
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn fields(v: &FieldErrors) -> Vec<&str> {
        v.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn a_measure_names_each_bad_field() {
        let now = datetime!(2024-06-01 10:00 +8);
        let mut v = FieldErrors::new();
        let m = pb::Measure {
            kind: pb::MeasureKind::Review as i32,
            occur_time: Some(yrd_call::timestamp(now + time::Duration::days(1))),
            officers: vec![pb::Officer::default()],
            deadline: "2024-07-01".into(),
            attachments: vec![pb::Attachment::default()],
            ..Default::default()
        };
        assert!(
            v.measure(Some(&m), now, &ReferralRules::default())
                .is_none()
        );
        let got = fields(&v);
        for f in [
            "measure.occur_time",
            "measure.officers[0].id",
            "measure.review_outcome",
            "measure.deadline",
            "measure.attachments[0].file_name",
            "measure.attachments[0].media_type",
            "measure.attachments[0].sha256",
            "measure.attachments[0].size_bytes",
        ] {
            assert!(got.contains(&f), "{f} missing from {got:?}");
        }
    }

    #[test]
    fn a_rectification_deadline_is_at_most_60_days() {
        let now = datetime!(2024-03-04 10:00 +8);
        let order = |deadline: &str| pb::Measure {
            kind: pb::MeasureKind::OrderRectification as i32,
            occur_time: Some(yrd_call::timestamp(now)),
            deadline: deadline.into(),
            ..Default::default()
        };
        let mut v = FieldErrors::new();
        assert!(
            v.measure(Some(&order("2024-04-03")), now, &ReferralRules::default())
                .is_some()
        );
        assert!(v.is_empty());
        // 10 May is 67 days after the order: refused (the handler answers every violation).
        v.measure(Some(&order("2024-05-10")), now, &ReferralRules::default());
        assert_eq!(fields(&v), ["measure.deadline"]);
    }
}
