//! `yrd feed tail`: the agency's feed in a terminal, one line per event (or one JSON object per
//! line), on [`FeedConsumer`].
//!
//! # Delivery
//!
//! At least once, as `yrd-client` documents it: an event is printed (and standard output
//! flushed) before its cursor is stored, and acknowledged to the exchange after that. When the
//! exchange restarts or the connection drops, the tail reconnects by itself and resumes after
//! the stored cursor, so nothing is lost and nothing is printed twice. Only an event printed
//! just before the tail itself was killed, before its cursor reached the cursor file, is
//! printed again by the next run; a script deduplicates by `event_id`.
//!
//! With `--cursor-file` the cursor is kept in that file (written atomically) and the next run
//! resumes after it. Without it, the tail resumes after the agency's acknowledged position at
//! the exchange, which it moves forward as it prints (`--ack-every`), so another consumer of
//! the same agency shares that position.

use std::io::Write;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;
use yrd_call::from_timestamp;
use yrd_client::feed::{CursorStore, FeedConsumer, FileCursorStore, MemoryCursorStore};
use yrd_proto::v1::{self as pb, feed_event::Resource};

use crate::cli::desk::command::{FeedCommand, FeedTailArgs};
use crate::cli::desk::format::{agency, application_state, cst, referral_state, word};
use crate::cli::desk::{DeskError, system_session};

/// Runs one `yrd feed` subcommand, writing the events to `out`. `shutdown` stops a tail
/// between two events (the binary passes Ctrl-C and SIGTERM).
pub async fn run(
    command: FeedCommand,
    out: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()>,
) -> Result<(), DeskError> {
    match command {
        FeedCommand::Tail(args) => tail(args, out, shutdown).await,
    }
}

async fn tail(
    args: FeedTailArgs,
    out: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()>,
) -> Result<(), DeskError> {
    let session = system_session(&args.connect).await?;
    match &args.cursor_file {
        Some(path) => {
            let store = FileCursorStore::new(path);
            consume(&args, session.client().clone(), store, out, shutdown).await
        }
        None => {
            let store = MemoryCursorStore::default();
            consume(&args, session.client().clone(), store, out, shutdown).await
        }
    }
}

async fn consume<S: CursorStore>(
    args: &FeedTailArgs,
    client: yrd_client::Client,
    store: S,
    out: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()>,
) -> Result<(), DeskError> {
    if args.from_start {
        // After cursor 0: the feed's first event is cursor 1.
        store
            .save(0)
            .await
            .map_err(|e| DeskError::Feed(e.to_string()))?;
    }
    let consumer = FeedConsumer::new(client, store).ack_every(args.ack_every);
    let enough = CancellationToken::new();
    let mut printed = 0u64;
    let limit = args.limit;
    let json = args.json;
    let stop = {
        let enough = enough.clone();
        async move {
            tokio::select! {
                () = shutdown => {}
                () = enough.cancelled() => {}
            }
        }
    };
    if limit == Some(0) {
        return Ok(());
    }
    consumer
        .run(
            |event| {
                let written = print_event(&event, json, out);
                printed += 1;
                if limit.is_some_and(|n| printed >= n) {
                    enough.cancel();
                }
                async move { written }
            },
            stop,
        )
        .await
        .map_err(|e| DeskError::Feed(e.to_string()))
}

/// Prints one event and flushes, so that it is out before its cursor is stored.
fn print_event(
    event: &pb::FeedEvent,
    json: bool,
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    if json {
        let view = EventView::new(event);
        serde_json::to_writer(&mut *out, &view)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", event_line(event))?;
    }
    out.flush()
}

/// One event on one line: time (CST), cursor, kind, resource, who caused it, what it says.
pub fn event_line(event: &pb::FeedEvent) -> String {
    let actor = match event.actor_agency.as_str() {
        "" => "the exchange",
        a => agency(a),
    };
    format!(
        "{}  #{:<5} {:<32} {} v{}  by {}  {}",
        cst(event.event_time.as_ref()),
        event.cursor,
        kind(event),
        event.resource_name,
        event.resource_version,
        actor,
        summary(event)
    )
}

/// The event type as a word, with the step kind for step events
/// (`referral-updated/measure-recorded`).
fn kind(event: &pb::FeedEvent) -> String {
    let mut kind = word(event.event_type().as_str_name(), "EVENT_TYPE_");
    if event.referral_step_kind != 0 {
        kind.push('/');
        kind.push_str(&word(
            event.referral_step_kind().as_str_name(),
            "REFERRAL_STEP_KIND_",
        ));
    }
    if event.application_step_kind != 0 {
        kind.push('/');
        kind.push_str(&word(
            event.application_step_kind().as_str_name(),
            "APPLICATION_STEP_KIND_",
        ));
    }
    kind
}

/// What the resource the event carries says, in a few words.
fn summary(event: &pb::FeedEvent) -> String {
    match &event.resource {
        Some(Resource::Result(r)) => {
            let product = r.product.as_ref().map(|p| p.name.as_str()).unwrap_or("");
            let verdict = word(r.verdict().as_str_name(), "VERDICT_");
            let disposal = if event.needs_disposal {
                ", needs disposal here"
            } else {
                ""
            };
            format!("{product} {verdict}{disposal}")
        }
        Some(Resource::Referral(r)) => format!(
            "{} {} → {}, {}",
            r.product_name,
            agency(&r.sampling_agency),
            agency(&r.handling_agency),
            referral_state(r.state)
        ),
        Some(Resource::Application(a)) => format!(
            "{} {}",
            a.applicant.as_ref().map(|e| e.name.as_str()).unwrap_or(""),
            application_state(a.state)
        ),
        Some(Resource::Licence(l)) => format!(
            "{} {}",
            l.number,
            l.holder.as_ref().map(|e| e.name.as_str()).unwrap_or("")
        ),
        Some(Resource::Case(c)) => format!(
            "{} {}: {} result(s), {} agencies",
            c.producer_uscc,
            c.model,
            c.results.len(),
            c.agencies.len()
        ),
        None => String::new(),
    }
}

/// An event as `--json` prints it, one object per line.
#[derive(Debug, Serialize)]
pub struct EventView {
    /// Its position in the agency's feed.
    pub cursor: u64,
    /// The same on every redelivery: deduplicate by it.
    pub event_id: String,
    /// e.g. `referral-updated/measure-recorded`.
    pub kind: String,
    /// The contract's event type, e.g. `EVENT_TYPE_REFERRAL_UPDATED`.
    pub event_type: String,
    /// e.g. `referrals/{id}`.
    pub resource_name: String,
    /// The resource's version after the change.
    pub resource_version: u32,
    /// RFC 3339, UTC.
    pub event_time: Option<String>,
    /// The agency whose call caused it; empty for the exchange's own.
    pub actor_agency: String,
    /// W3C trace id of that call.
    pub trace_id: String,
    /// For results: disposal is needed in the receiving agency's area.
    pub needs_disposal: bool,
    /// What the resource says, as the readable line shows it.
    pub summary: String,
}

impl EventView {
    /// The view of an event the exchange streamed.
    pub fn new(event: &pb::FeedEvent) -> Self {
        EventView {
            cursor: event.cursor,
            event_id: event.event_id.clone(),
            kind: kind(event),
            event_type: event.event_type().as_str_name().to_owned(),
            resource_name: event.resource_name.clone(),
            resource_version: event.resource_version,
            event_time: event
                .event_time
                .as_ref()
                .and_then(from_timestamp)
                .and_then(|t| t.format(&Rfc3339).ok()),
            actor_agency: agency(&event.actor_agency).to_owned(),
            trace_id: event.trace_id.clone(),
            needs_disposal: event.needs_disposal,
            summary: summary(event),
        }
    }
}
