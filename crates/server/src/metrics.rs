//! Prometheus metrics: HTTP request counts and latencies (through the `metrics` facade), the
//! verifier's own counters, which it keeps in atomics so the hot path pays no registry lookup,
//! and the abuse counters (forged cancel links, rate-limit refusals), kept the same way.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use parking_lot::RwLock;
use portcullis_app::verifier::VerifyStats;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Per-key and per-IP failure series shown, most failures first (bounds the series count).
const TOP_FAILURE_SERIES: usize = 50;

/// Installs the global recorder once; later calls (tests starting several servers) reuse it.
pub fn install_recorder() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

/// Metric handles per (route, method, status), registered once: building label sets on every
/// request would cost more than some of the handlers.
/// Keyed by a 64-bit hash of the labels (a collision would only merge two series).
type Handles = (metrics::Counter, metrics::Histogram);
static HANDLES: LazyLock<RwLock<HashMap<u64, Handles>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));
static LABEL_HASHER: LazyLock<std::collections::hash_map::RandomState> =
    LazyLock::new(std::collections::hash_map::RandomState::new);

fn handles(route: &str, method: &str, status: u16) -> Handles {
    let key = std::hash::BuildHasher::hash_one(&*LABEL_HASHER, (route, method, status));
    if let Some(found) = HANDLES.read().get(&key) {
        return found.clone();
    }
    let created = (
        metrics::counter!("portcullis_http_requests_total", "method" => method.to_owned(), "route" => route.to_owned(), "status" => status.to_string()),
        metrics::histogram!("portcullis_http_request_duration_seconds", "method" => method.to_owned(), "route" => route.to_owned()),
    );
    HANDLES.write().insert(key, created.clone());
    created
}

/// Middleware counting requests and timing them, labelled by route template (never the raw path,
/// which would let clients create unbounded series).
pub async fn track_requests(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let (requests, duration) = handles(route, method.as_str(), response.status().as_u16());
    requests.increment(1);
    duration.record(started.elapsed().as_secs_f64());
    response
}

/// Appends the verifier's counters in Prometheus text format.
pub fn render_verifier_metrics(out: &mut String, stats: &VerifyStats) {
    let _ = writeln!(
        out,
        "# HELP portcullis_verify_total Signed-request verifications by outcome."
    );
    let _ = writeln!(out, "# TYPE portcullis_verify_total counter");
    let _ = writeln!(
        out,
        "portcullis_verify_total{{outcome=\"ok\"}} {}",
        stats.accepted
    );
    let _ = writeln!(
        out,
        "portcullis_verify_total{{outcome=\"malformed\"}} {}",
        stats.malformed
    );
    for (reason, count) in &stats.rejected {
        let _ = writeln!(
            out,
            "portcullis_verify_total{{outcome=\"{}\"}} {count}",
            reason.as_str()
        );
    }
    let _ = writeln!(
        out,
        "# HELP portcullis_verify_failures_by_key Failed verifications per key (top {TOP_FAILURE_SERIES})."
    );
    let _ = writeln!(out, "# TYPE portcullis_verify_failures_by_key counter");
    for (key_id, count) in stats.failures_by_key.iter().take(TOP_FAILURE_SERIES) {
        let _ = writeln!(
            out,
            "portcullis_verify_failures_by_key{{key_id=\"{}\"}} {count}",
            escape(key_id)
        );
    }
    let _ = writeln!(
        out,
        "# HELP portcullis_verify_failures_by_ip Failed verifications per client IP (top {TOP_FAILURE_SERIES}; \"other\" pools untracked IPs)."
    );
    let _ = writeln!(out, "# TYPE portcullis_verify_failures_by_ip counter");
    for (ip, count) in stats.failures_by_ip.iter().take(TOP_FAILURE_SERIES) {
        let label = ip.map_or_else(|| "other".to_owned(), |ip| ip.to_string());
        let _ = writeln!(
            out,
            "portcullis_verify_failures_by_ip{{ip=\"{label}\"}} {count}"
        );
    }
}

/// Appends the abuse counters: cancel links that matched no change (not audited, so this is
/// where a forging campaign shows), requests refused by each rate limit, buckets held.
pub fn render_abuse_metrics(out: &mut String, state: &crate::state::Shared) {
    let forged = state.forged_cancel_links.load(Ordering::Relaxed);
    let (refused_ip, refused_account) = state.limits.refused();
    let (tracked_ips, tracked_accounts) = state.limits.tracked();
    let _ = writeln!(
        out,
        "# HELP portcullis_cancel_links_forged_total Cancel links that matched no change (not audited)."
    );
    let _ = writeln!(out, "# TYPE portcullis_cancel_links_forged_total counter");
    let _ = writeln!(out, "portcullis_cancel_links_forged_total {forged}");
    let forged = state.forged_freeze_links.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "# HELP portcullis_freeze_links_forged_total Freeze links that matched nothing (not audited)."
    );
    let _ = writeln!(out, "# TYPE portcullis_freeze_links_forged_total counter");
    let _ = writeln!(out, "portcullis_freeze_links_forged_total {forged}");
    let _ = writeln!(
        out,
        "# HELP portcullis_rate_limited_total Requests refused 429 by each rate limit."
    );
    let _ = writeln!(out, "# TYPE portcullis_rate_limited_total counter");
    let _ = writeln!(
        out,
        "portcullis_rate_limited_total{{limit=\"ip\"}} {refused_ip}"
    );
    let _ = writeln!(
        out,
        "portcullis_rate_limited_total{{limit=\"account\"}} {refused_account}"
    );
    let _ = writeln!(
        out,
        "# HELP portcullis_rate_limit_buckets Rate-limit buckets held (IPs and accounts seen in the last refill period)."
    );
    let _ = writeln!(out, "# TYPE portcullis_rate_limit_buckets gauge");
    let _ = writeln!(
        out,
        "portcullis_rate_limit_buckets{{limit=\"ip\"}} {tracked_ips}"
    );
    let _ = writeln!(
        out,
        "portcullis_rate_limit_buckets{{limit=\"account\"}} {tracked_accounts}"
    );
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends the risk engine's counters: events, decisions by verdict, hits per rule (shadow
/// rules included, which is how a shadow rule is judged before it acts).
pub fn render_engine_metrics(
    out: &mut String,
    stats: &portcullis_engine::EngineStats,
    refused_lines: u64,
    risk: &portcullis_app::risk::Risk,
) {
    let started = risk.start_report();
    let _ = writeln!(
        out,
        "# HELP portcullis_engine_replayed_at_start Log entries the engine replayed at start (after its checkpoint)."
    );
    let _ = writeln!(out, "# TYPE portcullis_engine_replayed_at_start gauge");
    let _ = writeln!(
        out,
        "portcullis_engine_replayed_at_start {}",
        started.replayed
    );
    let _ = writeln!(
        out,
        "# HELP portcullis_engine_checkpoints_written_total Engine checkpoints written since the start."
    );
    let _ = writeln!(
        out,
        "# TYPE portcullis_engine_checkpoints_written_total counter"
    );
    let _ = writeln!(
        out,
        "portcullis_engine_checkpoints_written_total {}",
        risk.checkpoints_written()
    );
    let _ = writeln!(out, "portcullis_engine_late_total {}", stats.late);
    let _ = writeln!(
        out,
        "# HELP portcullis_engine_events_total Events applied by the risk engine."
    );
    let _ = writeln!(out, "# TYPE portcullis_engine_events_total counter");
    let _ = writeln!(out, "portcullis_engine_events_total {}", stats.events);
    let _ = writeln!(
        out,
        "portcullis_engine_duplicates_total {}",
        stats.duplicates
    );
    let _ = writeln!(
        out,
        "# HELP portcullis_engine_changes_total change.applied and change.cancelled events, by what they found: a waiting change applied or cancelled, or nothing (unmatched)."
    );
    let _ = writeln!(out, "# TYPE portcullis_engine_changes_total counter");
    for (outcome, count) in [
        ("applied", stats.changes_applied),
        ("cancelled", stats.changes_cancelled),
        ("unmatched", stats.changes_unmatched),
    ] {
        let _ = writeln!(
            out,
            "portcullis_engine_changes_total{{outcome=\"{outcome}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP portcullis_engine_refused_lines_total Event lines refused at ingest."
    );
    let _ = writeln!(out, "# TYPE portcullis_engine_refused_lines_total counter");
    let _ = writeln!(out, "portcullis_engine_refused_lines_total {refused_lines}");
    let (groups, grouped) = risk.decision_groups();
    let _ = writeln!(
        out,
        "# HELP portcullis_decision_groups_total Groups in which synchronous decisions were appended and decided together."
    );
    let _ = writeln!(out, "# TYPE portcullis_decision_groups_total counter");
    let _ = writeln!(out, "portcullis_decision_groups_total {groups}");
    let _ = writeln!(
        out,
        "# HELP portcullis_decision_group_requests_total Requests those groups held (divided by the groups: the mean group size)."
    );
    let _ = writeln!(
        out,
        "# TYPE portcullis_decision_group_requests_total counter"
    );
    let _ = writeln!(out, "portcullis_decision_group_requests_total {grouped}");
    let _ = writeln!(
        out,
        "# HELP portcullis_decisions_read_back_total Decisions answered from storage, one query each, instead of from the caller's own catch-up (an event logged before)."
    );
    let _ = writeln!(out, "# TYPE portcullis_decisions_read_back_total counter");
    let read_back = risk.decisions_read_back();
    let _ = writeln!(out, "portcullis_decisions_read_back_total {read_back}");
    let _ = writeln!(
        out,
        "# HELP portcullis_decisions_total Decisions by verdict."
    );
    let _ = writeln!(out, "# TYPE portcullis_decisions_total counter");
    let mut decisions: Vec<_> = stats.decisions.iter().collect();
    decisions.sort();
    for (verdict, count) in decisions {
        let _ = writeln!(
            out,
            "portcullis_decisions_total{{decision=\"{verdict}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP portcullis_rule_hits_total Times each rule fired (shadow rules included)."
    );
    let _ = writeln!(out, "# TYPE portcullis_rule_hits_total counter");
    render_per_rule(out, "portcullis_rule_hits_total", &stats.rule_hits);
    let _ = writeln!(
        out,
        "# HELP portcullis_rule_errors_total Times each rule could not be evaluated (it then acted as if it fired, with the reason rule_error:<id>)."
    );
    let _ = writeln!(out, "# TYPE portcullis_rule_errors_total counter");
    render_per_rule(out, "portcullis_rule_errors_total", &stats.rule_errors);
}

/// Appends, in a partitioned deployment, the figures of the partitions this process works
/// (`portcullis_app::partitions::PartitionGauges`): which it holds, how far each has read,
/// decided, stored and logged, and what it worked since it took it. Nothing otherwise.
pub fn render_partition_metrics(out: &mut String, risk: &portcullis_app::risk::Risk) {
    let Some(gauges) = risk.partition_gauges() else {
        return;
    };
    let readings = gauges.read();
    type Figure = fn(&portcullis_app::partitions::GaugeReading) -> i128;
    let figures: [(&str, &str, &str, Figure); 7] = [
        (
            "portcullis_partition_epoch",
            "gauge",
            "The epoch of the lease this process works the partition under (0: not here).",
            |r| r.epoch.into(),
        ),
        (
            "portcullis_partition_read_through",
            "gauge",
            "The last event stream position the partition read.",
            |r| r.read_through.into(),
        ),
        (
            "portcullis_partition_decided_through",
            "gauge",
            "Every own event of the partition through this stream position is decided or applied.",
            |r| r.decided_through.into(),
        ),
        (
            "portcullis_partition_stored_through",
            "gauge",
            "The partition's decisions are stored through this stream position.",
            |r| r.stored_through.into(),
        ),
        (
            "portcullis_partition_logged_through",
            "gauge",
            "The partition's event log and checkpoint are stored, and the stream acknowledged, through this position.",
            |r| r.logged_through.into(),
        ),
        (
            "portcullis_partition_events_total",
            "counter",
            "Own events the partition worked since this process took it.",
            |r| r.events.into(),
        ),
        (
            "portcullis_partition_decisions_total",
            "counter",
            "Decisions the partition made since this process took it.",
            |r| r.decisions.into(),
        ),
    ];
    for (name, kind, help, figure) in figures {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for reading in &readings {
            let _ = writeln!(
                out,
                "{name}{{partition=\"{}\"}} {}",
                reading.partition,
                figure(reading)
            );
        }
    }
}

fn render_per_rule(out: &mut String, name: &str, counts: &HashMap<String, u64>) {
    let mut counts: Vec<_> = counts.iter().collect();
    counts.sort();
    for (rule, count) in counts {
        let _ = writeln!(out, "{name}{{rule=\"{}\"}} {count}", escape(rule));
    }
}
