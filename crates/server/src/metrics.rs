//! Prometheus metrics: HTTP request counts and latencies (through the `metrics` facade) and the
//! verifier's own counters, which it keeps in atomics so the hot path pays no registry lookup.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use portcullis_app::verifier::VerifyStats;
use std::fmt::Write as _;
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

/// Middleware counting requests and timing them, labelled by route template (never the raw path,
/// which would let clients create unbounded series).
pub async fn track_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("portcullis_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("portcullis_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
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

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
