//! Calls that must not care which replica answers: a token issued by one is accepted by every
//! other (the token signing keys are in the database, `services/admin/src/keyring.rs`), and a
//! write retried on another replica with the same `request_id` gets the first answer (the
//! stored answer, `docs/architecture.md` §"Storage").

use anyhow::{Context as _, bail, ensure};
use tonic::metadata::{Ascii, MetadataValue};
use yrd_bench::connect::{AGENCIES, failure};
use yrd_proto::v1 as pb;
use yrd_proto::v1::feed_service_client::FeedServiceClient;
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;
use yrd_proto::v1::token_service_client::TokenServiceClient;

use crate::cluster::{Cluster, publication};

/// Scenario 2: every replica publishes the same token keys, and a token issued by each is
/// accepted by every other on a connection with the same certificate.
pub(crate) async fn tokens_are_accepted_by_every_replica(cluster: &Cluster) -> anyhow::Result<()> {
    let agency = AGENCIES[2].0;
    let mut jwks = Vec::new();
    for (i, replica) in cluster.replicas.iter().enumerate() {
        let keys = TokenServiceClient::new(replica.target.channel(agency).await?)
            .get_jwks(pb::GetJwksRequest::default())
            .await
            .map_err(|s| anyhow::anyhow!("GetJwks on replica #{i}: {}", failure(&s)))?
            .into_inner();
        jwks.push(keys);
    }
    for (i, keys) in jwks.iter().enumerate().skip(1) {
        ensure!(
            *keys == jwks[0],
            "replica #{i} publishes other keys than replica #0: {keys:?} and {:?}",
            jwks[0]
        );
    }
    let mut accepted = 0;
    for (i, issuer) in cluster.replicas.iter().enumerate() {
        let token = TokenServiceClient::new(issuer.target.channel(agency).await?)
            .issue_token(pb::IssueTokenRequest::default())
            .await
            .map_err(|s| anyhow::anyhow!("IssueToken on replica #{i}: {}", failure(&s)))?
            .into_inner()
            .access_token;
        let bearer: MetadataValue<Ascii> = format!("Bearer {token}").parse()?;
        for (j, other) in cluster.replicas.iter().enumerate() {
            let channel = other.target.channel(agency).await?;
            let bearer = bearer.clone();
            let mut feed = FeedServiceClient::with_interceptor(
                channel,
                move |mut request: tonic::Request<()>| {
                    request
                        .metadata_mut()
                        .insert("authorization", bearer.clone());
                    Ok(request)
                },
            );
            feed.get_feed_position(pb::GetFeedPositionRequest {})
                .await
                .map_err(|s| {
                    anyhow::anyhow!(
                        "replica #{j} refused a token issued by replica #{i}: {}",
                        failure(&s)
                    )
                })?;
            accepted += 1;
        }
    }
    eprintln!(
        "tokens: {} replicas publish the same {} keys; {accepted} token × replica pairs \
         accepted",
        cluster.replicas.len(),
        jwks[0].keys.len()
    );
    Ok(())
}

/// Scenario 4: a publication acknowledged by replica #0 and sent again, with the same
/// `request_id` and body, to each other replica gets the first answer byte for byte; the same
/// publication sent to every replica at once is written once and every replica answers it the
/// same; the `request_id` reused with another body is refused wherever it lands.
pub(crate) async fn a_retry_on_another_replica_gets_the_first_answer(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let n = cluster.replicas.len();
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        clients.push(SpotCheckServiceClient::new(cluster.session(i, 3).await?));
    }

    // One after the other: the first answer, then retries elsewhere.
    let request = publication(3, 21, "replicas-retry-sequential");
    let first = clients[0]
        .clone()
        .publish_result(request.clone())
        .await
        .map_err(|s| anyhow::anyhow!("the first publish on replica #0: {}", failure(&s)))?
        .into_inner();
    for (i, client) in clients.iter().enumerate().skip(1) {
        let again = client
            .clone()
            .publish_result(request.clone())
            .await
            .map_err(|s| anyhow::anyhow!("the retry on replica #{i}: {}", failure(&s)))?
            .into_inner();
        ensure!(
            again == first,
            "the retry on replica #{i} answered {again:?}, but the first answer was {first:?}"
        );
    }

    // At once on every replica: one write, one answer.
    let request = publication(3, 22, "replicas-retry-concurrent");
    let answers = futures::future::join_all(clients.iter().map(|client| {
        let mut client = client.clone();
        let request = request.clone();
        async move { client.publish_result(request).await }
    }))
    .await;
    let mut answered = Vec::with_capacity(n);
    for (i, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(a) => answered.push(a.into_inner()),
            Err(s) => bail!(
                "the same publication sent to every replica at once: replica #{i} answered {}",
                failure(&s)
            ),
        }
    }
    for (i, answer) in answered.iter().enumerate().skip(1) {
        ensure!(
            *answer == answered[0],
            "sent at once, replica #{i} answered {answer:?} and replica #0 {:?}",
            answered[0]
        );
    }
    let name = answered[0]
        .result
        .as_ref()
        .map(|r| r.name.clone())
        .context("a publish answered no result")?;
    let found = clients[1]
        .clone()
        .search_results(pb::SearchResultsRequest {
            campaign_code: crate::cluster::CAMPAIGN.to_owned(),
            publisher_agency: format!("agencies/{}", AGENCIES[3].0),
            page_size: 100,
            ..Default::default()
        })
        .await
        .map_err(|s| anyhow::anyhow!("SearchResults: {}", failure(&s)))?
        .into_inner()
        .results
        .into_iter()
        .filter(|r| r.report_number == "replicas-retry-concurrent")
        .map(|r| r.name)
        .collect::<Vec<_>>();
    ensure!(
        found == [name.clone()],
        "the publication sent to every replica at once is stored as {found:?}, expected once \
         as {name}"
    );

    // The request id with another body: refused on every replica, naming the request id.
    let mut reused = publication(3, 23, "replicas-retry-sequential");
    if let Some(result) = reused.result.as_mut() {
        result.inspection_body = "另一检验机构".into();
    }
    for (i, client) in clients.iter().enumerate() {
        match client.clone().publish_result(reused.clone()).await {
            Ok(_) => bail!("replica #{i} accepted a reused request id with another body"),
            Err(s) => ensure!(
                s.code() != tonic::Code::Ok && s.message().contains("replicas-retry-sequential"),
                "replica #{i} refused a reused request id with {}, which does not name it",
                failure(&s)
            ),
        }
    }
    eprintln!(
        "idempotency: a retry on each of {} other replicas got the first answer; sent to {n} \
         replicas at once, one write ({name}) and {n} equal answers; a reused request id with \
         another body refused on every replica",
        n - 1
    );
    Ok(())
}
