"""The service's Prometheus metrics, defined once; ``gateway.web`` serves them at /metrics.

Each part of the service counts what it does here (prometheus-client keeps the values in the
process); nothing below the web package knows how they are exposed.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MAILS = Counter("ticketgate_mails", "Mails and API submissions through the pipeline, by outcome",
                ["outcome", "source"])
STAGE_SECONDS = Histogram(
    "ticketgate_stage_seconds", "Time one mail spends in each pipeline stage", ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
OUTBOX = Counter("ticketgate_outbox_mails", "Outbound mails handed over, retried or failed",
                 ["outcome"])
OUTBOX_BACKLOG = Gauge("ticketgate_outbox_backlog",
                       "Outbound mails not yet handed over: due now, waiting to retry, being sent "
                       "(read from the database at each scrape)", ["state"])
OUTBOX_OLDEST_DUE = Gauge("ticketgate_outbox_oldest_due_seconds",
                          "How long the longest-waiting due outbound mail has been due (0: none)")
WEBHOOKS = Counter("ticketgate_webhook_deliveries",
                   "Webhook deliveries acknowledged (sent), to retry, or failed for good",
                   ["webhook", "outcome"])
IMAP_RECONNECTS = Counter("ticketgate_imap_reconnects",
                          "IMAP connections made again after a fault or a lost connection", ["mailbox"])
HTTP_REQUESTS = Counter("ticketgate_http_requests", "HTTP requests by route and status",
                        ["method", "route", "status"])
HTTP_SECONDS = Histogram("ticketgate_http_request_seconds", "HTTP request latency by route",
                         ["method", "route"])

for _outcome in ("sent", "retried", "failed"):
    OUTBOX.labels(_outcome)  # present (at 0) before the first mail, so rates work from the start
