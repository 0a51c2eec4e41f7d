//! The `LicensingService` trait: each RPC delegates to its handler method.

use tonic::{Request, Response, Status};
use yrd_proto::v1::licensing_service_server::LicensingService;
use yrd_proto::v1::{self as pb};

use crate::service::*;

#[tonic::async_trait]
impl LicensingService for LicensingHandler {
    #[tracing::instrument(skip_all)]
    async fn submit_application(
        &self,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<Response<pb::SubmitApplicationResponse>, Status> {
        Ok(Response::new(self.submit(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::GetApplicationResponse>, Status> {
        Ok(Response::new(self.get(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        Ok(Response::new(self.list(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn accept_application(
        &self,
        request: Request<pb::AcceptApplicationRequest>,
    ) -> Result<Response<pb::AcceptApplicationResponse>, Status> {
        Ok(Response::new(self.accept(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn request_supplement(
        &self,
        request: Request<pb::RequestSupplementRequest>,
    ) -> Result<Response<pb::RequestSupplementResponse>, Status> {
        Ok(Response::new(
            LicensingHandler::request_supplement(self, request).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn supplement_application(
        &self,
        request: Request<pb::SupplementApplicationRequest>,
    ) -> Result<Response<pb::SupplementApplicationResponse>, Status> {
        Ok(Response::new(self.supplement(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn reject_application(
        &self,
        request: Request<pb::RejectApplicationRequest>,
    ) -> Result<Response<pb::RejectApplicationResponse>, Status> {
        Ok(Response::new(self.reject(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn start_review(
        &self,
        request: Request<pb::StartReviewRequest>,
    ) -> Result<Response<pb::StartReviewResponse>, Status> {
        Ok(Response::new(
            LicensingHandler::start_review(self, request).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn delegate_verification(
        &self,
        request: Request<pb::DelegateVerificationRequest>,
    ) -> Result<Response<pb::DelegateVerificationResponse>, Status> {
        Ok(Response::new(self.delegate(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn submit_verification_report(
        &self,
        request: Request<pb::SubmitVerificationReportRequest>,
    ) -> Result<Response<pb::SubmitVerificationReportResponse>, Status> {
        Ok(Response::new(self.report(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn record_testing(
        &self,
        request: Request<pb::RecordTestingRequest>,
    ) -> Result<Response<pb::RecordTestingResponse>, Status> {
        Ok(Response::new(
            LicensingHandler::record_testing(self, request).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn decide_application(
        &self,
        request: Request<pb::DecideApplicationRequest>,
    ) -> Result<Response<pb::DecideApplicationResponse>, Status> {
        Ok(Response::new(self.decide(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn extend_time_limit(
        &self,
        request: Request<pb::ExtendTimeLimitRequest>,
    ) -> Result<Response<pb::ExtendTimeLimitResponse>, Status> {
        Ok(Response::new(self.extend(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_conditions(
        &self,
        request: Request<pb::ConfirmConditionsRequest>,
    ) -> Result<Response<pb::ConfirmConditionsResponse>, Status> {
        Ok(Response::new(self.conditions_met(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn issue_licence(
        &self,
        request: Request<pb::IssueLicenceRequest>,
    ) -> Result<Response<pb::IssueLicenceResponse>, Status> {
        Ok(Response::new(self.issue(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn record_post_issue_check(
        &self,
        request: Request<pb::RecordPostIssueCheckRequest>,
    ) -> Result<Response<pb::RecordPostIssueCheckResponse>, Status> {
        Ok(Response::new(self.post_issue_check(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn change_licence(
        &self,
        request: Request<pb::ChangeLicenceRequest>,
    ) -> Result<Response<pb::ChangeLicenceResponse>, Status> {
        Ok(Response::new(
            LicensingHandler::change_licence(self, request).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn get_licence(
        &self,
        request: Request<pb::GetLicenceRequest>,
    ) -> Result<Response<pb::GetLicenceResponse>, Status> {
        Ok(Response::new(self.get_licence_call(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_licences(
        &self,
        request: Request<pb::ListLicencesRequest>,
    ) -> Result<Response<pb::ListLicencesResponse>, Status> {
        Ok(Response::new(self.list_licences_call(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_catalogue_products(
        &self,
        request: Request<pb::ListCatalogueProductsRequest>,
    ) -> Result<Response<pb::ListCatalogueProductsResponse>, Status> {
        Ok(Response::new(
            self.list_catalogue_products_call(request).await?,
        ))
    }
}
