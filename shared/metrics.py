"""Prometheus metrics shared by every service, served at /metrics."""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("http_requests_total", "HTTP requests handled", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
WRITE_LOCK_WAIT = Histogram(
    "db_write_lock_wait_seconds",
    "Time a write transaction waited for the SQLite writer lock",
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1),
)
EVENTS_PUBLISHED = Counter("outbox_events_published_total", "Outbox events acknowledged by NATS")
OUTBOX_ERRORS = Counter("outbox_publish_errors_total", "Relay rounds that failed to publish")
OUTBOX_FAILING = Gauge("outbox_relay_failing", "1 while the relay cannot publish and holds events")
EVENTS_HANDLED = Counter(
    "events_handled_total", "Incoming events by consumer and outcome", ["consumer", "outcome"]
)
NATS_CONNECTED = Gauge("nats_connected", "1 while the NATS connection is up")
EVENT_LOOP_LAG = Histogram(
    "event_loop_lag_seconds",
    "How late the event loop ran a timer: what every request waited behind other work",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# Read when /metrics is scraped (`shared.service.refresh_gauges`): where an event is, and
# why it is late.
OUTBOX_OLDEST_UNSENT = Gauge(
    "outbox_oldest_unsent_age_seconds", "Age of the oldest outbox row not yet published (0: none)"
)
OUTBOX_UNSENT = Gauge("outbox_unsent_rows", "Outbox rows not yet published")
CONSUMER_PENDING = Gauge(
    "consumer_pending_messages", "Messages the consumer has not been delivered yet", ["consumer"]
)
CONSUMER_ACK_PENDING = Gauge(
    "consumer_ack_pending_messages", "Messages delivered and not yet acknowledged", ["consumer"]
)
CONSUMER_REDELIVERED = Gauge(
    "consumer_redelivered_messages",
    "Messages delivered more than once, not yet acknowledged",
    ["consumer"],
)
DEAD_LETTERS = Gauge(
    "dead_letter_messages", "Messages in the dead-letter stream, by consumer", ["consumer"]
)
WEBHOOK_FAILING = Gauge(
    "webhook_deliveries_failing",
    "Deliveries to an endpoint whose last attempt failed and that are retried, or gave up",
    ["endpoint", "state"],
)
WEBHOOK_ENDPOINTS_DISABLED = Gauge(
    "webhook_endpoints_disabled", "Webhook endpoints disabled after failing for too long"
)
SCRAPE_ERRORS = Counter(
    "metrics_refresh_errors_total", "Parts of a scrape that could not be read", ["part"]
)
