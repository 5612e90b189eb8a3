"""Delivery routes: carriers' webhook, parcels and manifest; hand-over, tracking, pickup,
returns, refunds, statements; operators' carriers, jobs and ledger check."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool

from silkroute.api.auth import (
    Buyer,
    Operator,
    Seller,
    Uows,
    buyer_id_of,
    require_role,
    seller_id_of,
)
from silkroute.api.delivery_schemas import (
    CarrierAccountIn,
    CarrierAccountOut,
    CarrierIn,
    CarrierOut,
    CollectedOut,
    CollectIn,
    EventOutcomeOut,
    HandedOverOut,
    JobsIn,
    JobsOut,
    LedgerCheckOut,
    ManifestOut,
    ParcelOut,
    ParcelWithEvents,
    PayoutOut,
    PickupCodeOut,
    RefundIn,
    RefundRequestOut,
    ReleasedOut,
    ReturnReceivedOut,
    SecretOut,
    StatementOut,
    TrackingOut,
)
from silkroute.api.errors import ERROR_RESPONSES, NOT_FOUND, ErrorBody
from silkroute.api.routers.common import Limit, Offset, OrderIdPath, page_out
from silkroute.api.schemas import MAX_INT, Created, PageOut
from silkroute.domain.errors import DomainError
from silkroute.domain.parcels import BadSignature, StaleTimestamp
from silkroute.services import delivery, payments
from silkroute.services.accounts import Principal, Unauthenticated
from silkroute.services.jobs import JobSettings, run_jobs
from silkroute.services.ledger_check import check

router = APIRouter(tags=["delivery"], responses=ERROR_RESPONSES)
CarrierAccount = Annotated[Principal, Depends(require_role("carrier"))]
IdPath = Annotated[int, Path(ge=1, le=MAX_INT)]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Not possible in the order's current state."}}
WEBHOOK_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No carrier token, `bad_signature` or "
                                             "`stale_timestamp` (outside ±5 minutes)."},
    404: {"model": ErrorBody, "description": "No parcel with this tracking number of yours."}}


def install(app: FastAPI) -> None:
    """Metrics of the delivery routes on the app's registry."""
    app.state.webhook_rejections = Counter(
        "silkroute_webhook_rejections", "Carrier webhooks refused, by reason (error code).",
        ["reason"], registry=app.state.metrics.registry)


def _carrier_id(principal: Principal) -> int:
    assert principal.carrier_id is not None  # the accounts table guarantees it
    return principal.carrier_id


# ----------------------------------------------------------------------------- carriers
@router.post("/api/v1/carrier/events", response_model=EventOutcomeOut,
             responses=WEBHOOK_ERRORS,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {
                     "type": "object", "required": ["event_id", "tracking_number", "event"],
                     "properties": {
                         "event_id": {"type": "string", "maxLength": 100},
                         "tracking_number": {"type": "string", "maxLength": 40},
                         "event": {"type": "string", "enum": [
                             "picked_up", "in_transit", "out_for_delivery", "delivered",
                             "failed_attempt", "returned_to_sender", "lost"]},
                         "occurred_at": {"type": "string", "format": "date-time"},
                         "note": {"type": "string", "maxLength": 200}}}}}}},
             summary="Tracking event webhook, signed with the carrier's secret")
async def carrier_event(
    principal: CarrierAccount, uows: Uows, request: Request,
    timestamp: Annotated[str | None, Header(alias="X-Silkroute-Timestamp",
                                            description="Unix seconds.")] = None,
    signature: Annotated[str | None, Header(
        alias="X-Silkroute-Signature",
        description="sha256=<hex HMAC-SHA256(secret, timestamp + '.' + raw body)>")] = None,
) -> EventOutcomeOut:
    raw = await request.body()
    try:
        res = await run_in_threadpool(delivery.receive_event, uows, _carrier_id(principal),
                                      raw, timestamp, signature)
    except DomainError as exc:
        counter = getattr(request.app.state, "webhook_rejections", None)
        if counter is not None:
            counter.labels(reason=exc.code).inc()
        if isinstance(exc, BadSignature | StaleTimestamp):
            raise Unauthenticated(exc.message, field=exc.field, code=exc.code) from None
        raise
    return EventOutcomeOut(**{k: v for k, v in res.__dict__.items() if k != "refund_due"})


@router.get("/api/v1/carrier/parcels", response_model=PageOut[ParcelOut],
            summary="Parcels handed to me, newest first")
def my_parcels(principal: CarrierAccount, uows: Uows,
               state: Annotated[str | None, Query(pattern=r"^[a-z_]{1,24}$")] = None,
               limit: Limit = 20, offset: Offset = 0) -> dict[str, object]:
    return page_out(delivery.carrier_parcels(uows(), _carrier_id(principal), state, limit,
                                             offset))


@router.get("/api/v1/carrier/parcels/{parcel_id}", response_model=ParcelWithEvents,
            responses=NOT_FOUND, summary="One of my parcels with its events")
def my_parcel(principal: CarrierAccount, uows: Uows, parcel_id: IdPath) -> dict[str, Any]:
    return delivery.carrier_parcel(uows(), _carrier_id(principal), parcel_id)


@router.get("/api/v1/carrier/manifest", response_model=ManifestOut,
            summary="My daily manifest: parcels handed to me on a day, by pick-up location")
def my_manifest(principal: CarrierAccount, uows: Uows,
                day: Annotated[date | None, Query(alias="date",
                                                  description="YYYY-MM-DD, UTC; default "
                                                              "today.")] = None
                ) -> dict[str, Any]:
    return delivery.manifest(uows(), _carrier_id(principal), day)


# ------------------------------------------------------------------------------ sellers
@router.post("/api/v1/seller/orders/{order_id}/hand-over", response_model=HandedOverOut,
             responses={**NOT_FOUND, **CONFLICT},
             summary="Hand a paid order to the carrier: one parcel per shipping location")
def hand_over(principal: Seller, uows: Uows, order_id: OrderIdPath) -> HandedOverOut:
    res = delivery.hand_over(uows(), seller_id_of(principal), order_id)
    return HandedOverOut(order_id=res.order_id, state=res.state,
                         parcels=[ParcelOut(**p) for p in res.parcels])


@router.get("/api/v1/seller/orders/{order_id}/tracking", response_model=TrackingOut,
            responses=NOT_FOUND, summary="An order of my shop: parcels and their events")
def seller_tracking(principal: Seller, uows: Uows, order_id: OrderIdPath) -> dict[str, Any]:
    return delivery.tracking(uows(), order_id, seller_id=seller_id_of(principal))


@router.get("/api/v1/seller/refunds", response_model=PageOut[RefundRequestOut],
            summary="Buyers' refund requests on my orders (state=pending: to decide)")
def refunds_to_decide(principal: Seller, uows: Uows,
                      state: Annotated[str | None, Query(pattern=r"^[a-z]{1,16}$")] = None,
                      limit: Limit = 20, offset: Offset = 0) -> dict[str, object]:
    return page_out(delivery.refund_requests(uows(), seller_id_of(principal), state, limit,
                                             offset))


@router.post("/api/v1/seller/refunds/{request_id}/approve", response_model=RefundRequestOut,
             responses={**NOT_FOUND, **CONFLICT},
             summary="Approve a refund request: the buyer is refunded")
def approve_refund(principal: Seller, uows: Uows, request_id: IdPath) -> dict[str, Any]:
    return delivery.decide_refund(uows, seller_id_of(principal), request_id, approve=True)


@router.post("/api/v1/seller/refunds/{request_id}/reject", response_model=RefundRequestOut,
             responses={**NOT_FOUND, **CONFLICT}, summary="Reject a refund request")
def reject_refund(principal: Seller, uows: Uows, request_id: IdPath) -> dict[str, Any]:
    return delivery.decide_refund(uows, seller_id_of(principal), request_id, approve=False)


@router.post("/api/v1/seller/returns/{order_id}/receive", response_model=ReturnReceivedOut,
             responses={**NOT_FOUND, **CONFLICT},
             summary="I have the returned parcels back: restock them, refund the buyer")
def receive_return(principal: Seller, uows: Uows, order_id: OrderIdPath
                   ) -> ReturnReceivedOut:
    res = delivery.receive_return(uows, seller_id_of(principal), order_id)
    return ReturnReceivedOut(**res.__dict__)


@router.post("/api/v1/seller/pickups/{order_id}/collect", response_model=CollectedOut,
             responses={**NOT_FOUND, **CONFLICT},
             summary="At my store: check the buyer's pickup code and hand the goods over")
def collect(principal: Seller, uows: Uows, order_id: OrderIdPath, body: CollectIn
            ) -> CollectedOut:
    res = delivery.collect(uows, seller_id_of(principal), order_id, body.code)
    return CollectedOut(**res.__dict__)


@router.get("/api/v1/seller/statement", response_model=StatementOut,
            summary="My payable balance and its ledger postings, newest first")
def my_statement(principal: Seller, uows: Uows, limit: Limit = 20, offset: Offset = 0
                 ) -> dict[str, Any]:
    return delivery.statement(uows(), seller_id_of(principal), limit, offset)


@router.get("/api/v1/seller/payouts", response_model=PageOut[PayoutOut],
            summary="Payouts to me, newest first")
def my_payouts(principal: Seller, uows: Uows, limit: Limit = 20, offset: Offset = 0
               ) -> dict[str, object]:
    return page_out(delivery.payouts_of_seller(uows(), seller_id_of(principal), limit,
                                               offset))


# ------------------------------------------------------------------------------- buyers
@router.get("/api/v1/buyer/orders/{order_id}/tracking", response_model=TrackingOut,
            responses=NOT_FOUND, summary="Where my order is: parcels and their events")
def buyer_tracking(principal: Buyer, uows: Uows, order_id: OrderIdPath) -> dict[str, Any]:
    return delivery.tracking(uows(), order_id, buyer_id=buyer_id_of(principal))


@router.post("/api/v1/buyer/orders/{order_id}/confirm", response_model=ReleasedOut,
             responses={**NOT_FOUND, **CONFLICT},
             summary="I have the goods: the escrow is released to the seller and carrier")
def confirm(principal: Buyer, uows: Uows, order_id: OrderIdPath) -> ReleasedOut:
    res = payments.confirm_receipt(uows(), order_id, buyer_id=buyer_id_of(principal))
    return ReleasedOut(order_id=res.order_id, hold=res.hold, seller=res.seller,
                       carrier=res.carrier, platform=res.platform, currency=res.currency)


@router.post("/api/v1/buyer/orders/{order_id}/refund", response_model=RefundRequestOut,
             status_code=201, responses={**NOT_FOUND, **CONFLICT},
             summary="Ask for money back (refunded at once before hand-over)")
def ask_refund(principal: Buyer, uows: Uows, order_id: OrderIdPath,
               body: RefundIn | None = None) -> dict[str, Any]:
    return delivery.request_refund(uows, buyer_id_of(principal), order_id,
                                   body.amount if body else None, body.reason if body else "")


@router.get("/api/v1/buyer/orders/{order_id}/pickup-code", response_model=PickupCodeOut,
            responses={**NOT_FOUND, **CONFLICT},
            summary="My pickup code, once the order is at the pickup point")
def my_pickup_code(principal: Buyer, uows: Uows, order_id: OrderIdPath) -> dict[str, Any]:
    return delivery.pickup_code_of(uows(), buyer_id_of(principal), order_id)


# ---------------------------------------------------------------------------- operators
@router.get("/api/v1/operator/carriers", response_model=PageOut[CarrierOut],
            summary="Contracted carriers")
def carriers(principal: Operator, uows: Uows, limit: Limit = 20, offset: Offset = 0
             ) -> dict[str, object]:
    return page_out(delivery.list_carriers(uows(), limit, offset))


@router.post("/api/v1/operator/carriers", response_model=Created, status_code=201,
             responses=CONFLICT, summary="Contract a carrier")
def new_carrier(principal: Operator, uows: Uows, body: CarrierIn) -> Created:
    return Created(id=delivery.register_carrier(
        uows(), body.name, carrier_id=body.id, daily_capacity=body.daily_capacity,
        base_fee=body.base_fee, per_kg=body.per_kg, tier=body.tier))


@router.post("/api/v1/operator/carriers/{carrier_id}/accounts",
             response_model=CarrierAccountOut, status_code=201, responses=NOT_FOUND,
             summary="An API account for a carrier (token and webhook secret shown once)")
def new_carrier_account(principal: Operator, uows: Uows, carrier_id: IdPath,
                        body: CarrierAccountIn | None = None) -> CarrierAccountOut:
    res = delivery.create_carrier_account(uows(), carrier_id, body.name if body else None)
    return CarrierAccountOut(account_id=res.account_id, carrier_id=res.carrier_id,
                             token=res.token.token, token_id=res.token.token_id,
                             webhook_secret=res.webhook_secret)


@router.post("/api/v1/operator/carriers/{carrier_id}/webhook-secret", response_model=SecretOut,
             status_code=201, responses=NOT_FOUND,
             summary="Rotate a carrier's webhook secret")
def rotate_secret(principal: Operator, uows: Uows, carrier_id: IdPath) -> SecretOut:
    return SecretOut(carrier_id=carrier_id,
                     webhook_secret=delivery.rotate_webhook_secret(uows(), carrier_id))


@router.post("/api/v1/operator/jobs/run", response_model=JobsOut,
             summary="Run the periodic jobs now: expiry, pickups, auto-confirm, payouts")
def jobs_run(principal: Operator, uows: Uows, body: JobsIn | None = None) -> dict[str, Any]:
    only = tuple(body.only) if body and body.only else None
    return run_jobs(uows, JobSettings.from_env(), only=only).as_dict()


@router.get("/api/v1/operator/ledger/check", response_model=LedgerCheckOut,
            summary="Check every invariant of the ledger")
def ledger_check(principal: Operator, uows: Uows) -> LedgerCheckOut:
    res = check(uows())
    return LedgerCheckOut(ok=res.ok, violations=list(res.violations),
                          transactions=res.transactions, postings=res.postings,
                          accounts=res.accounts)
