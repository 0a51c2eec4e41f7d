//! DisposalService over real mTLS, on SQLite and PostgreSQL: a non-conforming result
//! published by Shanghai against a Shandong producer opens a referral in the same transaction;
//! Shandong's subscriber receives it and Shanghai's subscriber sees every step to closure; a
//! returned referral is rerouted; an objection is overturned by re-inspection; the scheduler
//! flags an overdue referral and then the announcement under a manual clock; illegal steps
//! name the state; a third agency may react but not act; each bad field is named.
//!
//! Every server runs on a manual clock that starts on the next Monday (so that advancing it by
//! the statutory 75 days stays within the dev certificates' year); its deadline scheduler runs a
//! round when the scenario, having moved the clock, asks for one. Tests synchronise on feed
//! events, never on sleeps.
//!
//! One binary, a module per topic: `support` holds the sample result, the feed reader and the
//! steps every scenario takes; the others hold the scenarios.

mod by_hand;
mod closure;
mod deadlines;
mod objections;
mod refusals;
mod support;

use by_hand::referrals_by_hand;
use closure::{
    a_referral_is_handled_to_closure_while_the_sampling_agency_watches,
    a_returned_referral_is_rerouted,
};
use deadlines::overdue_then_announcement_required_under_a_manual_clock;
use objections::{
    an_objection_is_overturned_by_reinspection, the_objection_window_is_listed_until_it_closes,
};
use refusals::{
    a_third_agency_reacts_but_cannot_act, each_bad_field_is_named,
    illegal_steps_are_refused_naming_the_state,
};
use yrd_e2e::spawn_for_deadlines as spawn;

yrd_e2e::on_both_stores_with_clock!(
    a_referral_is_handled_to_closure_while_the_sampling_agency_watches,
    a_returned_referral_is_rerouted,
    an_objection_is_overturned_by_reinspection,
    the_objection_window_is_listed_until_it_closes,
    overdue_then_announcement_required_under_a_manual_clock,
    illegal_steps_are_refused_naming_the_state,
    a_third_agency_reacts_but_cannot_act,
    referrals_by_hand,
    each_bad_field_is_named,
);

/// Several replicas' schedulers on one database.
mod concurrent_schedulers_flag_each_deadline_once {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        crate::deadlines::concurrent_schedulers(yrd_e2e::StoreKind::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        crate::deadlines::concurrent_schedulers(yrd_e2e::StoreKind::Postgres).await;
    }
}
