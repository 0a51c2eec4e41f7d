//! The `LicensingService` trait: each RPC delegates to its handler method.

use tonic::{Request, Response, Status};
use yrd_call::Call;
use yrd_proto::v1::licensing_service_server::LicensingService;
use yrd_proto::v1::{self as pb};

use crate::service::*;

#[tonic::async_trait]
impl LicensingService for LicensingHandler {
    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id)
    )]
    async fn submit_application(
        &self,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<Response<pb::SubmitApplicationResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.submit(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, name = %request.get_ref().name)
    )]
    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::GetApplicationResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.get(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.list(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn accept_application(
        &self,
        request: Request<pb::AcceptApplicationRequest>,
    ) -> Result<Response<pb::AcceptApplicationResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.accept(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn request_supplement(
        &self,
        request: Request<pb::RequestSupplementRequest>,
    ) -> Result<Response<pb::RequestSupplementResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = LicensingHandler::request_supplement(self, &mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn supplement_application(
        &self,
        request: Request<pb::SupplementApplicationRequest>,
    ) -> Result<Response<pb::SupplementApplicationResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.supplement(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn reject_application(
        &self,
        request: Request<pb::RejectApplicationRequest>,
    ) -> Result<Response<pb::RejectApplicationResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.reject(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn start_review(
        &self,
        request: Request<pb::StartReviewRequest>,
    ) -> Result<Response<pb::StartReviewResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = LicensingHandler::start_review(self, &mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn delegate_verification(
        &self,
        request: Request<pb::DelegateVerificationRequest>,
    ) -> Result<Response<pb::DelegateVerificationResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.delegate(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn submit_verification_report(
        &self,
        request: Request<pb::SubmitVerificationReportRequest>,
    ) -> Result<Response<pb::SubmitVerificationReportResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.report(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn record_testing(
        &self,
        request: Request<pb::RecordTestingRequest>,
    ) -> Result<Response<pb::RecordTestingResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = LicensingHandler::record_testing(self, &mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn decide_application(
        &self,
        request: Request<pb::DecideApplicationRequest>,
    ) -> Result<Response<pb::DecideApplicationResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.decide(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn extend_time_limit(
        &self,
        request: Request<pb::ExtendTimeLimitRequest>,
    ) -> Result<Response<pb::ExtendTimeLimitResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.extend(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn confirm_conditions(
        &self,
        request: Request<pb::ConfirmConditionsRequest>,
    ) -> Result<Response<pb::ConfirmConditionsResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.conditions_met(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn issue_licence(
        &self,
        request: Request<pb::IssueLicenceRequest>,
    ) -> Result<Response<pb::IssueLicenceResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.issue(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn record_post_issue_check(
        &self,
        request: Request<pb::RecordPostIssueCheckRequest>,
    ) -> Result<Response<pb::RecordPostIssueCheckResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.post_issue_check(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn change_licence(
        &self,
        request: Request<pb::ChangeLicenceRequest>,
    ) -> Result<Response<pb::ChangeLicenceResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = LicensingHandler::change_licence(self, &mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, name = %request.get_ref().name)
    )]
    async fn get_licence(
        &self,
        request: Request<pb::GetLicenceRequest>,
    ) -> Result<Response<pb::GetLicenceResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.get_licence_call(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
    async fn list_licences(
        &self,
        request: Request<pb::ListLicencesRequest>,
    ) -> Result<Response<pb::ListLicencesResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.list_licences_call(&mut call, request).await;
        call.respond(result)
    }

    #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
    async fn list_catalogue_products(
        &self,
        request: Request<pb::ListCatalogueProductsRequest>,
    ) -> Result<Response<pb::ListCatalogueProductsResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.list_catalogue_products_call(&mut call, request).await;
        call.respond(result)
    }
}
