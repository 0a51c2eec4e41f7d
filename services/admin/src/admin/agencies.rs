//! `CreateAgency`, `UpdateAgency`, `GetAgency` and `ListAgencies`.

use tonic::Request;
use yrd_call::{Call, FieldErrors, violation};
use yrd_domain::AgencyId;
use yrd_proto::v1::{
    self as pb, CreateAgencyRequest, CreateAgencyResponse, GetAgencyRequest, GetAgencyResponse,
    ListAgenciesRequest, ListAgenciesResponse, UpdateAgencyRequest, UpdateAgencyResponse,
};
use yrd_store::{Agency, AgencyState, AgencyUpdate, NewAgency, Store, StoreError};

use super::AdminHandler;
use super::convert::{agency_from_name, bad_page_token, display_name, page_size};
use crate::error::AdminError;

/// The province prefixes of the Yangtze River Delta exchange's members (Shanghai, Jiangsu,
/// Zhejiang, Anhui) and its partner Shandong.
const DELTA_PROVINCES: &[&str] = &["31", "32", "33", "34", "37"];

/// Whether a new agency is its province's authority and a member of the Delta exchange,
/// derived from its id: a province-level code (`xx0000`) is the province's authority unless
/// one is registered already; Delta membership follows the province.
async fn derived_roles(store: &Store, id: &AgencyId) -> Result<(bool, bool), StoreError> {
    let region = id.region();
    let is_delta = DELTA_PROVINCES.contains(&region.province_prefix());
    let has_authority = store
        .list_agencies()
        .await?
        .iter()
        .any(|a| a.is_province_authority && a.agency_id.province() == region.province());
    Ok((is_delta, region.is_province() && !has_authority))
}

impl AdminHandler {
    pub(super) async fn create_agency_call(
        &self,
        call: &mut Call,
        request: Request<CreateAgencyRequest>,
    ) -> Result<CreateAgencyResponse, AdminError> {
        let now = self.clock.now();
        let body = request.into_inner();
        let (audit, key, mut errors, agency) =
            self.agency_write(call, "CreateAgency", &body.request_id, body.agency, true)?;
        let id = match AgencyId::parse(agency.agency_id.trim()) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.push(violation("agency.agency_id", e.to_string()));
                None
            }
        };
        let name = display_name(&agency.display_name, "agency.display_name", &mut errors);
        let name_zh = display_name(
            &agency.display_name_zh,
            "agency.display_name_zh",
            &mut errors,
        );
        let (Some(id), true) = (id, errors.is_empty()) else {
            return Err(errors.into());
        };
        if let Some(first) = self.replay(&key).await? {
            return Ok(first);
        }
        let (is_delta_member, is_province_authority) = derived_roles(&self.store, &id).await?;
        let receipt = self.sign(audit.as_ref(), now);
        let reply = move |this: &AdminHandler, a: &Agency| CreateAgencyResponse {
            agency: Some(this.agency_to_pb(a)),
            receipt: receipt.clone(),
        };
        let answered = self
            .store
            .create_agency_answered(
                &NewAgency {
                    agency_id: id.clone(),
                    display_name: name,
                    display_name_zh: name_zh,
                    is_delta_member,
                    is_province_authority,
                },
                now,
                audit.as_ref(),
                Some(self.recorded(&key, reply.clone())),
            )
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists { .. } => AdminError::AgencyExists(id.clone()),
                other => AdminError::Store(other),
            })?;
        Self::finish(answered, call, |created| reply(self, &created))
    }

    pub(super) async fn update_agency_call(
        &self,
        call: &mut Call,
        request: Request<UpdateAgencyRequest>,
    ) -> Result<UpdateAgencyResponse, AdminError> {
        let now = self.clock.now();
        let body = request.into_inner();
        let (audit, key, mut errors, agency) =
            self.agency_write(call, "UpdateAgency", &body.request_id, body.agency, false)?;
        let id = match agency_from_name(&agency.name, "agency.name") {
            Ok(id) => id,
            Err(v) => {
                errors.push(v);
                return Err(errors.into());
            }
        };
        let paths = body.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            errors.push(violation(
                "update_mask",
                "is required: name the fields to change (display_name, display_name_zh, state)",
            ));
            return Err(errors.into());
        }
        let mut update = AgencyUpdate::default();
        for path in &paths {
            match path.as_str() {
                "display_name" => {
                    update.display_name = Some(display_name(
                        &agency.display_name,
                        "agency.display_name",
                        &mut errors,
                    ));
                }
                "display_name_zh" => {
                    update.display_name_zh = Some(display_name(
                        &agency.display_name_zh,
                        "agency.display_name_zh",
                        &mut errors,
                    ));
                }
                "state" => match pb::AgencyState::try_from(agency.state) {
                    Ok(pb::AgencyState::Active) => update.state = Some(AgencyState::Active),
                    Ok(pb::AgencyState::Suspended) => {
                        if id == self.operator {
                            errors.push(violation(
                                "agency.state",
                                "the operator agency cannot be suspended",
                            ));
                        }
                        update.state = Some(AgencyState::Suspended);
                    }
                    _ => errors.push(violation(
                        "agency.state",
                        "must be AGENCY_STATE_ACTIVE or AGENCY_STATE_SUSPENDED",
                    )),
                },
                other => errors.push(violation(
                    "update_mask",
                    format!("{other:?} cannot be changed (display_name, display_name_zh, state)"),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(errors.into());
        }
        if let Some(first) = self.replay(&key).await? {
            if update.state.is_some() {
                // A retry after an answer lost (or not yet in force) confirms it holds.
                self.in_force("suspension or resumption").await?;
            }
            return Ok(first);
        }
        let receipt = self.sign(audit.as_ref(), now);
        let reply = move |this: &AdminHandler, a: &Agency| UpdateAgencyResponse {
            agency: Some(this.agency_to_pb(a)),
            receipt: receipt.clone(),
        };
        let answered = self
            .store
            .update_agency(
                &id,
                &update,
                now,
                audit.as_ref(),
                Some(self.recorded(&key, reply.clone())),
            )
            .await?
            .ok_or_else(|| AdminError::AgencyNotFound(id.clone()))?;
        if update.state.is_some() {
            // In force on this replica before the answer; the others at their next poll.
            self.in_force("suspension or resumption").await?;
        }
        Self::finish(answered, call, |updated| reply(self, &updated))
    }

    pub(super) async fn get_agency_call(
        &self,
        request: Request<GetAgencyRequest>,
    ) -> Result<GetAgencyResponse, AdminError> {
        let id = agency_from_name(&request.get_ref().name, "name").map_err(FieldErrors::from)?;
        let agency = self
            .store
            .get_agency(&id)
            .await?
            .ok_or_else(|| AdminError::AgencyNotFound(id.clone()))?;
        Ok(GetAgencyResponse {
            agency: Some(self.agency_to_pb(&agency)),
        })
    }

    pub(super) async fn list_agencies_call(
        &self,
        request: Request<ListAgenciesRequest>,
    ) -> Result<ListAgenciesResponse, AdminError> {
        let body = request.into_inner();
        let limit = page_size(body.page_size)? as usize;
        let state = match pb::AgencyState::try_from(body.state) {
            Ok(pb::AgencyState::Unspecified) => None,
            Ok(pb::AgencyState::Active) => Some(AgencyState::Active),
            Ok(pb::AgencyState::Suspended) => Some(AgencyState::Suspended),
            Err(_) => {
                return Err(AdminError::field("state", "unknown state"));
            }
        };
        let after = if body.page_token.is_empty() {
            None
        } else {
            Some(AgencyId::parse(&body.page_token).map_err(|_| bad_page_token())?)
        };
        let all = self.store.list_agencies().await?;
        let mut page: Vec<&Agency> = all
            .iter()
            .filter(|a| state.is_none_or(|s| a.state == s))
            .filter(|a| after.as_ref().is_none_or(|after| &a.agency_id > after))
            .take(limit + 1)
            .collect();
        let next_page_token =
            yrd_call::next_page_token(&mut page, limit, |a| a.agency_id.to_string());
        Ok(ListAgenciesResponse {
            agencies: page.into_iter().map(|a| self.agency_to_pb(a)).collect(),
            next_page_token,
        })
    }
}
