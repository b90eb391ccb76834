//! The gateway's Prometheus metrics. They are served with the workers' at `[metrics]
//! listen` `/metrics` (not on the brokers' port: the `broker` labels name every broker):
//! `tamga serve` registers them in the site's registry, `tamga-gateway` serves its own.
//!
//! Labels are bounded: `route` is the matched route template (or `unmatched`), `method`
//! and `status` come from the protocol, `broker` from the configured brokers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Every metric of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayMetrics {
    /// Requests by route template, method and status.
    pub requests: IntCounterVec,
    /// `POST /v1/declarations`, request to answer.
    pub submit_seconds: Histogram,
    /// Submissions answered 503 because the broker did not confirm the publish.
    pub publish_unconfirmed: IntCounter,
    /// Submissions refused with 429, by broker.
    pub rate_limited: IntCounterVec,
    /// Authenticated requests by means (`token`, `certificate`).
    pub authenticated: IntCounterVec,
    /// TLS handshakes refused (unknown CA, expired or missing client certificate).
    pub tls_handshake_failures: IntCounter,
    /// POSTs to callbacks by broker and result (`delivered`, `failed`).
    pub callback_deliveries: IntCounterVec,
    /// Failed POSTs to callbacks, by broker.
    pub callback_failures: IntCounterVec,
    /// Notifications delivered to callbacks, by broker.
    pub callback_notifications: IntCounterVec,
    /// Notifications not yet delivered to the broker's callback.
    pub callback_pending: IntGaugeVec,
    /// Failed POSTs since the last delivered one (0: healthy).
    pub callback_consecutive_failures: IntGaugeVec,
}

#[allow(clippy::panic)]
fn must<T>(r: Result<T, prometheus::Error>) -> T {
    match r {
        Ok(t) => t,
        // Invariant: names and labels below are static and valid; a failure here is a
        // programming error caught by the unit test.
        Err(e) => panic!("metric definition: {e}"),
    }
}

impl GatewayMetrics {
    pub fn new() -> Self {
        let requests = must(IntCounterVec::new(
            Opts::new(
                "tamga_gateway_requests_total",
                "HTTP requests to the gateway, by route template, method and status.",
            ),
            &["route", "method", "status"],
        ));
        let submit_seconds = must(Histogram::with_opts(
            HistogramOpts::new(
                "tamga_gateway_submit_duration_seconds",
                "POST /v1/declarations from request to answer (the publish confirm included).",
            )
            .buckets(vec![
                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
            ]),
        ));
        let publish_unconfirmed = must(IntCounter::new(
            "tamga_gateway_publish_unconfirmed_total",
            "Submissions answered 503: the message broker did not confirm the publish.",
        ));
        let rate_limited = must(IntCounterVec::new(
            Opts::new(
                "tamga_gateway_rate_limited_total",
                "Submissions refused with 429, by broker.",
            ),
            &["broker"],
        ));
        let authenticated = must(IntCounterVec::new(
            Opts::new(
                "tamga_gateway_authenticated_total",
                "Authenticated requests, by means (token, certificate).",
            ),
            &["via"],
        ));
        let tls_handshake_failures = must(IntCounter::new(
            "tamga_gateway_tls_handshake_failures_total",
            "TLS handshakes refused (client certificate from an unknown CA, expired, missing when required).",
        ));
        let callback_deliveries = must(IntCounterVec::new(
            Opts::new(
                "tamga_gateway_callback_deliveries_total",
                "POSTs of notifications to brokers' callbacks, by broker and result (delivered, failed).",
            ),
            &["broker", "result"],
        ));
        let callback_failures = must(IntCounterVec::new(
            Opts::new(
                "tamga_gateway_callback_failures_total",
                "Failed POSTs to brokers' callbacks (no answer, or not 2xx), by broker.",
            ),
            &["broker"],
        ));
        let callback_notifications = must(IntCounterVec::new(
            Opts::new(
                "tamga_gateway_callback_notifications_total",
                "Notifications delivered to brokers' callbacks, by broker.",
            ),
            &["broker"],
        ));
        let callback_pending = must(IntGaugeVec::new(
            Opts::new(
                "tamga_gateway_callback_pending",
                "Notifications not yet delivered to the broker's callback (the lag).",
            ),
            &["broker"],
        ));
        let callback_consecutive_failures = must(IntGaugeVec::new(
            Opts::new(
                "tamga_gateway_callback_consecutive_failures",
                "Failed POSTs to the broker's callback since the last delivered one.",
            ),
            &["broker"],
        ));
        Self {
            requests,
            submit_seconds,
            publish_unconfirmed,
            rate_limited,
            authenticated,
            tls_handshake_failures,
            callback_deliveries,
            callback_failures,
            callback_notifications,
            callback_pending,
            callback_consecutive_failures,
        }
    }

    /// Registers every metric in `registry` (the site's, in `tamga serve`).
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        for c in [
            Box::new(self.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(self.submit_seconds.clone()),
            Box::new(self.publish_unconfirmed.clone()),
            Box::new(self.rate_limited.clone()),
            Box::new(self.authenticated.clone()),
            Box::new(self.tls_handshake_failures.clone()),
            Box::new(self.callback_deliveries.clone()),
            Box::new(self.callback_failures.clone()),
            Box::new(self.callback_notifications.clone()),
            Box::new(self.callback_pending.clone()),
            Box::new(self.callback_consecutive_failures.clone()),
        ] {
            registry.register(c)?;
        }
        Ok(())
    }

    /// The text exposition of these metrics alone.
    pub fn render(&self) -> String {
        let registry = Registry::new();
        if self.register(&registry).is_err() {
            return String::new();
        }
        let mut out = Vec::new();
        let _ = prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut out,
        );
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware of [`crate::router`]: counts every request by route template and status,
/// and times submissions.
pub(crate) async fn track(
    State(metrics): State<Arc<GatewayMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let submit = route == "/v1/declarations" && req.method() == axum::http::Method::POST;
    let started = Instant::now();
    let response = next.run(req).await;
    metrics
        .requests
        .with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()])
        .inc();
    if submit {
        metrics
            .submit_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_register_and_render() {
        let m = GatewayMetrics::new();
        m.requests
            .with_label_values(&["/v1/declarations", "POST", "202"])
            .inc();
        m.callback_failures.with_label_values(&["kz"]).inc();
        let text = m.render();
        assert!(text.contains(
            "tamga_gateway_requests_total{method=\"POST\",route=\"/v1/declarations\",status=\"202\"} 1"
        ));
        assert!(text.contains("tamga_gateway_callback_failures_total{broker=\"kz\"} 1"));
        // Registered twice in one registry is an error, once in another is not.
        let r = Registry::new();
        m.register(&r).unwrap();
        assert!(m.register(&r).is_err());
    }
}
