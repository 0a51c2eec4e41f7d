//! Reads: an application with its history, lists of applications and licences.

use tonic::Request;
use yrd_domain::calendar::china_date;
use yrd_proto::v1::{self as pb};
use yrd_store::StoredApplication;

use crate::error::CallError;
use crate::parse::FieldParse;
use crate::view::{self};
use yrd_call::FieldErrors;

use crate::decisions::licence_number;
use crate::service::*;

impl LicensingHandler {
    pub(crate) async fn get(
        &self,
        call: &mut Call,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<pb::GetApplicationResponse, CallError> {
        let caller = call.agency().clone();
        self.pilot(&caller)?;
        let mut e = FieldErrors::new();
        let id = e.application_id("name", &request.get_ref().name);
        let Some(id) = id else {
            return Err(CallError::Invalid(e));
        };
        let (stored, _) = self.visible(&id, &caller).await?;
        let mut view = full_view(&stored)?;
        self.as_of_now(&mut view, &stored)?;
        Ok(pb::GetApplicationResponse {
            application: Some(view),
        })
    }

    /// Re-derives the time-limit flags for today (a limit may have passed since the last write).
    pub(crate) fn as_of_now(
        &self,
        view: &mut pb::LicenceApplication,
        stored: &StoredApplication,
    ) -> Result<(), CallError> {
        let app = machine_of(stored)?;
        let today = china_date(self.clock.now());
        view.deadlines = view::deadlines(&app, &self.settings.rules, today);
        view.overdue = view::is_overdue(&app, today);
        Ok(())
    }

    pub(crate) async fn list(
        &self,
        call: &mut Call,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<pb::ListApplicationsResponse, CallError> {
        let caller = call.agency().clone();
        self.pilot(&caller)?;
        let (filter, limit, after) = crate::page::application_filter(caller, request.get_ref())?;
        let mut rows = self
            .store
            .list_applications(&filter, after.as_ref(), limit + 1)
            .await?;
        let next_page_token = crate::page::next_token(&mut rows, limit, |r| r.cursor());
        let mut applications = Vec::with_capacity(rows.len());
        for stored in &rows {
            let mut view = full_view(stored)?;
            self.as_of_now(&mut view, stored)?;
            applications.push(view);
        }
        Ok(pb::ListApplicationsResponse {
            applications,
            next_page_token,
        })
    }

    pub(crate) async fn get_licence_call(
        &self,
        call: &mut Call,
        request: Request<pb::GetLicenceRequest>,
    ) -> Result<pb::GetLicenceResponse, CallError> {
        let caller = call.agency().clone();
        self.pilot(&caller)?;
        let mut e = FieldErrors::new();
        let Some(number) = licence_number(&mut e, "name", &request.get_ref().name) else {
            return Err(CallError::Invalid(e));
        };
        let name = format!("licences/{number}");
        let stored = self
            .store
            .get_licence(&number.to_string())
            .await?
            .ok_or_else(|| CallError::NotFound(name.clone()))?;
        if stored.accepting_agency != caller && stored.issuing_agency != caller {
            return Err(CallError::Denied(format!(
                "{name} was issued through the exchange by {} for an application at {}; {caller} \
                 may not see it",
                stored.issuing_agency, stored.accepting_agency
            )));
        }
        let licence: pb::Licence = decode("licence", &stored.body)?;
        Ok(pb::GetLicenceResponse {
            licence: Some(view::licence_as_of(licence, china_date(self.clock.now()))),
        })
    }

    pub(crate) async fn list_licences_call(
        &self,
        call: &mut Call,
        request: Request<pb::ListLicencesRequest>,
    ) -> Result<pb::ListLicencesResponse, CallError> {
        let caller = call.agency().clone();
        self.pilot(&caller)?;
        let (filter, limit, after) = crate::page::licence_filter(caller, request.get_ref())?;
        let mut rows = self
            .store
            .list_licences(&filter, after.as_ref(), limit + 1)
            .await?;
        let next_page_token = crate::page::next_token(&mut rows, limit, |r| r.cursor());
        let today = china_date(self.clock.now());
        let licences = rows
            .iter()
            .map(|r| decode("licence", &r.body).map(|l| view::licence_as_of(l, today)))
            .collect::<Result<_, _>>()?;
        Ok(pb::ListLicencesResponse {
            licences,
            next_page_token,
        })
    }
}
