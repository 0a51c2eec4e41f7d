//! Time limits under a manual clock: an overdue step flagged once to both provinces, with two
//! replicas' schedulers on one database.

use std::sync::Arc;

use tonic::Code;
use yrd_domain::clock::ManualClock;
use yrd_e2e::fixtures::{scheduler_leaves, stored_feed};
use yrd_e2e::{SHANDONG, SHANGHAI, TestApp};
use yrd_proto::v1::{self as pb, ApplicationStepKind as K, EventType as E};

use crate::support::*;

/// The acceptance limit passes (deemed acceptance), then the decision limit: each is flagged
/// once, to both provinces, with two replicas' schedulers running on the same database.
pub async fn an_overdue_step_is_flagged_once_to_both_provinces(
    app: TestApp,
    clock: Arc<ManualClock>,
) {
    let replica = app.spawn_replica().await;
    let mut sh = client(&app, SHANGHAI).await;
    let name = submit(&mut sh, "due-submit", fertilizer(8)).await.name;
    let overdue = || pb::ListApplicationsRequest {
        overdue: Some(true),
        ..Default::default()
    };
    assert!(sh.applications(overdue()).await.is_empty());

    // Tuesday of the next week: the 5 working days passed without a notice (行政许可法 art. 32).
    clock.set(morning_of(8));
    // Both replicas' schedulers run a round at the same moment.
    app.tick_schedulers();
    replica.tick_schedulers();
    let mut sh_stream = subscribe(&app, SHANGHAI).await;
    let mut sd_stream = subscribe(&replica, SHANDONG).await;
    let submitted = next_event(&mut sd_stream).await;
    assert_eq!(
        event_summary(&submitted),
        (E::ApplicationSubmitted, K::Submitted, 1)
    );
    let mut cursors = Vec::new();
    for stream in [&mut sh_stream, &mut sd_stream] {
        let flagged = next_event(stream).await;
        assert_eq!(
            event_summary(&flagged),
            (E::ApplicationStepOverdue, K::OverdueFlagged, 2)
        );
        assert!(flagged.actor_agency.is_empty());
        let deemed = next_event(stream).await;
        assert_eq!(
            event_summary(&deemed),
            (E::ApplicationUpdated, K::Accepted, 3)
        );
        match &deemed.resource {
            Some(pb::feed_event::Resource::Application(a)) => {
                assert_eq!(a.state(), pb::ApplicationState::Accepted);
                assert_eq!(a.accept_date, day(0));
                match a.history[1].detail.as_ref() {
                    Some(pb::application_step::Detail::Deadline(d)) => {
                        assert_eq!(d.kind(), pb::ApplicationDeadlineKind::Acceptance);
                        assert_eq!(d.due_date, day(7));
                    }
                    other => panic!("deadline detail: {other:?}"),
                }
            }
            other => panic!("application: {other:?}"),
        }
        cursors.push(deemed.cursor);
    }

    // Tuesday of the fifth week: the decision limit (its Monday) passed. Fresh subscriptions (the
    // tokens of the old ones expired with the clock's jump) continue where those stopped.
    clock.set(morning_of(29));
    app.tick_schedulers();
    replica.tick_schedulers();
    let mut sh_stream = subscribe_after(&app, SHANGHAI, Some(cursors[0])).await;
    let mut sd_stream = subscribe_after(&replica, SHANDONG, Some(cursors[1])).await;
    for stream in [&mut sh_stream, &mut sd_stream] {
        let flagged = next_event(stream).await;
        assert_eq!(
            event_summary(&flagged),
            (E::ApplicationStepOverdue, K::OverdueFlagged, 4)
        );
        match &flagged.resource {
            Some(pb::feed_event::Resource::Application(a)) => {
                assert!(a.overdue);
                let d = a
                    .deadlines
                    .iter()
                    .find(|d| d.kind() == pb::ApplicationDeadlineKind::Decision)
                    .expect("decision");
                assert!(d.overdue && !d.met);
            }
            other => panic!("application: {other:?}"),
        }
    }
    // New tokens: the old ones expired with the clock's jump.
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&replica, SHANDONG).await;
    let listed = sh.applications(overdue()).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, name);
    // The next step is the next event on both sides: nothing was flagged twice, by either
    // replica, though both schedulers ran again.
    app.tick_schedulers();
    replica.tick_schedulers();
    start_review(&mut sd, "due-review", &name).await;
    let next = next_event(&mut sh_stream).await;
    assert_eq!(
        event_summary(&next),
        (E::ApplicationUpdated, K::ReviewStarted, 5)
    );
    let history = sd.application(&name).await;
    assert_eq!(
        kinds(&history),
        [
            K::Submitted,
            K::OverdueFlagged,
            K::Accepted,
            K::OverdueFlagged,
            K::ReviewStarted
        ]
    );
    // The one extension moves the limit by 10 working days: no longer overdue.
    let extended = applied(
        sd.extend_time_limit(pb::ExtendTimeLimitRequest {
            request_id: "due-extend".into(),
            name: name.clone(),
            extension: Some(pb::TimeLimitExtension {
                approval_reference: "鲁市监许延〔2024〕3号".into(),
                reason: "专家评审".into(),
                extension_days: 0,
            }),
        })
        .await,
        "extend",
    );
    assert!(extended.time_limit_extended);
    assert!(!extended.overdue);
    let again = sd
        .extend_time_limit(pb::ExtendTimeLimitRequest {
            request_id: "due-extend-2".into(),
            name: name.clone(),
            extension: Some(pb::TimeLimitExtension {
                approval_reference: "x".into(),
                reason: "y".into(),
                extension_days: 0,
            }),
        })
        .await
        .expect_err("once only");
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    let sh_overdue = stored_feed(&app, SHANGHAI)
        .await
        .iter()
        .filter(|e| e.event_type() == E::ApplicationStepOverdue)
        .count();
    assert_eq!(sh_overdue, 2);
    // Each of the scheduler's two writes left its leaf in the exchange log (sequenced within
    // the merge delay the receipts promise).
    let method = "yrd-exchange/LicensingScheduler/MarkOverdue";
    scheduler_leaves(&app, method, &name, 2).await;
}
