"""Interoperability: a partner system written in Python with grpcio, its stubs generated from
`proto/` by grpcio-tools, drives the exchange over mTLS with certificate-bound tokens.

Shanghai's system publishes a non-conforming result whose producer lies in Shandong, finds it
with SearchResults, and Shandong's system, subscribed to its feed, sees the referral the
exchange opened and acknowledges it (送达). Nothing here uses the Rust client code: only the
contract, the dev PKI and what a partner reads in the README.
"""

import queue
import threading
import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest

SHANGHAI = "310000-SAMR"
SHANDONG = "370000-AMR"
# How long a test waits for what should come at once (a feed event); only a hung test waits
# that long.
PROMPT_S = 30
# China Standard Time: calendar dates in the contract are dates there.
CST = timezone(timedelta(hours=8))

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def uscc(region: str, serial: int) -> str:
    """A valid unified social credit code (GB 32100-2015) of an enterprise registered in
    `region` (six digits), with its check character."""
    body = f"91{region}{serial:09d}"
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(body, USCC_WEIGHTS))
    return body + USCC_CHARSET[(31 - total % 31) % 31]


def china_date(days_ago: int) -> str:
    return (datetime.now(CST).date() - timedelta(days=days_ago)).isoformat()


def request_id() -> str:
    return str(uuid.uuid4())


class Partner:
    """One agency's system: a channel over its certificate and a token bound to it."""

    def __init__(self, exchange, v1, agency: str, officer: str):
        self.v1 = v1
        self.agency = agency
        self.channel = exchange.channel(agency)
        token_service = v1.token_pb2_grpc.TokenServiceStub(self.channel)
        self.token = token_service.IssueToken(
            v1.token_pb2.IssueTokenRequest(officer=officer), timeout=PROMPT_S
        )
        self.metadata = (("authorization", f"Bearer {self.token.access_token}"),)
        self.results = v1.spotcheck_pb2_grpc.SpotCheckServiceStub(self.channel)
        self.feed = v1.feed_pb2_grpc.FeedServiceStub(self.channel)
        self.disposal = v1.disposal_pb2_grpc.DisposalServiceStub(self.channel)

    def close(self):
        self.channel.close()


@pytest.fixture
def shanghai(exchange, stubs):
    partner = Partner(exchange, stubs, SHANGHAI, "SH-ZF-0001")
    yield partner
    partner.close()


@pytest.fixture
def shandong(exchange, stubs):
    partner = Partner(exchange, stubs, SHANDONG, "37010012345")
    yield partner
    partner.close()


def sample_result(v1, producer_uscc: str):
    """A non-conforming online purchase of a toy made in Jinan (Shandong), sold by a shop in
    Shanghai, sampled and reported in the last weeks."""
    common, spotcheck = v1.common_pb2, v1.spotcheck_pb2
    return spotcheck.SpotCheckResult(
        product=spotcheck.Product(
            name="儿童塑料玩具车",
            trademark="/",
            model="XK-1",
            production_date=china_date(70),
            batch_number="B1",
            category="儿童玩具",
        ),
        producer=common.Party(
            name="某玩具有限公司", uscc=producer_uscc, address="某路1号", region_code="370102"
        ),
        seller=spotcheck.Seller(
            name="某商贸有限公司",
            uscc=uscc("310104", 8),
            region_code="310104",
            platform="某电商平台",
            shop_name="某玩具旗舰店",
            shop_url="https://shop.example.com/toys?id=1",
        ),
        sampling_way=spotcheck.SAMPLING_WAY_ONLINE_PURCHASE,
        sampling_date=china_date(28),
        inspection_body="上海市质量监督检验技术研究院",
        report_number="SQI-2024-00123",
        report_date=china_date(14),
        standards=["GB 6675.1-2014"],
        test_items=[
            spotcheck.TestItem(
                name="增塑剂",
                requirement="≤ 0.1 %",
                measured_value="0.35",
                unit="%",
                verdict=common.VERDICT_NON_CONFORMING,
                is_safety_item=True,
            )
        ],
        verdict=common.VERDICT_NON_CONFORMING,
        failed_items=["增塑剂"],
        campaign=spotcheck.Campaign(
            code="SH-2024-01",
            name="2024年儿童玩具网络销售抽查",
            kind=spotcheck.CAMPAIGN_KIND_PROVINCIAL,
            product_kind="儿童玩具",
        ),
    )


def assert_receipt(receipt):
    assert len(receipt.leaf_hash) == 32, receipt
    assert receipt.signature, receipt
    assert receipt.key_id, receipt


class FeedReader:
    """A `FeedService.Subscribe` stream read on a thread into a queue, so the test can wait
    for an event with a deadline."""

    def __init__(self, partner: Partner):
        self.call = partner.feed.Subscribe(partner.v1.feed_pb2.SubscribeRequest(), metadata=partner.metadata)
        self.messages: "queue.Queue[object]" = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for message in self.call:
                self.messages.put(message)
        except grpc.RpcError as error:
            self.messages.put(error)

    def next_event(self, wanted):
        """The next event for which `wanted` holds, skipping heartbeats and other events."""
        while True:
            try:
                message = self.messages.get(timeout=PROMPT_S)
            except queue.Empty:
                pytest.fail(f"no wanted feed event within {PROMPT_S} s")
            if isinstance(message, grpc.RpcError):
                pytest.fail(f"the feed stream failed: {message.code()} {message.details()}")
            if message.WhichOneof("kind") == "event" and wanted(message.event):
                return message.event

    def close(self):
        self.call.cancel()
        self.thread.join(timeout=PROMPT_S)


def test_tokens_are_bound_to_their_certificate(exchange, stubs, shanghai, shandong):
    v1 = stubs
    token = shanghai.token
    assert token.token_type == "Bearer"
    assert 0 < token.expires_in_seconds <= 600
    assert token.access_token.count(".") == 2, "a JWT"
    position = v1.feed_pb2.GetFeedPositionRequest()

    shanghai.feed.GetFeedPosition(position, metadata=shanghai.metadata, timeout=PROMPT_S)

    with pytest.raises(grpc.RpcError) as no_token:
        shanghai.feed.GetFeedPosition(position, timeout=PROMPT_S)
    assert no_token.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # Shanghai's token over Shandong's connection: bound to another certificate.
    with pytest.raises(grpc.RpcError) as stolen:
        shandong.feed.GetFeedPosition(position, metadata=shanghai.metadata, timeout=PROMPT_S)
    assert stolen.value.code() == grpc.StatusCode.UNAUTHENTICATED

    jwks = v1.token_pb2_grpc.TokenServiceStub(shandong.channel).GetJwks(
        v1.token_pb2.GetJwksRequest(), timeout=PROMPT_S
    )
    assert token.key_id in {key.kid for key in jwks.keys}


def test_publish_search_feed_and_acknowledge(stubs, shanghai, shandong):
    v1 = stubs
    spotcheck, disposal, feed = v1.spotcheck_pb2, v1.disposal_pb2, v1.feed_pb2
    producer = uscc("370102", int(uuid.uuid4().int % 10**9))
    # Both feeds are read live: Shandong's tells it of the referral, Shanghai's of the step
    # Shandong takes on it.
    handler_feed = FeedReader(shandong)
    sampler_feed = FeedReader(shanghai)
    try:
        publish = spotcheck.PublishResultRequest(request_id=request_id(), result=sample_result(v1, producer))
        published = shanghai.results.PublishResult(publish, metadata=shanghai.metadata, timeout=PROMPT_S)
        assert published.result.name.startswith("results/")
        assert published.result.version == 1
        assert published.result.publisher_agency == f"agencies/{SHANGHAI}"
        assert_receipt(published.receipt)
        assert len(published.opened_referrals) == 1, published
        referral_name = published.opened_referrals[0]

        # A retry with the same request id answers the first answer, receipt included.
        again = shanghai.results.PublishResult(publish, metadata=shanghai.metadata, timeout=PROMPT_S)
        assert again.result.name == published.result.name
        assert again.receipt.leaf_hash == published.receipt.leaf_hash

        found = shanghai.results.SearchResults(
            spotcheck.SearchResultsRequest(producer_uscc=producer), metadata=shanghai.metadata, timeout=PROMPT_S
        )
        assert [r.name for r in found.results] == [published.result.name]
        assert found.results[0].producer.uscc == producer

        event = handler_feed.next_event(
            lambda e: e.event_type == feed.EVENT_TYPE_REFERRAL_OPENED and e.resource_name == referral_name
        )
        assert event.WhichOneof("resource") == "referral"
        assert event.referral.result == published.result.name
        assert event.referral.handling_agency == f"agencies/{SHANDONG}"
        assert event.referral.state == disposal.REFERRAL_STATE_OPENED

        acknowledged = shandong.disposal.AcknowledgeReferral(
            disposal.AcknowledgeReferralRequest(request_id=request_id(), name=referral_name, note="SD-2024-0001"),
            metadata=shandong.metadata,
            timeout=PROMPT_S,
        )
        assert acknowledged.referral.state == disposal.REFERRAL_STATE_DELIVERED
        assert_receipt(acknowledged.receipt)

        # Shandong has processed the event: it stores its position.
        acked = shandong.feed.Ack(feed.AckRequest(cursor=event.cursor), metadata=shandong.metadata, timeout=PROMPT_S)
        assert acked.acked_cursor == event.cursor
        assert_receipt(acked.receipt)

        step = sampler_feed.next_event(
            lambda e: e.event_type == feed.EVENT_TYPE_REFERRAL_UPDATED and e.resource_name == referral_name
        )
        assert step.referral_step_kind == disposal.REFERRAL_STEP_KIND_ACKNOWLEDGED
        assert step.referral.state == disposal.REFERRAL_STATE_DELIVERED
        assert step.actor_agency == f"agencies/{SHANDONG}"
    finally:
        handler_feed.close()
        sampler_feed.close()

    seen_by_sampler = shanghai.disposal.GetReferral(
        disposal.GetReferralRequest(name=referral_name), metadata=shanghai.metadata, timeout=PROMPT_S
    )
    assert seen_by_sampler.referral.state == disposal.REFERRAL_STATE_DELIVERED
