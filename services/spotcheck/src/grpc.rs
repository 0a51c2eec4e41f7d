//! The `SpotCheckService` trait: each RPC takes its [`Call`] and delegates to its handler
//! method in [`crate::service`].

use tonic::{Request, Response, Status};
use yrd_call::Call;
use yrd_proto::v1::spot_check_service_server::SpotCheckService;
use yrd_proto::v1::{
    CorrectResultRequest, CorrectResultResponse, GetResultRequest, GetResultResponse,
    PublishResultRequest, PublishResultResponse, SearchResultsRequest, SearchResultsResponse,
    WithdrawResultRequest, WithdrawResultResponse,
};

use crate::service::SpotCheckHandler;

#[tonic::async_trait]
impl SpotCheckService for SpotCheckHandler {
    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id)
    )]
    async fn publish_result(
        &self,
        request: Request<PublishResultRequest>,
    ) -> Result<Response<PublishResultResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.publish(call, request.into_inner()).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn correct_result(
        &self,
        request: Request<CorrectResultRequest>,
    ) -> Result<Response<CorrectResultResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.correct(call, request.into_inner()).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn withdraw_result(
        &self,
        request: Request<WithdrawResultRequest>,
    ) -> Result<Response<WithdrawResultResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.withdraw(call, request.into_inner()).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, name = %request.get_ref().name)
    )]
    async fn get_result(
        &self,
        request: Request<GetResultRequest>,
    ) -> Result<Response<GetResultResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.get(call, request.into_inner()).await
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
    async fn search_results(
        &self,
        request: Request<SearchResultsRequest>,
    ) -> Result<Response<SearchResultsResponse>, Status> {
        Call::serve(request, async |_, request| {
            self.search(request.into_inner()).await
        })
        .await
    }
}
