//! The referrals and licence applications after a restart: each acknowledged step is in its
//! timeline exactly once and nothing else is, and the state, deadlines and feed events are
//! those the domain's machines (`yrd_domain::referral::apply`, `yrd_domain::licensing::apply`)
//! derive when every timeline entry is replayed through them at the time it was recorded. The
//! wire fields follow from the replayed machine by the services' own projections
//! (`yrd_disposal::convert::refresh`, `yrd_licensing::view::refresh`), so a stored referral
//! whose state or deadlines disagree with its own timeline fails here.
//!
//! The server runs with the default rules (weekends-only calendar, the statutory limits), as
//! `yrd_bench::server::YrdServer` starts it; the replay uses the same defaults.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, bail, ensure};
use time::OffsetDateTime;
use yrd_bench::connect::{AGENCIES, Authed, failure};
use yrd_call::{FieldErrors, from_timestamp};
use yrd_client::list_all;
use yrd_disposal::convert;
use yrd_disposal::parse::RequestFields as _;
use yrd_domain::AgencyId;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_domain::licensing::{self, Application, LicensingCommand, Route, Submission};
use yrd_domain::referral::{self, Actor, Referral, ReferralCommand, ReferralRules, Remark};
use yrd_licensing::LicensingConfig;
use yrd_proto::v1 as pb;
use yrd_proto::v1::disposal_service_client::DisposalServiceClient;
use yrd_proto::v1::licensing_service_client::LicensingServiceClient;

use crate::ledger::{Ledger, Request};
use crate::steps::{PILOT, ReferralRequest, ReferralStep};

/// Feed events every agency (index into [`AGENCIES`]) must hold exactly once: resource name,
/// version (a result's version, a referral's timeline entry, an application's history entry)
/// and, for a reaction (which adds no timeline entry), its sequence number (0 otherwise).
pub(crate) type Expected = Vec<BTreeSet<(String, u32, u32)>>;

/// What the machines' check covered.
#[derive(Debug, Default)]
pub(crate) struct Machines {
    pub(crate) referrals: usize,
    /// Referrals a correction opened (the result's earlier ones were closed).
    pub(crate) reopened: usize,
    pub(crate) applications: usize,
    /// Timeline and history entries replayed.
    pub(crate) entries: usize,
    /// Reactions replayed.
    pub(crate) reactions: usize,
}

/// Checks every referral and application of the run against the ledger and the domain, and
/// adds the feed events their timelines must have raised to `expected`.
pub(crate) async fn check_machines(
    clients: &[Authed],
    ledger: &Ledger,
    expected: &mut Expected,
) -> anyhow::Result<Machines> {
    let mut report = Machines::default();
    // The acknowledged referral and licensing steps, by the referral or application they made.
    let mut referral_steps: BTreeMap<String, Vec<&Request>> = BTreeMap::new();
    let mut application_steps: BTreeMap<String, Vec<&Request>> = BTreeMap::new();
    for a in &ledger.attempts {
        let acked = a
            .acked
            .as_ref()
            .with_context(|| format!("{} is still unanswered", a.request.id()))?;
        match &a.request {
            Request::Publish(_) | Request::Correct(_) => {
                for name in &acked.opened {
                    referral_steps.entry(name.clone()).or_default();
                }
            }
            Request::Referral(_) => referral_steps
                .entry(acked.name.clone())
                .or_default()
                .push(&a.request),
            Request::Licensing(_) => application_steps
                .entry(acked.name.clone())
                .or_default()
                .push(&a.request),
        }
    }

    let listed = list_referrals(clients).await?;
    let unexpected: Vec<&String> = listed
        .iter()
        .filter(|n| !referral_steps.contains_key(*n))
        .collect();
    let missing: Vec<&String> = referral_steps
        .keys()
        .filter(|n| !listed.contains(*n))
        .collect();
    if !(unexpected.is_empty() && missing.is_empty()) {
        let mut described = Vec::new();
        for name in &unexpected {
            let r = get_referral(&clients[0], name).await?;
            let first = r
                .timeline
                .first()
                .map(|s| s.note.clone())
                .unwrap_or_default();
            described.push(format!(
                "{name} ({}, about {} version {}, opened with note {first:?}, {} entries)",
                pb::ReferralOrigin::try_from(r.origin)
                    .unwrap_or_default()
                    .as_str_name(),
                r.result,
                r.result_version,
                r.timeline.len()
            ));
        }
        bail!(
            "the exchange lists {} referrals for {} acknowledged openings: not acknowledged \
             {described:?}, missing {missing:?}",
            listed.len(),
            referral_steps.len()
        );
    }
    let rules = ReferralRules::default();
    for (name, steps) in &referral_steps {
        let r = get_referral(&clients[0], name).await?;
        let entries: Vec<(&str, bool)> = r
            .timeline
            .iter()
            .map(|s| (entry_text(s), s.kind == pb::ReferralStepKind::Closed as i32))
            .collect();
        let (reactions, steps): (Vec<&Request>, Vec<&Request>) =
            steps.iter().partition(|s| is_reaction(s));
        once_each(name, &entries, &steps)?;
        let texts: Vec<(&str, bool)> = r
            .reactions
            .iter()
            .map(|x| (x.text.as_str(), false))
            .collect();
        for step in &reactions {
            let found = texts.iter().filter(|(t, _)| records(t, step.id())).count();
            ensure!(
                found == 1,
                "{name}: the acknowledged reaction {} is in its reactions {found} times",
                step.id()
            );
        }
        ensure!(
            reactions.len() == r.reactions.len(),
            "{name}: {} acknowledged reactions, {} stored",
            reactions.len(),
            r.reactions.len()
        );
        report.reactions += r.reactions.len();
        report.entries += replay_referral(&r, &rules, expected)
            .with_context(|| format!("replaying {name} through yrd_domain::referral"))?;
        report.referrals += 1;
        let automatic = r.origin == pb::ReferralOrigin::Automatic as i32;
        report.reopened += usize::from(automatic && r.result_version > 1);
    }

    let listed = list_applications(clients, "").await?;
    let submitted: BTreeSet<&String> = application_steps.keys().collect();
    let found: BTreeSet<&String> = listed.iter().collect();
    ensure!(
        listed.len() == found.len() && submitted == found,
        "the pilot agencies list {} applications ({} distinct) for {} acknowledged \
         submissions: not acknowledged {:?}, missing {:?}",
        listed.len(),
        found.len(),
        submitted.len(),
        found.difference(&submitted).collect::<Vec<_>>(),
        submitted.difference(&found).collect::<Vec<_>>()
    );
    let settings = LicensingConfig::default()
        .build()
        .map_err(|e| anyhow::anyhow!("the default licensing settings: {e:?}"))?;
    for (name, steps) in &application_steps {
        let app = get_application(&clients[PILOT[0]], name).await?;
        let entries: Vec<(&str, bool)> = app
            .history
            .iter()
            .map(|s| (s.note.as_str(), false))
            .collect();
        once_each(name, &entries, steps)?;
        report.entries += replay_application(&app, &settings, expected)
            .with_context(|| format!("replaying {name} through yrd_domain::licensing"))?;
        report.applications += 1;
    }
    Ok(report)
}

/// Every acknowledged step of a referral or application is in its timeline once (found by its
/// note, the request id; a closure, whose request has no note, as the one `CLOSED` entry), and
/// every entry after the first (the opening or submission, whose uniqueness the listing
/// checks) is an acknowledged step. `entries`: each entry's note, and whether it is a closure.
fn once_each(name: &str, entries: &[(&str, bool)], steps: &[&Request]) -> anyhow::Result<()> {
    let mut known: BTreeSet<&str> = BTreeSet::new();
    let mut closures = 0;
    for step in steps {
        let id = step.id();
        if matches!(step, Request::Referral(c) if c.step == ReferralStep::Closed) {
            closures += 1;
            continue;
        }
        known.insert(id);
        if matches!(step, Request::Licensing(c) if c.submitted_uscc().is_some()) {
            continue;
        }
        let found = entries.iter().filter(|(n, _)| records(n, id)).count();
        // A return naming the competent agency is rerouted at once: two entries.
        let due = match step {
            Request::Referral(c) => match &c.request {
                ReferralRequest::Return(r) if !r.suggested_agency.is_empty() => 2,
                _ => 1,
            },
            _ => 1,
        };
        ensure!(
            found == due,
            "{name}: the acknowledged step {id} is in its timeline {found} times, not {due}"
        );
    }
    let closed = entries.iter().filter(|(_, c)| *c).count();
    ensure!(
        closures == closed && closures <= 1,
        "{name}: {closures} acknowledged closures, {closed} CLOSED entries in the timeline"
    );
    for (i, (note, is_closure)) in entries.iter().enumerate().skip(1) {
        ensure!(
            *is_closure || known.iter().any(|id| records(note, id)),
            "{name}: timeline entry {} ({note:?}) is no acknowledged step",
            i + 1
        );
    }
    Ok(())
}

/// What of a timeline entry names the request that made it: the note, or for a return or a
/// reroute (whose requests have no note) the reason.
fn entry_text(step: &pb::ReferralStep) -> &str {
    use pb::referral_step::Detail;
    match &step.detail {
        Some(Detail::Returned(x)) => &x.reason,
        Some(Detail::Reroute(x)) => &x.reason,
        _ => &step.note,
    }
}

/// Whether a referral step is a reaction (kept beside the timeline, not in it).
fn is_reaction(step: &Request) -> bool {
    matches!(step, Request::Referral(c) if matches!(c.request, ReferralRequest::Reaction(_)))
}

/// Whether a timeline entry's note records request `id`: the load sends the request id as the
/// note, which the exchange keeps as it is or after its own text (an acceptance: `受理通知书
/// {number}; {note}`). No request id ends with another (each starts `CRASH-{seed}-i`).
pub(crate) fn records(note: &str, id: &str) -> bool {
    note.ends_with(id)
}

/// The agency of `agencies/{id}`.
fn agency(name: &str) -> anyhow::Result<AgencyId> {
    let id = name.strip_prefix("agencies/").unwrap_or(name);
    AgencyId::parse(id).map_err(|e| anyhow::anyhow!("agency {name:?}: {e}"))
}

fn time_of(t: Option<&prost_types::Timestamp>, what: &str) -> anyhow::Result<OffsetDateTime> {
    t.and_then(from_timestamp)
        .with_context(|| format!("{what} has no valid time"))
}

/// Replays the referral's timeline through `yrd_domain::referral`, from its opening, each
/// entry at its recorded time: every step must be legal, every entry the event the machine
/// raises, and the referral's state and deadlines those of the replayed machine. Adds the feed
/// events each step raised, per agency told, to `expected`; answers the entries replayed.
fn replay_referral(
    r: &pb::Referral,
    rules: &ReferralRules,
    expected: &mut Expected,
) -> anyhow::Result<usize> {
    let first = r.timeline.first().context("an empty timeline")?;
    ensure!(
        first.kind == pb::ReferralStepKind::Opened as i32,
        "the timeline starts with {:?}, not OPENED",
        first.kind
    );
    let opened_at = time_of(first.time.as_ref(), "entry 1")?;
    // Opened to the agency the first reroute left, if it was rerouted.
    let first_handler = r
        .timeline
        .iter()
        .find_map(|s| match &s.detail {
            Some(pb::referral_step::Detail::Reroute(x)) => Some(x.from_agency.as_str()),
            _ => None,
        })
        .unwrap_or(&r.handling_agency);
    let t = Referral::open(
        agency(&r.sampling_agency)?,
        agency(first_handler)?,
        opened_at,
        rules,
    )
    .map_err(|e| anyhow::anyhow!("opening: {e}"))?;
    let mut machine = t.new_state;
    let mut last_at = opened_at;
    let mut at = 0;
    let mut events = t.events;
    let mut reactions = r.reactions.iter().peekable();
    loop {
        for event in &events {
            let entry = r.timeline.get(at).with_context(|| {
                format!("the machine raised {:?} past the timeline", event.kind)
            })?;
            ensure!(
                entry.kind == convert::step_kind(&event.kind) as i32,
                "entry {} is {:?}, the machine raised {:?}",
                entry.seq,
                entry.kind,
                event.kind
            );
            tell(expected, &event.notify, (&r.name, entry.seq, 0))?;
            at += 1;
        }
        let next = r.timeline.get(at);
        let next_at = match next {
            Some(e) => Some(time_of(e.time.as_ref(), &format!("entry {}", e.seq))?),
            None => None,
        };
        // The reactions added before the next entry (after the last, once none is left).
        while let Some(x) = reactions.peek().copied() {
            let x_at = time_of(x.create_time.as_ref(), &format!("reaction {}", x.seq))?;
            if next_at.is_some_and(|n| x_at >= n) {
                break;
            }
            reactions.next();
            last_at = x_at;
            let command = ReferralCommand::AddReaction {
                kind: convert::reaction_kind_from_wire(x.kind)
                    .with_context(|| format!("reaction {}: kind {}", x.seq, x.kind))?,
                text: Remark::parse("text", &x.text)
                    .map_err(|e| anyhow::anyhow!("reaction {}: {e}", x.seq))?,
            };
            let actor = Actor::Agency(agency(&x.agency)?);
            let t = referral::apply(&machine, &command, &actor, last_at, rules)
                .map_err(|e| anyhow::anyhow!("reaction {} is not a legal step: {e}", x.seq))?;
            let version = u32::try_from(at).unwrap_or(u32::MAX);
            for event in &t.events {
                tell(expected, &event.notify, (&r.name, version, x.seq))?;
            }
            machine = t.new_state;
        }
        let (Some(entry), Some(entry_at)) = (next, next_at) else {
            break;
        };
        last_at = entry_at;
        let command = referral_command(entry, last_at, rules)?;
        let actor = Actor::Agency(agency(&entry.agency)?);
        let t = referral::apply(&machine, &command, &actor, last_at, rules).map_err(|e| {
            anyhow::anyhow!(
                "entry {} ({}) is not a legal step: {e}",
                entry.seq,
                command.name()
            )
        })?;
        // A step of several entries (a return rerouted at once) leaves its state on the last.
        let last = r
            .timeline
            .get(at + t.events.len().max(1) - 1)
            .unwrap_or(entry);
        ensure!(
            last.state_after == convert::state(&t.new_state.state) as i32,
            "entry {} left the referral in state {:?}, the machine in {}",
            last.seq,
            last.state_after,
            t.new_state.state
        );
        machine = t.new_state;
        events = t.events;
    }
    let mut derived = r.clone();
    convert::refresh(&mut derived, &machine, last_at);
    convert::refresh_deadlines(&mut derived, &machine, SystemClock.now());
    let fields = |r: &pb::Referral| {
        format!(
            "state {:?}, handling {}, deadlines {:?}, next {:?}, correction {:?}, review {:?}, \
             paused {}, overdue {}, announcement {}, second review {:?}, outcome {:?}",
            r.state,
            r.handling_agency,
            r.deadlines,
            r.next_deadline,
            r.rectification_deadline,
            r.review_deadline,
            r.clock_paused,
            r.overdue,
            r.announcement_required,
            r.second_review_window,
            r.outcome
        )
    };
    ensure!(
        fields(&derived) == fields(r),
        "the stored referral has {}, its replayed timeline gives {}",
        fields(r),
        fields(&derived)
    );
    Ok(r.timeline.len())
}

/// The date of a step's detail, `YYYY-MM-DD`.
fn date_of(entry: &pb::ReferralStep, field: &str, value: &str) -> anyhow::Result<time::Date> {
    yrd_domain::spotcheck::parse_date(value)
        .map_err(|e| anyhow::anyhow!("entry {}: {field}: {e}", entry.seq))
}

/// The command a timeline entry records (only the steps the load takes).
fn referral_command(
    entry: &pb::ReferralStep,
    at: OffsetDateTime,
    rules: &ReferralRules,
) -> anyhow::Result<ReferralCommand> {
    use pb::referral_step::Detail;
    let kind = pb::ReferralStepKind::try_from(entry.kind).unwrap_or_default();
    Ok(match (kind, &entry.detail) {
        (pb::ReferralStepKind::Acknowledged, _) => ReferralCommand::Acknowledge,
        (pb::ReferralStepKind::HandlingStarted, _) => ReferralCommand::StartHandling,
        (pb::ReferralStepKind::MeasureRecorded, Some(Detail::Measure(m))) => {
            let mut errors = FieldErrors::new();
            let (measure, _) = errors
                .measure(Some(m), at, rules)
                .with_context(|| format!("entry {}: its measure: {errors:?}", entry.seq))?;
            ReferralCommand::RecordMeasure(measure)
        }
        (pb::ReferralStepKind::Closed, Some(Detail::Closure(c))) => ReferralCommand::Close {
            outcome: convert::outcome_from_wire(c.outcome)
                .with_context(|| format!("entry {}: outcome {}", entry.seq, c.outcome))?,
            summary: Remark::parse("summary", &c.summary)
                .map_err(|e| anyhow::anyhow!("entry {}: {e}", entry.seq))?,
        },
        (pb::ReferralStepKind::ObjectionFiled, Some(Detail::Objection(o))) => {
            ReferralCommand::FileObjection {
                result_received_on: date_of(
                    entry,
                    "result_received_date",
                    &o.result_received_date,
                )?,
                filed_on: date_of(entry, "received_date", &o.received_date)?,
            }
        }
        (pb::ReferralStepKind::ReinspectionRecorded, Some(Detail::Reinspection(x))) => {
            ReferralCommand::RecordReinspection {
                result: convert::review_from_wire(x.outcome)
                    .with_context(|| format!("entry {}: outcome {}", entry.seq, x.outcome))?,
            }
        }
        (pb::ReferralStepKind::Returned, Some(Detail::Returned(x))) => ReferralCommand::Return {
            reason: Remark::parse("reason", &x.reason)
                .map_err(|e| anyhow::anyhow!("entry {}: {e}", entry.seq))?,
            suggested_agency: match x.suggested_agency.as_str() {
                "" => None,
                a => Some(agency(a)?),
            },
        },
        (pb::ReferralStepKind::Rerouted, Some(Detail::Reroute(x))) => ReferralCommand::Reroute {
            to: agency(&x.to_agency)?,
        },
        (kind, _) => bail!(
            "entry {} is a {} the load never takes",
            entry.seq,
            kind.as_str_name()
        ),
    })
}

/// Adds one expected event per agency told: about `name`, `version`, reaction `reaction`.
fn tell(
    expected: &mut Expected,
    notify: &[AgencyId],
    (name, version, reaction): (&str, u32, u32),
) -> anyhow::Result<()> {
    for a in notify {
        let at = AGENCIES
            .iter()
            .position(|(id, _)| *id == a.as_str())
            .with_context(|| format!("{a} is told of {name}, but is none of the run's agencies"))?;
        expected[at].insert((name.to_owned(), version, reaction));
    }
    Ok(())
}

/// Replays an application's history through `yrd_domain::licensing` as
/// [`replay_referral`] does a referral's timeline.
fn replay_application(
    app: &pb::LicenceApplication,
    settings: &yrd_licensing::LicensingSettings,
    expected: &mut Expected,
) -> anyhow::Result<usize> {
    let rules = &settings.rules;
    let first = app.history.first().context("an empty history")?;
    let submitted_at = time_of(first.time.as_ref(), "entry 1")?;
    let applicant = app.applicant.clone().unwrap_or_default();
    let code = app
        .product
        .as_ref()
        .map(|p| p.catalogue_code.clone())
        .unwrap_or_default();
    let product = settings
        .catalogue
        .0
        .get(&code)
        .with_context(|| format!("catalogue product {code:?}"))?;
    let holder = licensing::Holder {
        name: Remark::parse("name", &applicant.name).map_err(anyhow::Error::msg)?,
        address: Remark::parse("address", &applicant.production_address)
            .map_err(anyhow::Error::msg)?,
    };
    let submission = Submission::new(product.entry.clone(), Route::Ordinary, holder)
        .map_err(|e| anyhow::anyhow!("the submission: {e}"))?;
    let t = Application::submit(
        submission,
        &agency(&app.accepting_agency)?,
        agency(&app.issuing_agency)?,
        submitted_at,
        rules,
    )
    .map_err(|e| anyhow::anyhow!("submitting: {e}"))?;
    tell(expected, &recipients(&t.events), (&app.name, first.seq, 0))?;
    let mut machine = t.new_state;
    let mut last_at = submitted_at;
    for entry in &app.history[1..] {
        last_at = time_of(entry.time.as_ref(), &format!("entry {}", entry.seq))?;
        let command = licensing_command(entry)?;
        let actor = Actor::Agency(agency(&entry.agency)?);
        let t = licensing::apply(&machine, &command, &actor, last_at, rules).map_err(|e| {
            anyhow::anyhow!(
                "entry {} ({}) is not a legal step: {e}",
                entry.seq,
                command.name()
            )
        })?;
        ensure!(
            entry.state_after == yrd_licensing::view::state_of(t.new_state.state) as i32,
            "entry {} left the application in state {:?}, the machine in {:?}",
            entry.seq,
            entry.state_after,
            t.new_state.state
        );
        tell(expected, &recipients(&t.events), (&app.name, entry.seq, 0))?;
        machine = t.new_state;
    }
    let mut derived = app.clone();
    let today = convert::day_of(last_at);
    yrd_licensing::view::refresh(&mut derived, &machine, rules, today, last_at);
    let fields = |a: &pb::LicenceApplication| {
        format!(
            "state {:?}, deadlines {:?}, overdue {}, paused {}, extended {}, accepted {:?}",
            a.state, a.deadlines, a.overdue, a.clock_paused, a.time_limit_extended, a.accept_date
        )
    };
    ensure!(
        fields(&derived) == fields(app),
        "the stored application has {}, its replayed history gives {}",
        fields(app),
        fields(&derived)
    );
    Ok(app.history.len())
}

/// Every agency a transition's events tell, once (one feed event per history entry each).
fn recipients(events: &[licensing::LicensingEvent]) -> Vec<AgencyId> {
    let mut all: Vec<AgencyId> = Vec::new();
    for a in events.iter().flat_map(|e| &e.notify) {
        if !all.contains(a) {
            all.push(a.clone());
        }
    }
    all
}

/// The command a history entry records (only the steps the load takes).
fn licensing_command(entry: &pb::ApplicationStep) -> anyhow::Result<LicensingCommand> {
    use pb::application_step::Detail;
    let kind = pb::ApplicationStepKind::try_from(entry.kind).unwrap_or_default();
    Ok(match (kind, &entry.detail) {
        (pb::ApplicationStepKind::Accepted, _) => LicensingCommand::Accept,
        (pb::ApplicationStepKind::ReviewStarted, _) => LicensingCommand::StartReview,
        (pb::ApplicationStepKind::VerificationReported, Some(Detail::VerificationReport(v))) => {
            let count = u8::try_from(v.verifiers.len()).unwrap_or(u8::MAX);
            LicensingCommand::ReportVerification {
                verifiers: licensing::VerifierCount::new(count)
                    .map_err(|e| anyhow::anyhow!("entry {}: {e}", entry.seq))?,
                passed: v.outcome == pb::CheckOutcome::Passed as i32,
            }
        }
        (pb::ApplicationStepKind::Decided, _) => {
            LicensingCommand::Decide(licensing::Decision::Approve)
        }
        (kind, _) => bail!(
            "entry {} is a {} the load never takes",
            entry.seq,
            kind.as_str_name()
        ),
    })
}

/// Every referral the run's agencies list as sampling agency; a name listed twice is an error.
async fn list_referrals(clients: &[Authed]) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for client in clients.iter().take(AGENCIES.len()) {
        let request = pb::ListReferralsRequest {
            role: pb::ReferralRole::Sampling as i32,
            page_size: 500,
            ..Default::default()
        };
        let referrals = list_all(
            "DisposalService.ListReferrals",
            request,
            |r, token| r.page_token = token,
            |r| async move {
                let page = DisposalServiceClient::new(client.clone())
                    .list_referrals(r)
                    .await?
                    .into_inner();
                Ok((page.referrals, page.next_page_token))
            },
        )
        .await?;
        names.extend(referrals.into_iter().map(|r| r.name));
    }
    let distinct: BTreeSet<&String> = names.iter().collect();
    ensure!(
        distinct.len() == names.len(),
        "ListReferrals names a referral twice"
    );
    Ok(names)
}

/// Every application the pilot agencies list as accepting window, or (with `uscc`) those of
/// that applicant.
pub(crate) async fn list_applications(
    clients: &[Authed],
    uscc: &str,
) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for agency in PILOT {
        let client = &clients[agency];
        let request = pb::ListApplicationsRequest {
            province_role: pb::ProvinceRole::Accepting as i32,
            applicant_uscc: uscc.to_owned(),
            page_size: 500,
            ..Default::default()
        };
        let applications = list_all(
            "LicensingService.ListApplications",
            request,
            |r, token| r.page_token = token,
            |r| async move {
                let page = LicensingServiceClient::new(client.clone())
                    .list_applications(r)
                    .await?
                    .into_inner();
                Ok((page.applications, page.next_page_token))
            },
        )
        .await
        .with_context(|| format!("as {}", AGENCIES[agency].0))?;
        names.extend(applications.into_iter().map(|a| a.name));
    }
    Ok(names)
}

/// `GetReferral` of `name`.
pub(crate) async fn get_referral(client: &Authed, name: &str) -> anyhow::Result<pb::Referral> {
    DisposalServiceClient::new(client.clone())
        .get_referral(pb::GetReferralRequest {
            name: name.to_owned(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("GetReferral {name}: {}", failure(&s)))?
        .into_inner()
        .referral
        .with_context(|| format!("GetReferral {name} answered no referral"))
}

/// `GetApplication` of `name`.
pub(crate) async fn get_application(
    client: &Authed,
    name: &str,
) -> anyhow::Result<pb::LicenceApplication> {
    LicensingServiceClient::new(client.clone())
        .get_application(pb::GetApplicationRequest {
            name: name.to_owned(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("GetApplication {name}: {}", failure(&s)))?
        .into_inner()
        .application
        .with_context(|| format!("GetApplication {name} answered no application"))
}
