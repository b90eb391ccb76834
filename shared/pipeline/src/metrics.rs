//! Prometheus metrics, and the events that both log and count them.
//!
//! Names follow Prometheus conventions (`tamga_<name>_<unit>_total` for
//! counters); every label has a bounded set of values (stages, outcomes,
//! ETSI sub-indications, country codes of configured partners).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric Tamga exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Declarations by stage and outcome.
    pub declarations: IntCounterVec,
    /// Rejections by sub-indication and origin.
    pub rejections: IntCounterVec,
    /// Time spent in each stage, per delivery.
    pub stage_seconds: HistogramVec,
    /// Publish to outbound/rejected, from the inbound timestamp.
    pub end_to_end_seconds: HistogramVec,
    pub in_flight: IntGaugeVec,
    /// Decided but not yet forwarded.
    pub outbox_backlog: IntGauge,
    pub publish_confirms: IntCounterVec,
    pub reconnects: IntCounter,
    pub redeliveries_suppressed: IntCounterVec,
    pub dead_lettered: IntCounterVec,
    pub transient_errors: IntCounterVec,
    /// Failures by stage, class (`transient`, `fatal`, `poison`, `panic`)
    /// and source (`store`, `bus`, `key`, `message`, `engine`).
    pub failures: IntCounterVec,
    pub audit_chain_head: IntGaugeVec,
    /// 1 per (country, kind) whose trust material is unusable.
    pub trust_degraded: IntGaugeVec,
    /// NextUpdate of each country's trusted list in force (Unix seconds):
    /// past it, that country is INDETERMINATE `trust_list_stale`.
    pub trust_list_next_update: IntGaugeVec,
    /// TSLSequenceNumber of each country's trusted list in force.
    pub trust_list_sequence: IntGaugeVec,
    /// nextUpdate of the newest CRL of each issuer (Unix seconds): past it, that CA's
    /// certificates are INDETERMINATE (`crl_expired`); alert `TamgaCrlNearExpiry`.
    pub crl_next_update: IntGaugeVec,
    /// Signed checkpoints of the audit trail by result (`signed`, `nothing_new`, `lost_race`,
    /// `refused`: the database disagrees with what was signed, `failed`: store, key or
    /// directory unavailable).
    pub audit_checkpoints: IntCounterVec,
    /// Tree size (events covered) of the newest checkpoint this process signed.
    pub audit_checkpoint_tree_size: IntGauge,
    /// When this process last signed a checkpoint (Unix seconds).
    pub audit_checkpoint_timestamp: IntGauge,
    /// Checkpoint checks recorded, by result and whether they were made offline.
    pub checks: IntCounterVec,
    /// Checks amber because the declaration was already presented (a copy?), by
    /// checkpoint; alert `TamgaRepeatedScan`.
    pub repeated_scans: IntCounterVec,
}

#[allow(clippy::panic)]
fn must<T>(r: Result<T, prometheus::Error>) -> T {
    match r {
        Ok(t) => t,
        // Invariant: names and labels below are static and valid; a failure
        // here is a programming error caught by the unit test.
        Err(e) => panic!("metric definition: {e}"),
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let declarations = must(IntCounterVec::new(
            Opts::new(
                "tamga_declarations_total",
                "Declarations handled, by stage and outcome.",
            ),
            &["stage", "outcome"],
        ));
        let rejections = must(IntCounterVec::new(
            Opts::new(
                "tamga_rejections_total",
                "Rejected declarations, by ETSI sub-indication and origin country.",
            ),
            &["sub_indication", "origin"],
        ));
        let buckets = vec![
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
        ];
        let stage_seconds = must(HistogramVec::new(
            HistogramOpts::new(
                "tamga_stage_duration_seconds",
                "Time in one stage per delivery.",
            )
            .buckets(buckets.clone()),
            &["stage"],
        ));
        let end_to_end_seconds = must(HistogramVec::new(
            HistogramOpts::new(
                "tamga_end_to_end_duration_seconds",
                "From receipt at the verifier to the confirmed outbound or rejected publish.",
            )
            .buckets(buckets),
            &["decision"],
        ));
        let in_flight = must(IntGaugeVec::new(
            Opts::new("tamga_in_flight", "Deliveries being handled, by stage."),
            &["stage"],
        ));
        let outbox_backlog = must(IntGauge::new(
            "tamga_outbox_backlog",
            "Decided declarations not yet confirmed forwarded.",
        ));
        let publish_confirms = must(IntCounterVec::new(
            Opts::new(
                "tamga_publish_confirms_total",
                "Publishes by broker confirmation result.",
            ),
            &["result"],
        ));
        let reconnects = must(IntCounter::new(
            "tamga_bus_reconnects_total",
            "Re-established broker connections or consumers.",
        ));
        let redeliveries_suppressed = must(IntCounterVec::new(
            Opts::new(
                "tamga_redeliveries_suppressed_total",
                "Redelivered or duplicate declarations answered from the stored result.",
            ),
            &["stage"],
        ));
        let dead_lettered = must(IntCounterVec::new(
            Opts::new(
                "tamga_dead_lettered_total",
                "Poison messages sent to a dead-letter queue.",
            ),
            &["stage"],
        ));
        let failures = must(IntCounterVec::new(
            Opts::new(
                "tamga_failures_total",
                "Deliveries that could not be handled (yet), by stage, failure class and source.",
            ),
            &["stage", "class", "source"],
        ));
        let transient_errors = must(IntCounterVec::new(
            Opts::new(
                "tamga_transient_errors_total",
                "Transient failures (store or bus unavailable) that paused a stage.",
            ),
            &["stage", "kind"],
        ));
        let audit_chain_head = must(IntGaugeVec::new(
            Opts::new(
                "tamga_audit_chain_head",
                "Sequence number of each audit hash chain's head.",
            ),
            &["chain"],
        ));
        let trust_degraded = must(IntGaugeVec::new(
            Opts::new(
                "tamga_trust_degraded",
                "1 when a partner country's trust material (CRL, anchor, trusted list) is unusable; its declarations that depend on it are INDETERMINATE.",
            ),
            &["country", "kind"],
        ));
        let trust_list_next_update = must(IntGaugeVec::new(
            Opts::new(
                "tamga_trust_list_next_update_timestamp_seconds",
                "NextUpdate of the country's trusted list in force; past it the country is INDETERMINATE (trust_list_stale).",
            ),
            &["country"],
        ));
        let trust_list_sequence = must(IntGaugeVec::new(
            Opts::new(
                "tamga_trust_list_sequence",
                "TSLSequenceNumber of the country's trusted list in force.",
            ),
            &["country"],
        ));
        let crl_next_update = must(IntGaugeVec::new(
            Opts::new(
                "tamga_crl_next_update_timestamp_seconds",
                "nextUpdate of the newest CRL in force per partner country and issuing CA; past it that CA's certificates are INDETERMINATE (crl_expired).",
            ),
            &["country", "issuer"],
        ));
        let audit_checkpoints = must(IntCounterVec::new(
            Opts::new(
                "tamga_audit_checkpoints_total",
                "Attempts to sign a checkpoint of the audit trail, by result.",
            ),
            &["result"],
        ));
        let audit_checkpoint_tree_size = must(IntGauge::new(
            "tamga_audit_checkpoint_tree_size",
            "Audit events covered by the newest checkpoint this process signed.",
        ));
        let audit_checkpoint_timestamp = must(IntGauge::new(
            "tamga_audit_checkpoint_timestamp_seconds",
            "When this process last signed a checkpoint of the audit trail.",
        ));
        let checks = must(IntCounterVec::new(
            Opts::new(
                "tamga_checks_total",
                "Checkpoint checks recorded (`checked` audit events), by result and offline.",
            ),
            &["result", "offline"],
        ));
        let repeated_scans = must(IntCounterVec::new(
            Opts::new(
                "tamga_repeated_scans_total",
                "Checks of a declaration already presented at another checkpoint or after it left, by checkpoint.",
            ),
            &["checkpoint"],
        ));
        for c in [
            Box::new(crl_next_update.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(audit_checkpoints.clone()),
            Box::new(audit_checkpoint_tree_size.clone()),
            Box::new(audit_checkpoint_timestamp.clone()),
            Box::new(checks.clone()),
            Box::new(repeated_scans.clone()),
            Box::new(declarations.clone()),
            Box::new(rejections.clone()),
            Box::new(stage_seconds.clone()),
            Box::new(end_to_end_seconds.clone()),
            Box::new(in_flight.clone()),
            Box::new(outbox_backlog.clone()),
            Box::new(publish_confirms.clone()),
            Box::new(reconnects.clone()),
            Box::new(redeliveries_suppressed.clone()),
            Box::new(dead_lettered.clone()),
            Box::new(transient_errors.clone()),
            Box::new(audit_chain_head.clone()),
            Box::new(failures.clone()),
            Box::new(trust_degraded.clone()),
            Box::new(trust_list_next_update.clone()),
            Box::new(trust_list_sequence.clone()),
        ] {
            must(registry.register(c));
        }
        Self {
            registry,
            declarations,
            rejections,
            stage_seconds,
            end_to_end_seconds,
            in_flight,
            outbox_backlog,
            publish_confirms,
            reconnects,
            redeliveries_suppressed,
            dead_lettered,
            transient_errors,
            failures,
            audit_chain_head,
            trust_degraded,
            trust_list_next_update,
            trust_list_sequence,
            crl_next_update,
            audit_checkpoints,
            audit_checkpoint_tree_size,
            audit_checkpoint_timestamp,
            checks,
            repeated_scans,
        }
    }

    /// Mirrors the trust list's faults into `tamga_trust_degraded` (and
    /// logs each), replacing what a previous load reported.
    pub fn set_trust_state(&self, trust: &tamga_trust::TrustList) {
        self.trust_degraded.reset();
        self.trust_list_next_update.reset();
        self.trust_list_sequence.reset();
        self.crl_next_update.reset();
        for cc in trust.countries() {
            // Newest first: the first CRL of an issuer is the one in force.
            let mut seen = std::collections::BTreeSet::new();
            for crl in trust.crls(cc) {
                if seen.insert(crl.issuer.clone()) {
                    self.crl_next_update
                        .with_label_values(&[cc.as_str(), crl.issuer.as_str()])
                        .set(crl.next_update);
                }
            }
            if let Some(tamga_trust::TrustSource::TrustedList {
                sequence,
                next_update_unix,
                ..
            }) = trust.source(cc)
            {
                self.trust_list_sequence
                    .with_label_values(&[cc.as_str()])
                    .set(i64::try_from(sequence).unwrap_or(i64::MAX));
                if let Some(next) = next_update_unix {
                    self.trust_list_next_update
                        .with_label_values(&[cc.as_str()])
                        .set(next);
                }
            }
        }
        for f in trust.faults() {
            tracing::warn!(
                country = %f.country,
                kind = f.kind.as_str(),
                source = %f.source,
                detail = %f.detail,
                "trust material unusable; only this country's affected declarations are INDETERMINATE"
            );
            self.trust_degraded
                .with_label_values(&[f.country.as_str(), f.kind.as_str()])
                .set(1);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `/metrics` on `listen` until the task is dropped.
pub async fn serve(listen: &str, metrics: std::sync::Arc<Metrics>) -> std::io::Result<()> {
    use axum::{routing::get, Router};
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    m.render(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    // The bound address, not the configured one: with port 0 (tests) this
    // is how a scraper finds it.
    let addr = listener.local_addr()?;
    tracing::info!(listen, %addr, "metrics endpoint at /metrics");
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRL-expiry alert's series: one per country and issuing CA, the newest CRL's
    /// nextUpdate.
    #[test]
    fn crl_next_update_is_exported_per_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_780_000_000;
        tamga_pki::generate(&tamga_pki::DemoPkiOptions::new(["AZ", "KZ"], now))
            .unwrap()
            .write_to(dir.path())
            .unwrap();
        let trust = tamga_trust::TrustList::load_dir(&dir.path().join("trust")).unwrap();
        let m = Metrics::new();
        m.set_trust_state(&trust);
        let text = m.render();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("tamga_crl_next_update_timestamp_seconds{"))
            .collect();
        // Per country: the root's CRL and the issuing CA's CRL.
        assert!(series.len() >= 4, "{series:?}");
        for cc in ["AZ", "KZ"] {
            assert!(
                series
                    .iter()
                    .any(|l| l.contains(&format!("country=\"{cc}\"")) && l.contains("Issuing")),
                "{cc}: {series:?}"
            );
        }
        for l in &series {
            let next: i64 = l.rsplit(' ').next().unwrap().parse().unwrap();
            assert!(next > now, "{l}");
        }
    }

    #[test]
    fn metrics_register_and_render() {
        let m = Metrics::new();
        m.declarations
            .with_label_values(&["verify", "passed"])
            .inc();
        m.rejections
            .with_label_values(&["HASH_FAILURE", "KZ"])
            .inc();
        let text = m.render();
        assert!(text.contains("tamga_declarations_total{outcome=\"passed\",stage=\"verify\"} 1"));
        assert!(text
            .contains("tamga_rejections_total{origin=\"KZ\",sub_indication=\"HASH_FAILURE\"} 1"));
    }
}
