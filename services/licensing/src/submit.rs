//! `SubmitApplication`: the accepting window submits; the production region names the
//! issuing province.

use prost::Message as _;
use tonic::Request;
use yrd_call::timestamp;
use yrd_domain::RegionCode;
use yrd_domain::calendar::china_date;
use yrd_domain::licensing::{Application, Holder, Route, Submission};
use yrd_domain::uscc::Uscc;
use yrd_proto::v1::{self as pb};
use yrd_store::{IdempotencyKey, NewApplication};

use crate::error::CallError;
use crate::parse::{FieldParse, MAX_SHORT_CHARS, MAX_TEXT_CHARS};
use crate::view::refresh;
use yrd_call::FieldErrors;

use crate::service::*;

impl LicensingHandler {
    pub(crate) async fn submit(
        &self,
        call: &mut Call,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<pb::SubmitApplicationResponse, CallError> {
        let call = self.call_of(call);
        self.pilot(&call.caller)?;
        let body = request.into_inner();
        let mut e = FieldErrors::new();
        let request_id = e.request_id(&body.request_id);
        let Some(input) = body.application else {
            e.add("application", "is required");
            return Err(CallError::Invalid(e));
        };
        let applicant = input.applicant.clone().unwrap_or_default();
        if input.applicant.is_none() {
            e.add("application.applicant", "is required");
        }
        let enterprise_name = e.remark(
            "application.applicant.name",
            &applicant.name,
            MAX_SHORT_CHARS,
        );
        let uscc = Uscc::parse(applicant.uscc.trim())
            .map_err(|err| e.add("application.applicant.uscc", err.to_string()))
            .ok();
        e.optional(
            "application.applicant.residence",
            &applicant.residence,
            MAX_SHORT_CHARS,
        );
        let address = e.remark(
            "application.applicant.production_address",
            &applicant.production_address,
            MAX_SHORT_CHARS,
        );
        let region = RegionCode::parse(applicant.production_region_code.trim())
            .map_err(|err| {
                e.add(
                    "application.applicant.production_region_code",
                    err.to_string(),
                )
            })
            .ok();
        let product_in = input.product.clone().unwrap_or_default();
        if input.product.is_none() {
            e.add("application.product", "is required");
        }
        let product = self
            .settings
            .catalogue
            .0
            .get(product_in.catalogue_code.trim())
            .cloned();
        if product.is_none() {
            e.add(
                "application.product.catalogue_code",
                format!(
                    "must be a product of the licensing catalogue ({})",
                    self.settings
                        .catalogue
                        .0
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if product_in.units.is_empty() {
            e.add(
                "application.product.units",
                "must list at least one product unit",
            );
        }
        for (i, unit) in product_in.units.iter().enumerate() {
            let field = format!("application.product.units[{i}]");
            if let Some(p) = &product {
                if !p.units.contains_key(unit.code.trim()) {
                    e.add(
                        format!("{field}.code"),
                        format!("is not a unit of {} ({})", p.entry.name, p.entry.code),
                    );
                }
            }
            e.required(&format!("{field}.name"), &unit.name, MAX_SHORT_CHARS);
            for (j, s) in unit.specifications.iter().enumerate() {
                e.required(&format!("{field}.specifications[{j}]"), s, MAX_SHORT_CHARS);
            }
        }
        let route = match pb::LicensingRoute::try_from(input.route) {
            Ok(pb::LicensingRoute::Ordinary) => Some(Route::Ordinary),
            Ok(pb::LicensingRoute::Commitment) => Some(Route::Commitment),
            _ => {
                e.add(
                    "application.route",
                    "must be LICENSING_ROUTE_ORDINARY or LICENSING_ROUTE_COMMITMENT",
                );
                None
            }
        };
        e.attachments("application.materials", &input.materials, true);
        let note = e.optional("application.note", &input.note, MAX_TEXT_CHARS);
        let submission = match (&product, route, enterprise_name, address) {
            (Some(p), Some(route), Some(name), Some(address)) => {
                Submission::new(p.entry.clone(), route, Holder { name, address })
                    .map_err(|err| e.add("application.route", err.to_string()))
                    .ok()
            }
            _ => None,
        };
        let (Some(submission), Some(uscc), Some(region), Some(product), true) =
            (submission, uscc, region, product, e.is_empty())
        else {
            return Err(CallError::Invalid(e));
        };
        let Some(issuing) = self.issuing_agency(&region) else {
            return Err(CallError::Precondition(format!(
                "the production address lies in {} ({}), which is not part of the Hu-Lu \
                 joint-processing pilot; apply to that province's own authority",
                region.province_name(),
                region.province()
            )));
        };

        let key = IdempotencyKey {
            agency: call.caller.clone(),
            method: format!("{SERVICE}SubmitApplication"),
            request_id,
            request_digest: call.ctx.request_sha256.clone(),
        };
        if let Some(answer) = self.replayed(&key).await? {
            return Ok(answer);
        }
        let now = call.now;
        let rules = &self.settings.rules;
        let transition = Application::submit(submission, &call.caller, issuing, now, rules)?;
        let app = transition.new_state.clone();
        let id = uuid::Uuid::now_v7().simple().to_string();
        let name = format!("applications/{id}");
        call.ctx.note(vec![name.clone()]);
        let mut view = pb::LicenceApplication {
            name: name.clone(),
            id: id.clone(),
            applicant: Some(pb::Enterprise {
                name: applicant.name.trim().to_owned(),
                uscc: uscc.as_str().to_owned(),
                residence: applicant.residence.trim().to_owned(),
                production_address: applicant.production_address.trim().to_owned(),
                production_region_code: region.as_str().to_owned(),
            }),
            accepting_agency: format!("agencies/{}", app.accepting_agency),
            issuing_agency: format!("agencies/{}", app.issuing_agency),
            product: Some(pb::LicensedProduct {
                catalogue_code: product.entry.code.to_string(),
                name: product.entry.name.to_string(),
                units: product_in.units.clone(),
            }),
            route: input.route,
            materials: input.materials.clone(),
            note: note.clone(),
            create_time: Some(timestamp(now)),
            ..Default::default()
        };
        refresh(&mut view, &app, rules, china_date(now), now);
        let entry = Entry {
            event: pb::EventType::ApplicationSubmitted,
            step: pb::ApplicationStep {
                seq: 1,
                kind: pb::ApplicationStepKind::Submitted as i32,
                time: Some(timestamp(now)),
                agency: format!("agencies/{}", call.caller),
                officer: call.ctx.officer.clone(),
                note,
                state_after: view.state,
                detail: None,
            },
        };
        let mut full = view.clone();
        full.history.push(entry.step.clone());
        let leaf = call.ctx.success_leaf();
        let events = events(
            &recipients(&transition),
            &full,
            std::slice::from_ref(&entry),
            None,
            Some(&call.caller),
            &call.ctx.trace_id,
            now,
        );
        let response = pb::SubmitApplicationResponse {
            application: Some(full),
            receipt: self.receipt(leaf.as_ref(), now),
        };
        let outcome = self
            .store
            .submit_application(&NewApplication {
                key,
                id,
                accepting_agency: app.accepting_agency.clone(),
                issuing_agency: app.issuing_agency.clone(),
                applicant_uscc: uscc.as_str().to_owned(),
                catalogue_code: product.entry.code.to_string(),
                columns: columns(&app, &view)?,
                step: entry.step.encode_to_vec(),
                at: now,
                events,
                leaf,
                response: response.encode_to_vec(),
            })
            .await?;
        finish(outcome, call.ctx, response)
    }
}
