//! Every metric flamethread exports, with the `# HELP` text Prometheus shows for it: one list, so
//! that a dashboard author reads what a series means where it is scraped, and a new metric without
//! a description fails `tests/it/tidy.rs` (`every_metric_is_described`).
//!
//! Latencies are histograms with buckets (`_seconds`, [`SECONDS_BUCKETS`]), never summaries:
//! buckets add up across replicas, quantiles do not.

/// Buckets of every `_seconds` histogram: 5 ms to 2 minutes.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// What each metric counts, by kind and name.
pub const COUNTERS: &[(&str, &str)] = &[
    (
        "ft_bus_consumed_total",
        "Messages a consumer finished, by consumer and outcome (ack, retry, dead letter).",
    ),
    (
        "ft_bus_publish_errors_total",
        "Publishes JetStream did not confirm, by subject.",
    ),
    (
        "ft_bus_published_total",
        "Messages published and stored by JetStream, by subject.",
    ),
    (
        "ft_fetcher_evidence_total",
        "Evidence published for incidents, by kind and outcome.",
    ),
    (
        "ft_fetcher_markers_api_total",
        "Requests to the change-markers API, by HTTP status.",
    ),
    (
        "ft_fetcher_requests_total",
        "Profile requests (/profile, Profile now) answered, by outcome.",
    ),
    (
        "ft_fetcher_updates_skipped_total",
        "Incident updates that needed no new evidence.",
    ),
    (
        "ft_gateway_rescues_total",
        "Slack events JetStream could not store within Slack's window, kept trying in the background, by outcome (stored, gave_up, no_room).",
    ),
    (
        "ft_gateway_duplicates_total",
        "Slack payloads Slack delivered again and were dropped as duplicates.",
    ),
    (
        "ft_gateway_files_refused_total",
        "Shared files not fetched for the sandbox (too big, not text, no download link).",
    ),
    (
        "ft_gateway_http_refused_total",
        "Slack HTTP requests refused (bad signature, too old, too big), by the status answered.",
    ),
    (
        "ft_gateway_ignored_total",
        "Slack payloads read and deliberately ignored, by kind and reason.",
    ),
    (
        "ft_gateway_payloads_total",
        "Slack payloads taken in, by kind and outcome.",
    ),
    (
        "ft_gateway_socket_reconnects_total",
        "Socket Mode reconnections Slack asked for or the socket needed.",
    ),
    (
        "ft_gateway_thread_reads_failed_total",
        "Threads that could not be read for a diagnose ask.",
    ),
    (
        "ft_kv_cas_conflicts_total",
        "Compare-and-set writes that lost to another writer and were tried again.",
    ),
    (
        "ft_poster_adopted_total",
        "Replies a crashed poster had posted, found and adopted instead of posted twice.",
    ),
    (
        "ft_poster_claim_waits_total",
        "Waits for another replica that held a reply's claim.",
    ),
    (
        "ft_poster_homes_published_total",
        "App Home views published.",
    ),
    (
        "ft_poster_pictures_total",
        "Charts and flamegraph previews shared in threads, by outcome.",
    ),
    (
        "ft_poster_posts_total",
        "Replies posted to Slack (first posts; edits are ft_poster_updates_total).",
    ),
    (
        "ft_poster_updates_total",
        "Replies edited in place as evidence arrived.",
    ),
    (
        "ft_sandbox_redeliveries_joined_total",
        "Redelivered sandbox requests that joined the run already under way.",
    ),
    ("ft_sandbox_runs_total", "Sandbox runs, by outcome."),
    (
        "ft_slack_rate_limited_total",
        "Slack 429 answers waited out, by Web API method.",
    ),
    (
        "ft_span_batches_ignored_total",
        "Span batches the store already held (a stream that restarted its numbering).",
    ),
    (
        "ft_span_batches_lost_total",
        "Span batches the stream dropped (its byte limit) before the store read them.",
    ),
    (
        "ft_spans_received_total",
        "Spans received, by source (OTLP, SpanEvents).",
    ),
    (
        "ft_spans_refused_total",
        "Span requests refused, by the status answered.",
    ),
    (
        "ft_spans_sampled_out_total",
        "Spans dropped by the sampling rate, by source.",
    ),
    ("ft_spans_stored_total", "Spans written to the span store."),
    (
        "ft_sql_queries_total",
        "SQL queries over the spans, by status (answered in Slack, or refused).",
    ),
    (
        "ft_watcher_ignored_total",
        "Slack messages that were not alerts, by reason.",
    ),
    (
        "ft_watcher_interactions_total",
        "Button clicks and selections handled, by outcome.",
    ),
    (
        "ft_watcher_messages_total",
        "Slack messages read, by kind (alert, change, asked, not an alert, thread reply…).",
    ),
    (
        "ft_watcher_swept_total",
        "Incidents closed by the sweep, by why (resolved upstream, stale).",
    ),
    (
        "ft_watcher_webhooks_total",
        "Alertmanager webhook notifications, by outcome.",
    ),
];

pub const GAUGES: &[(&str, &str)] = &[
    (
        "flamethread_build_info",
        "Always 1; the service and flamethread's version as labels.",
    ),
    ("ft_span_store_bytes", "Bytes the span store holds on disk."),
];

pub const HISTOGRAMS: &[(&str, &str)] = &[
    (
        "ft_alert_to_reply_seconds",
        "From an alert's Slack message to flamethread's first reply in its thread, on Slack's clock.",
    ),
    (
        "ft_bus_handle_seconds",
        "Time a consumer's handler took per message, by consumer.",
    ),
];

/// Gives the installed recorder every description.
pub(crate) fn describe() {
    for (name, help) in COUNTERS {
        metrics::describe_counter!(*name, *help);
    }
    for (name, help) in GAUGES {
        metrics::describe_gauge!(*name, *help);
    }
    for (name, help) in HISTOGRAMS {
        metrics::describe_histogram!(*name, *help);
    }
}
