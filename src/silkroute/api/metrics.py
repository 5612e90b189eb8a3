"""Prometheus metrics of one app: orders, payments, checkout and routing-decision latency,
errors by code (the webhook rejections are added by the delivery router)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class ApiMetrics:
    """Metrics on a registry of the app's own, so several apps never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.orders_created = Counter(
            "silkroute_orders_created", "Orders created by checkouts.", registry=self.registry)
        self.checkout_seconds = Histogram(
            "silkroute_checkout_seconds", "Time to check out a cart, successful or not.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry)
        self.routing_decision_seconds = Histogram(
            "silkroute_routing_decision_seconds",
            "Time the fulfilment policy took to route one seller's order at checkout.",
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                     0.05),
            registry=self.registry)
        self.payments = Counter(
            "silkroute_payments", "Payments over the API by outcome (captured, failed).",
            ["outcome"], registry=self.registry)
        self.buy_now_group_size = Histogram(
            "silkroute_buy_now_group_size",
            "Buy-now requests a worker ran together (group commit), per group.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)
        self.errors = Counter(
            "silkroute_api_errors", "Error responses by stable error code and HTTP status.",
            ["code", "status"], registry=self.registry)
