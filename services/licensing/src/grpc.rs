//! The `LicensingService` trait: each RPC delegates to its handler method.

use yrd_proto::v1::licensing_service_server::LicensingService;
use yrd_proto::v1::{self as pb};

use crate::service::*;

yrd_call::serve_rpcs! {
    impl LicensingService for LicensingHandler {
        #[tracing::instrument(
            skip_all,
            fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id)
        )]
        fn submit_application(
            &self,
            call,
            request: pb::SubmitApplicationRequest,
        ) -> pb::SubmitApplicationResponse {
            self.submit(call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(agency = tracing::field::Empty, name = %request.get_ref().name)
        )]
        fn get_application(
            &self,
            call,
            request: pb::GetApplicationRequest,
        ) -> pb::GetApplicationResponse {
            self.get(call, request).await
        }

        #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
        fn list_applications(
            &self,
            call,
            request: pb::ListApplicationsRequest,
        ) -> pb::ListApplicationsResponse {
            self.list(call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn accept_application(
            &self,
            call,
            request: pb::AcceptApplicationRequest,
        ) -> pb::AcceptApplicationResponse {
            self.accept(call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn request_supplement(
            &self,
            call,
            request: pb::RequestSupplementRequest,
        ) -> pb::RequestSupplementResponse {
            LicensingHandler::request_supplement(self, call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn supplement_application(
            &self,
            call,
            request: pb::SupplementApplicationRequest,
        ) -> pb::SupplementApplicationResponse {
            self.supplement(call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn reject_application(
            &self,
            call,
            request: pb::RejectApplicationRequest,
        ) -> pb::RejectApplicationResponse {
            self.reject(call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn start_review(&self, call, request: pb::StartReviewRequest) -> pb::StartReviewResponse {
            LicensingHandler::start_review(self, call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn delegate_verification(
            &self,
            call,
            request: pb::DelegateVerificationRequest,
        ) -> pb::DelegateVerificationResponse {
            self.delegate(call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn submit_verification_report(
            &self,
            call,
            request: pb::SubmitVerificationReportRequest,
        ) -> pb::SubmitVerificationReportResponse {
            self.report(call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn record_testing(
            &self,
            call,
            request: pb::RecordTestingRequest,
        ) -> pb::RecordTestingResponse {
            LicensingHandler::record_testing(self, call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn decide_application(
            &self,
            call,
            request: pb::DecideApplicationRequest,
        ) -> pb::DecideApplicationResponse {
            self.decide(call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn extend_time_limit(
            &self,
            call,
            request: pb::ExtendTimeLimitRequest,
        ) -> pb::ExtendTimeLimitResponse {
            self.extend(call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn confirm_conditions(
            &self,
            call,
            request: pb::ConfirmConditionsRequest,
        ) -> pb::ConfirmConditionsResponse {
            self.conditions_met(call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn issue_licence(
            &self,
            call,
            request: pb::IssueLicenceRequest,
        ) -> pb::IssueLicenceResponse {
            self.issue(call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn record_post_issue_check(
            &self,
            call,
            request: pb::RecordPostIssueCheckRequest,
        ) -> pb::RecordPostIssueCheckResponse {
            self.post_issue_check(call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(
                agency = tracing::field::Empty,
                request_id = %request.get_ref().request_id,
                name = %request.get_ref().name,
            )
        )]
        fn change_licence(
            &self,
            call,
            request: pb::ChangeLicenceRequest,
        ) -> pb::ChangeLicenceResponse {
            LicensingHandler::change_licence(self, call, request).await
        }

        #[tracing::instrument(
            skip_all,
            fields(agency = tracing::field::Empty, name = %request.get_ref().name)
        )]
        fn get_licence(&self, call, request: pb::GetLicenceRequest) -> pb::GetLicenceResponse {
            self.get_licence_call(call, request).await
        }

        #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
        fn list_licences(
            &self,
            call,
            request: pb::ListLicencesRequest,
        ) -> pb::ListLicencesResponse {
            self.list_licences_call(call, request).await
        }

        #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
        fn list_catalogue_products(
            &self,
            call,
            request: pb::ListCatalogueProductsRequest,
        ) -> pb::ListCatalogueProductsResponse {
            self.list_catalogue_products_call(call, request).await
        }
    }
}
