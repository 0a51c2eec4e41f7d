//! LicensingService over real mTLS ("Hu-Lu joint processing" 沪鲁通办): a Shandong fertilizer
//! producer applies at the Shanghai window and Shandong examines and issues; the supplement
//! round trip; refusals; the commitment route with a failed after-issue check; an overdue step
//! under a manual clock (with two replicas flagging it once); the other provinces refused on
//! every method; the linked licence change; invalid inputs; concurrent issuance. Each scenario
//! runs on SQLite and on PostgreSQL, with the server's clock standing on the next Monday, 10:00
//! in Beijing (the dev certificates are issued at the real time, so the clock cannot stand in
//! the past), and moving only when the test says.
//!
//! One binary, a module per topic: `support` holds the sample applications and the steps as
//! one-line calls; the others hold the scenarios.

mod access;
mod deadlines;
mod invalid;
mod issuance;
mod licences;
mod steps;
mod support;

use access::{
    a_window_reads_the_catalogue_before_it_submits, other_provinces_are_refused_on_every_method,
};
use deadlines::an_overdue_step_is_flagged_once_to_both_provinces;
use invalid::each_invalid_input_is_named_and_nothing_is_stored;
use issuance::{
    a_commitment_licence_is_revoked_after_a_failed_check,
    a_shandong_producer_applies_in_shanghai_and_gets_a_conditional_licence,
    concurrent_issues_never_share_a_number,
};
use licences::a_business_licence_change_changes_the_licence;
use steps::{a_supplement_round_trip_and_idempotent_retries, refusals_follow_the_state_machine};
use yrd_e2e::spawn_for_deadlines as spawn;

yrd_e2e::on_both_stores_with_clock!(
    a_shandong_producer_applies_in_shanghai_and_gets_a_conditional_licence,
    a_supplement_round_trip_and_idempotent_retries,
    refusals_follow_the_state_machine,
    a_commitment_licence_is_revoked_after_a_failed_check,
    an_overdue_step_is_flagged_once_to_both_provinces,
    other_provinces_are_refused_on_every_method,
    a_business_licence_change_changes_the_licence,
    a_window_reads_the_catalogue_before_it_submits,
    each_invalid_input_is_named_and_nothing_is_stored,
    concurrent_issues_never_share_a_number,
);
