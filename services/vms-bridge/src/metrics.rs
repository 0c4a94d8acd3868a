//! Every metric of the vms-bridge. Labelled by target name only: never a
//! secret, never a per-event value.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabel {
    pub target: String,
}

type Histograms = Family<TargetLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 10 ms … ~20 s: a LAN VMS answers in milliseconds, a struggling one
    // up to the request timeout.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.01, 2.0, 12,
    ))
}

#[derive(Clone)]
pub struct Metrics {
    pub delivered: Family<TargetLabel, Counter>,
    pub dead_lettered: Family<TargetLabel, Counter>,
    pub retries: Family<TargetLabel, Counter>,
    pub duplicates_skipped: Family<TargetLabel, Counter>,
    pub logins: Family<TargetLabel, Counter>,
    pub camera_mapping_misses: Family<TargetLabel, Counter>,
    pub post_latency: Histograms,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics {
            delivered: Family::default(),
            dead_lettered: Family::default(),
            retries: Family::default(),
            duplicates_skipped: Family::default(),
            logins: Family::default(),
            camera_mapping_misses: Family::default(),
            post_latency: Family::new_with_constructor(latency_histogram),
        };
        registry.register(
            "anpr_vms_events_delivered",
            "Plate events the VMS accepted",
            metrics.delivered.clone(),
        );
        registry.register(
            "anpr_vms_events_dead_lettered",
            "Plate events the VMS refused for good, moved to the dead-letter stream",
            metrics.dead_lettered.clone(),
        );
        registry.register(
            "anpr_vms_retries",
            "Delivery attempts that failed and will be retried",
            metrics.retries.clone(),
        );
        registry.register(
            "anpr_vms_duplicates_skipped",
            "Redelivered plate events acknowledged without a post because they were already delivered",
            metrics.duplicates_skipped.clone(),
        );
        registry.register(
            "anpr_vms_logins",
            "Bearer session logins to the VMS",
            metrics.logins.clone(),
        );
        registry.register(
            "anpr_vms_camera_mapping_misses",
            "Events sent without camera references because no single VMS camera matched",
            metrics.camera_mapping_misses.clone(),
        );
        registry.register(
            "anpr_vms_post_latency_seconds",
            "Duration of one Generic Event post, authentication included",
            metrics.post_latency.clone(),
        );
        metrics
    }

    pub fn for_target(&self, target: &str) -> TargetMetrics {
        let label = TargetLabel {
            target: target.to_string(),
        };
        TargetMetrics {
            delivered: self.delivered.get_or_create(&label).clone(),
            dead_lettered: self.dead_lettered.get_or_create(&label).clone(),
            retries: self.retries.get_or_create(&label).clone(),
            duplicates_skipped: self.duplicates_skipped.get_or_create(&label).clone(),
            logins: self.logins.get_or_create(&label).clone(),
            camera_mapping_misses: self.camera_mapping_misses.get_or_create(&label).clone(),
            post_latency: self.post_latency.get_or_create(&label).clone(),
        }
    }
}

/// One target's handles on the metrics.
#[derive(Clone)]
pub struct TargetMetrics {
    pub delivered: Counter,
    pub dead_lettered: Counter,
    pub retries: Counter,
    pub duplicates_skipped: Counter,
    pub logins: Counter,
    pub camera_mapping_misses: Counter,
    pub post_latency: Histogram,
}
