//! Who may call: the other provinces are refused on every method; the pilot's windows read
//! the catalogue before they submit.

use std::sync::Arc;

use tonic::Code;
use yrd_domain::Profile;
use yrd_domain::clock::ManualClock;
use yrd_e2e::fixtures::stored_feed;
use yrd_e2e::{ANHUI, JIANGSU, SHANDONG, SHANGHAI, TestApp, call_path, violated_fields};
use yrd_proto::v1::licensing_service_client::LicensingServiceClient;
use yrd_proto::v1::{self as pb};

use crate::support::*;

/// Jiangsu, Zhejiang and Anhui are not part of Hu-Lu processing: every method refuses them,
/// with empty messages and with real requests naming a real application and licence.
pub async fn other_provinces_are_refused_on_every_method(app: TestApp, _clock: Arc<ManualClock>) {
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&app, SHANDONG).await;
    let (name, licence) = licensed(&mut sh, &mut sd, "out", 9).await;
    let methods: Vec<&str> = yrd_domain::roles::METHOD_ROLES
        .iter()
        .map(|(path, _)| *path)
        .filter(|p| p.starts_with("/yrd.exchange.v1.LicensingService/"))
        .collect();
    assert_eq!(methods.len(), 20);
    for agency in [JIANGSU, yrd_e2e::ZHEJIANG, ANHUI] {
        let session = app.session(agency, Profile::System).await;
        for path in &methods {
            let status = call_path(&session.channel, Some(&session.token), path)
                .await
                .expect_err("refused");
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{agency} {path}: {status:?}"
            );
            assert!(status.message().contains("pilot"), "{}", status.message());
        }
        let mut c = LicensingServiceClient::new(session.authed());
        let confirm = pb::ConfirmConditionsRequest {
            request_id: "out-conditions".into(),
            name: name.clone(),
            note: String::new(),
        };
        let submit = pb::SubmitApplicationRequest {
            request_id: "out-submit".into(),
            application: Some(fertilizer(10)),
        };
        for refused in [
            c.get_application(pb::GetApplicationRequest { name: name.clone() })
                .await
                .map(drop),
            c.get_licence(pb::GetLicenceRequest {
                name: licence.name.clone(),
            })
            .await
            .map(drop),
            c.list_licences(pb::ListLicencesRequest::default())
                .await
                .map(drop),
            c.change_licence(change_request("out-change", &licence.name))
                .await
                .map(drop),
            c.confirm_conditions(confirm).await.map(drop),
            c.submit_application(submit).await.map(drop),
        ] {
            let status = refused.expect_err("not theirs, and not in the pilot");
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{agency}: {status:?}"
            );
        }
    }
    // A production address outside the pilot cannot be routed through it (Jiangsu issues its
    // own), and the window cannot submit for its own province either (not joint processing).
    for (request_id, serial, region) in [("out-region", 11, "320106"), ("out-own", 12, "310115")] {
        let mut made_elsewhere = fertilizer(serial);
        let applicant = made_elsewhere.applicant.as_mut().expect("applicant");
        applicant.production_region_code = region.into();
        let refused = sh
            .submit_application(pb::SubmitApplicationRequest {
                request_id: request_id.into(),
                application: Some(made_elsewhere),
            })
            .await
            .expect_err("not routed through the pilot");
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    }
    for agency in [JIANGSU, yrd_e2e::ZHEJIANG, ANHUI] {
        assert!(stored_feed(&app, agency).await.is_empty(), "{agency}");
    }
}

/// A window reads the licensing catalogue (products, units, routes and time
/// limits with their units) and submits what it found there; the other provinces may not read
/// it; paging and bad fields behave as on the other lists.
pub async fn a_window_reads_the_catalogue_before_it_submits(
    app: TestApp,
    _clock: Arc<ManualClock>,
) {
    let mut sh = client(&app, SHANGHAI).await;
    let catalogue = sh
        .catalogue(pb::ListCatalogueProductsRequest::default())
        .await;
    assert!(catalogue.next_page_token.is_empty());
    let codes: Vec<&str> = catalogue
        .catalogue_products
        .iter()
        .map(|p| p.catalogue_code.as_str())
        .collect();
    assert_eq!(codes, ["06-001", "13-001"]);
    let fertilizer_entry = &catalogue.catalogue_products[1];
    assert_eq!(fertilizer_entry.name, "catalogueProducts/13-001");
    assert_eq!(fertilizer_entry.display_name, "化肥");
    let units: Vec<(&str, &str)> = fertilizer_entry
        .units
        .iter()
        .map(|u| (u.code.as_str(), u.display_name.as_str()))
        .collect();
    assert_eq!(
        units,
        [
            ("13-001-01", "复混肥料"),
            ("13-001-02", "掺混肥料"),
            ("13-001-03", "有机-无机复混肥料"),
        ]
    );
    // Fertilizer takes only the ordinary route (先核后证) since the 2024 catalogue decision.
    assert_eq!(
        fertilizer_entry.routes().collect::<Vec<_>>(),
        [pb::LicensingRoute::Ordinary]
    );
    let limits: Vec<(pb::ApplicationDeadlineKind, u32, bool)> = fertilizer_entry
        .time_limits
        .iter()
        .map(|l| (l.kind(), l.days, l.working_days))
        .collect();
    assert_eq!(
        limits,
        [
            (pb::ApplicationDeadlineKind::Acceptance, 5, true),
            (pb::ApplicationDeadlineKind::Verification, 30, false),
            (pb::ApplicationDeadlineKind::Decision, 20, true),
            (pb::ApplicationDeadlineKind::Issuance, 10, true),
        ]
    );
    let cable_entry = &catalogue.catalogue_products[0];
    assert_eq!(cable_entry.display_name, "电线电缆");
    assert_eq!(
        cable_entry.routes().collect::<Vec<_>>(),
        [pb::LicensingRoute::Ordinary, pb::LicensingRoute::Commitment]
    );
    assert!(
        cable_entry
            .time_limits
            .iter()
            .any(|l| l.kind() == pb::ApplicationDeadlineKind::PostIssueCheck
                && l.days == 30
                && l.working_days)
    );

    // What the catalogue lists is what the window may submit: fertilizer, its second unit.
    let mut from_catalogue = fertilizer(30);
    from_catalogue.product = Some(pb::LicensedProduct {
        catalogue_code: fertilizer_entry.catalogue_code.clone(),
        name: String::new(),
        units: vec![pb::ProductUnit {
            code: fertilizer_entry.units[1].code.clone(),
            name: fertilizer_entry.units[1].display_name.clone(),
            specifications: vec![],
        }],
    });
    let submitted = submit(&mut sh, "cat-submit", from_catalogue).await;
    assert_eq!(submitted.state(), pb::ApplicationState::Submitted);
    assert_eq!(submitted.product.as_ref().expect("product").name, "化肥");

    // The issuing province reads the same catalogue; the route filter and pages.
    let mut sd = client(&app, SHANDONG).await;
    type Page = pb::ListCatalogueProductsRequest;
    let page = |route: pb::LicensingRoute, page_size: i32, page_token: String| Page {
        route: route as i32,
        page_size,
        page_token,
    };
    let any = pb::LicensingRoute::Unspecified;
    let commitment = sd
        .catalogue(page(pb::LicensingRoute::Commitment, 0, String::new()))
        .await;
    assert_eq!(commitment.catalogue_products.len(), 1);
    assert_eq!(commitment.catalogue_products[0].catalogue_code, "06-001");
    let first = sd.catalogue(page(any, 1, String::new())).await;
    assert_eq!(first.catalogue_products.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let second = sd.catalogue(page(any, 1, first.next_page_token)).await;
    assert_eq!(second.catalogue_products[0].catalogue_code, "13-001");
    assert!(second.next_page_token.is_empty());
    let bad = sd
        .list_catalogue_products(pb::ListCatalogueProductsRequest {
            route: 7,
            page_size: -1,
            page_token: "not-a-token".into(),
        })
        .await
        .expect_err("bad fields");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad), ["route", "page_size", "page_token"]);

    // Only the pilot provinces read it.
    for agency in [JIANGSU, ANHUI] {
        let session = app.session(agency, Profile::System).await;
        let refused = LicensingServiceClient::new(session.authed())
            .list_catalogue_products(pb::ListCatalogueProductsRequest::default())
            .await
            .expect_err("not in the pilot");
        assert_eq!(refused.code(), Code::PermissionDenied, "{agency}");
        assert!(refused.message().contains("pilot"), "{}", refused.message());
    }
}
