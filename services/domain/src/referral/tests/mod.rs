//! The referral state machine as a state-by-command table and its access rules, with the
//! fixtures every referral test shares; `rules.rs` holds one test per rule the module doc lists.

use super::*;
pub(super) use crate::test_fixtures::*;
use time::macros::date;

fn rules() -> ReferralRules {
    ReferralRules::default()
}

/// The actor holding the role `command` needs on `r`.
fn rightful(r: &Referral, command: &ReferralCommand) -> Actor {
    match command.required_role() {
        Party::HandlingAgency => Actor::Agency(r.handling_agency.clone()),
        Party::SamplingAgency => Actor::Agency(r.sampling_agency.clone()),
        Party::OtherAgency => Actor::Agency(jiangsu()),
        Party::Scheduler => Actor::Scheduler,
    }
}

fn run(r: &Referral, command: ReferralCommand, n: i64) -> Result<Transition, Refusal> {
    apply(r, &command, &rightful(r, &command), at(n), &rules())
}

fn step(r: &Referral, command: ReferralCommand, n: i64) -> Referral {
    match run(r, command.clone(), n) {
        Ok(t) => t.new_state,
        Err(e) => panic!("{command:?} on day {n}: {e}"),
    }
}

fn measure(m: Measure) -> ReferralCommand {
    ReferralCommand::RecordMeasure(m)
}

fn opened() -> Referral {
    Referral::open(shanghai(), shandong(), at(0), &rules())
        .unwrap()
        .new_state
}
fn delivered() -> Referral {
    step(&opened(), ReferralCommand::Acknowledge, 0)
}
fn in_progress() -> Referral {
    step(&delivered(), ReferralCommand::StartHandling, 0)
}
fn rectifying() -> Referral {
    step(
        &in_progress(),
        measure(Measure::OrderRectification { ordered_on: day(0) }),
        0,
    )
}
fn objection_pending() -> Referral {
    step(
        &in_progress(),
        ReferralCommand::FileObjection {
            result_received_on: day(0),
            filed_on: day(0),
        },
        0,
    )
}
fn announced() -> Referral {
    let failed = step(
        &rectifying(),
        measure(Measure::Review {
            result: ReviewResult::NonConforming,
            reviewed_on: day(0),
        }),
        0,
    );
    step(
        &failed,
        measure(Measure::PublicAnnouncement {
            announced_on: day(0),
        }),
        0,
    )
}
fn returned() -> Referral {
    step(
        &opened(),
        ReferralCommand::Return {
            reason: text("producer is in Zhejiang"),
            suggested_agency: None,
        },
        0,
    )
}
fn closed() -> Referral {
    step(
        &objection_pending(),
        ReferralCommand::RecordReinspection {
            result: ReviewResult::Conforming,
        },
        0,
    )
}

/// Every state, each reached through the machine itself.
fn every_state() -> Vec<(&'static str, Referral)> {
    vec![
        ("Opened", opened()),
        ("Delivered", delivered()),
        ("InProgress", in_progress()),
        ("Rectifying", rectifying()),
        ("ObjectionPending", objection_pending()),
        ("Announced", announced()),
        ("Returned", returned()),
        ("Closed", closed()),
    ]
}

/// Every command (each measure that has its own rule separately), with the day it runs.
fn every_command() -> Vec<(&'static str, ReferralCommand, i64)> {
    vec![
        ("Acknowledge", ReferralCommand::Acknowledge, 0),
        ("StartHandling", ReferralCommand::StartHandling, 0),
        ("Seal", measure(Measure::SealOrSeize), 0),
        (
            "Order",
            measure(Measure::OrderRectification { ordered_on: day(0) }),
            0,
        ),
        (
            "Review",
            measure(Measure::Review {
                result: ReviewResult::Conforming,
                reviewed_on: day(0),
            }),
            0,
        ),
        (
            "Announce",
            measure(Measure::PublicAnnouncement {
                announced_on: day(0),
            }),
            0,
        ),
        (
            "SecondReview",
            measure(Measure::SecondReview {
                result: ReviewResult::Conforming,
                reviewed_on: day(61),
            }),
            61,
        ),
        (
            "FileObjection",
            ReferralCommand::FileObjection {
                result_received_on: day(0),
                filed_on: day(0),
            },
            1,
        ),
        (
            "Reinspection",
            ReferralCommand::RecordReinspection {
                result: ReviewResult::NonConforming,
            },
            1,
        ),
        (
            "Return",
            ReferralCommand::Return {
                reason: text("not ours"),
                suggested_agency: None,
            },
            0,
        ),
        (
            "ReturnTo",
            ReferralCommand::Return {
                reason: text("producer is in Zhejiang"),
                suggested_agency: Some(zhejiang()),
            },
            0,
        ),
        ("Reroute", ReferralCommand::Reroute { to: zhejiang() }, 0),
        (
            "Close",
            ReferralCommand::Close {
                outcome: Outcome::Other,
                summary: text("done"),
            },
            0,
        ),
        (
            "AddReaction",
            ReferralCommand::AddReaction {
                kind: ReactionKind::FoundOnSaleHere,
                text: text("on sale in Nanjing too"),
            },
            0,
        ),
        ("MarkOverdue", ReferralCommand::MarkOverdue, 200),
    ]
}

/// A: accepted; S: refused for the state; P: refused for a condition of the command.
/// Columns follow `every_command`, rows `every_state`.
const TABLE: &[(&str, &str)] = &[
    //                   Ack Start Seal Order Review Announce 2nd Obj Reinsp Ret RetTo Reroute Close React Overdue
    ("Opened", "ASSSSSSASAASSAA"),
    ("Delivered", "SASSSSSASAASSAS"),
    ("InProgress", "SSAAPPPASAASAAS"),
    ("Rectifying", "SSAPAPPASSSSAAA"),
    ("ObjectionPending", "SSSSSSSSASSSSAP"),
    ("Announced", "SSAPPPASSSSSAAA"),
    ("Returned", "SSSSSSSSSSSASAS"),
    ("Closed", "SSSSSSSSSSSSSAS"),
];

#[test]
fn every_state_by_every_command() {
    let (states, commands) = (every_state(), every_command());
    check_state_table(
        &states,
        &commands,
        TABLE,
        |at, referral, command, n| match run(referral, command.clone(), n) {
            Ok(t) => {
                assert!(!t.events.is_empty(), "{at} emitted no event");
                assert_eq!(t.new_state.timeline_len, referral.timeline_len + 1);
                'A'
            }
            Err(Refusal::IllegalInState { state, .. }) => {
                assert_eq!(state, referral.state);
                'S'
            }
            Err(Refusal::Precondition { state, .. }) => {
                assert_eq!(state, referral.state);
                'P'
            }
            Err(e @ Refusal::NotPermitted { .. }) => panic!("{at}: {e}"),
        },
    );
}

/// The measures without a rule of their own (no clock, no precondition) behave like
/// `SealOrSeize` in every state, so the table's `Seal` column stands for all of them.
#[test]
fn every_plain_measure_follows_the_seal_column() {
    let plain = [
        Measure::StopSales,
        Measure::DelistOnline,
        Measure::StopProduction,
        Measure::ClearStock,
        Measure::Recall,
        Measure::CaseFiled,
        Measure::AdministrativePenalty {
            decision_number: text("鲁市监罚〔2024〕1号"),
        },
        Measure::TransferToJudicial,
        Measure::SuspendBusiness,
        Measure::RevokeBusinessLicence,
        Measure::Other {
            description: text("warning letter"),
        },
    ];
    for (name, referral) in every_state() {
        let seal = run(&referral, measure(Measure::SealOrSeize), 0).map(|t| t.new_state.state);
        for m in &plain {
            let got = run(&referral, measure(m.clone()), 0).map(|t| t.new_state.state);
            assert_eq!(got, seal, "{name} × {}", m.label());
        }
    }
}

#[test]
fn every_role_but_the_required_one_is_denied_in_every_state() {
    let actors = [
        Actor::Agency(shanghai()),
        Actor::Agency(shandong()),
        Actor::Agency(jiangsu()),
        Actor::Scheduler,
    ];
    for (name, referral) in every_state() {
        for (cmd_name, command, n) in every_command() {
            for actor in &actors {
                let role = referral.role_of(actor);
                if role == command.required_role() {
                    continue;
                }
                let refusal = apply(&referral, &command, actor, at(n), &rules())
                    .expect_err("a wrong role must be refused");
                assert_eq!(
                    refusal.kind(),
                    RefusalKind::PermissionDenied,
                    "{name} × {cmd_name} by {role}: {refusal}"
                );
            }
        }
    }
}

#[test]
fn roles_come_from_the_referral() {
    let r = opened();
    assert_eq!(r.role_of(&Actor::Agency(shanghai())), Party::SamplingAgency);
    assert_eq!(r.role_of(&Actor::Agency(shandong())), Party::HandlingAgency);
    assert_eq!(r.role_of(&Actor::Agency(jiangsu())), Party::OtherAgency);
    assert_eq!(r.role_of(&Actor::Scheduler), Party::Scheduler);
    assert!(Referral::open(shanghai(), shanghai(), at(0), &rules()).is_err());
}

#[test]
fn refusals_name_the_state_and_the_command() {
    let refusal = run(&closed(), ReferralCommand::Acknowledge, 0).unwrap_err();
    assert_eq!(refusal.kind(), RefusalKind::FailedPrecondition);
    assert_eq!(
        refusal.to_string(),
        "AcknowledgeReferral is not allowed in state REFERRAL_STATE_CLOSED \
         (已办结, REFERRAL_OUTCOME_OVERTURNED)"
    );
    let denied = apply(
        &opened(),
        &ReferralCommand::Acknowledge,
        &Actor::Agency(jiangsu()),
        at(0),
        &rules(),
    )
    .unwrap_err();
    assert_eq!(
        denied.to_string(),
        "AcknowledgeReferral is reserved to the referral's handling agency; the caller is \
         an agency not party to the referral"
    );
}

/// The form issue 16 pins: the contract's method and state names, the Chinese term beside
/// the state, and the reason after a colon.
#[test]
fn refusals_speak_the_contracts_language() {
    let rectifying = rectifying();
    let close = ReferralCommand::Close {
        outcome: Outcome::Rectified,
        summary: text("corrected"),
    };
    let refused = run(&rectifying, close, 1).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "CloseReferral is not allowed in state REFERRAL_STATE_RECTIFYING (整改中): \
         closing as REFERRAL_OUTCOME_RECTIFIED needs a conforming review (复查)"
    );
    let start = run(&rectifying, ReferralCommand::StartHandling, 1).unwrap_err();
    assert_eq!(
        start.to_string(),
        "StartHandling is not allowed in state REFERRAL_STATE_RECTIFYING (整改中)"
    );
    let paused = ReferralState::ObjectionPending {
        resume: ResumeState::Rectifying,
    };
    assert_eq!(
        paused.to_string(),
        "REFERRAL_STATE_OBJECTION_PENDING (异议/复检中, resuming REFERRAL_STATE_RECTIFYING)"
    );
    for state in [
        ReferralState::Opened,
        ReferralState::Delivered,
        ReferralState::InProgress,
        ReferralState::Rectifying,
        paused,
        ReferralState::Announced,
        ReferralState::Returned,
        ReferralState::Closed(Outcome::Rectified),
    ] {
        let text = state.to_string();
        assert!(text.starts_with("REFERRAL_STATE_"), "{text}");
        assert!(
            !text.contains("Rectified") && !text.contains("Closed("),
            "{text}"
        );
    }
}

mod properties;
mod rules;
