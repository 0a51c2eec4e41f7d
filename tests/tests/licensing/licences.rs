//! A business licence change carried into the licence.

use std::sync::Arc;

use tonic::Code;
use yrd_domain::clock::ManualClock;
use yrd_e2e::fixtures::{assert_receipt, stored_feed, uscc};
use yrd_e2e::{SHANDONG, SHANGHAI, TestApp};
use yrd_proto::v1::{self as pb, ApplicationStepKind as K, EventType as E};

use crate::support::*;

pub async fn a_business_licence_change_changes_the_licence(app: TestApp, _clock: Arc<ManualClock>) {
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&app, SHANDONG).await;
    let (name, licence) = licensed(&mut sh, &mut sd, "chg", 13).await;
    let by_window = sh
        .change_licence(change_request("chg-sh", &licence.name))
        .await
        .expect_err("the issuing province changes licences");
    assert_eq!(by_window.code(), Code::PermissionDenied, "{by_window:?}");
    let response = sd
        .change_licence(change_request("chg-1", &licence.name))
        .await
        .expect("change")
        .into_inner();
    assert_receipt(response.receipt.as_ref());
    let changed = response.licence.expect("licence");
    assert_eq!(changed.number, licence.number);
    let holder = changed.holder.as_ref().expect("holder");
    assert_eq!(holder.name, "山东某新材料化肥有限公司");
    assert_eq!(holder.production_address, "山东省济南市历城区某工业园8号");
    assert_eq!(holder.residence, "山东省济南市历下区某路1号");
    let change = &changed.changes[0];
    assert_eq!(change.seq, 1);
    assert_eq!(change.previous_holder_name, "山东某化肥有限公司");
    assert_eq!(change.new_holder_name, "山东某新材料化肥有限公司");
    assert_eq!(
        change.previous_production_address,
        "山东省济南市历城区某工业园2号"
    );
    assert!(change.previous_residence.is_empty() && change.new_residence.is_empty());
    assert_eq!(change.agency, "agencies/370000-AMR");
    assert_eq!(change.business_licence_change_date, day(0));

    // Visible to the window: in its feed, by Get and by List.
    let last = stored_feed(&app, SHANGHAI).await.pop().expect("events");
    assert_eq!(last.event_type(), E::LicenceChanged);
    assert_eq!(last.resource_name, licence.name);
    assert_eq!(last.resource_version, 1);
    assert!(matches!(&last.resource, Some(pb::feed_event::Resource::Licence(l)) if *l == changed));
    let fetched = sh.licence(&licence.name).await;
    assert_eq!(fetched, changed);
    let by_holder = pb::ListLicencesRequest {
        holder_uscc: uscc("370102", 13),
        issuing_agency: "agencies/370000-AMR".into(),
        ..Default::default()
    };
    let by_holder = sh.licences(by_holder).await;
    assert_eq!(by_holder, std::slice::from_ref(&changed));
    let application = sh.application(&name).await;
    assert_eq!(kinds(&application).last(), Some(&K::LicenceChanged));
    // Only the residence changes this time; the change is numbered 2.
    let mut residence = change_request("chg-2", &licence.name);
    residence.holder_name = None;
    residence.production_address = None;
    residence.residence = Some("山东省济南市历下区新路9号".into());
    let second = sd
        .change_licence(residence)
        .await
        .expect("change")
        .into_inner()
        .licence
        .expect("licence");
    assert_eq!(second.changes.len(), 2);
    assert_eq!(
        second.changes[1].previous_residence,
        "山东省济南市历下区某路1号"
    );
    assert_eq!(
        second.holder.as_ref().expect("holder").name,
        "山东某新材料化肥有限公司"
    );
    let unknown = sd
        .change_licence(change_request("chg-3", "licences/(鲁)XK13-001-09999"))
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
}
