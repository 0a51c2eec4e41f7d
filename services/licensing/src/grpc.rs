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
        Call::serve(request, async |call, request| {
            self.submit(call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, name = %request.get_ref().name)
    )]
    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::GetApplicationResponse>, Status> {
        Call::serve(request, async |call, request| self.get(call, request).await).await
    }

    #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.list(call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn accept_application(
        &self,
        request: Request<pb::AcceptApplicationRequest>,
    ) -> Result<Response<pb::AcceptApplicationResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.accept(call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn request_supplement(
        &self,
        request: Request<pb::RequestSupplementRequest>,
    ) -> Result<Response<pb::RequestSupplementResponse>, Status> {
        Call::serve(request, async |call, request| {
            LicensingHandler::request_supplement(self, call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn supplement_application(
        &self,
        request: Request<pb::SupplementApplicationRequest>,
    ) -> Result<Response<pb::SupplementApplicationResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.supplement(call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn reject_application(
        &self,
        request: Request<pb::RejectApplicationRequest>,
    ) -> Result<Response<pb::RejectApplicationResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.reject(call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn start_review(
        &self,
        request: Request<pb::StartReviewRequest>,
    ) -> Result<Response<pb::StartReviewResponse>, Status> {
        Call::serve(request, async |call, request| {
            LicensingHandler::start_review(self, call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn delegate_verification(
        &self,
        request: Request<pb::DelegateVerificationRequest>,
    ) -> Result<Response<pb::DelegateVerificationResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.delegate(call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn submit_verification_report(
        &self,
        request: Request<pb::SubmitVerificationReportRequest>,
    ) -> Result<Response<pb::SubmitVerificationReportResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.report(call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn record_testing(
        &self,
        request: Request<pb::RecordTestingRequest>,
    ) -> Result<Response<pb::RecordTestingResponse>, Status> {
        Call::serve(request, async |call, request| {
            LicensingHandler::record_testing(self, call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn decide_application(
        &self,
        request: Request<pb::DecideApplicationRequest>,
    ) -> Result<Response<pb::DecideApplicationResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.decide(call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn extend_time_limit(
        &self,
        request: Request<pb::ExtendTimeLimitRequest>,
    ) -> Result<Response<pb::ExtendTimeLimitResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.extend(call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn confirm_conditions(
        &self,
        request: Request<pb::ConfirmConditionsRequest>,
    ) -> Result<Response<pb::ConfirmConditionsResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.conditions_met(call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn issue_licence(
        &self,
        request: Request<pb::IssueLicenceRequest>,
    ) -> Result<Response<pb::IssueLicenceResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.issue(call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn record_post_issue_check(
        &self,
        request: Request<pb::RecordPostIssueCheckRequest>,
    ) -> Result<Response<pb::RecordPostIssueCheckResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.post_issue_check(call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn change_licence(
        &self,
        request: Request<pb::ChangeLicenceRequest>,
    ) -> Result<Response<pb::ChangeLicenceResponse>, Status> {
        Call::serve(request, async |call, request| {
            LicensingHandler::change_licence(self, call, request).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, name = %request.get_ref().name)
    )]
    async fn get_licence(
        &self,
        request: Request<pb::GetLicenceRequest>,
    ) -> Result<Response<pb::GetLicenceResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.get_licence_call(call, request).await
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
    async fn list_licences(
        &self,
        request: Request<pb::ListLicencesRequest>,
    ) -> Result<Response<pb::ListLicencesResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.list_licences_call(call, request).await
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
    async fn list_catalogue_products(
        &self,
        request: Request<pb::ListCatalogueProductsRequest>,
    ) -> Result<Response<pb::ListCatalogueProductsResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.list_catalogue_products_call(call, request).await
        })
        .await
    }
}
