-- One trace per case (docs/cases.md, "One trace per case"): the span id of the call that
-- formed the case, beside its trace id, so that every later call about the case can carry an
-- OpenTelemetry span link to that span. Cases formed before have none ('') and are not linked.
ALTER TABLE cases ADD COLUMN span_id TEXT NOT NULL DEFAULT '';
