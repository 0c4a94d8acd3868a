//! Every metric of the recognizer service, named in one place.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Why a frame was dropped without being read.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// `too_old` (older than the maximum frame age) or `queue_full` (pushed
    /// out of the full waiting queue, see `service::queue`).
    pub reason: &'static str,
}

/// Why a message on the frames subject was skipped.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MalformedLabels {
    /// e.g. `protobuf`, `subject`, `camera_mismatch`.
    pub reason: &'static str,
}

/// Why reading a frame's picture failed.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadErrorLabels {
    /// `decode`, `empty`, `too_large`, `inference`, or `panic` (the engine
    /// panicked on this picture; the service went on).
    pub kind: &'static str,
}

/// One stage of handling a frame.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// `queue_wait`, `decode`, `detect`, `recognize` or `total`.
    pub stage: &'static str,
}

/// The stage label values, so callers cannot misspell them.
pub mod stage {
    pub const QUEUE_WAIT: &str = "queue_wait";
    pub const DECODE: &str = "decode";
    pub const DETECT: &str = "detect";
    pub const RECOGNIZE: &str = "recognize";
    pub const TOTAL: &str = "total";
    pub const ALL: [&str; 5] = [QUEUE_WAIT, DECODE, DETECT, RECOGNIZE, TOTAL];
}

/// The read-error kind label values.
pub mod read_error_kind {
    pub const DECODE: &str = "decode";
    pub const EMPTY: &str = "empty";
    pub const TOO_LARGE: &str = "too_large";
    pub const INFERENCE: &str = "inference";
    /// The engine panicked on a picture; the service went on.
    pub const PANIC: &str = "panic";
    pub const ALL: [&str; 5] = [DECODE, EMPTY, TOO_LARGE, INFERENCE, PANIC];
}

/// The drop reason label values.
pub mod drop_reason {
    pub const TOO_OLD: &str = "too_old";
    pub const QUEUE_FULL: &str = "queue_full";
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets from 1 ms to about 33 s: a small crop is read in milliseconds, a
/// large frame on a busy CPU in seconds, and a frame waiting in the queue up
/// to the maximum frame age.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

#[derive(Clone)]
pub struct Metrics {
    /// `anpr_recognizer_frames_received_total`: Frame messages delivered to
    /// this replica (the queue group shares them between replicas).
    pub frames_received: Counter,
    /// `anpr_recognizer_frames_processed_total`: frames read (with or without
    /// a plate, or with a read error), each answered with a FrameReads.
    pub frames_processed: Counter,
    /// `anpr_recognizer_frames_dropped_total{reason}`: frames never read.
    pub frames_dropped: Family<DropLabels, Counter>,
    /// `anpr_recognizer_malformed_frames_total{reason}`: messages skipped.
    pub malformed: Family<MalformedLabels, Counter>,
    /// `anpr_recognizer_read_errors_total{kind}`: frames whose picture could
    /// not be read (answered with an empty FrameReads).
    pub read_errors: Family<ReadErrorLabels, Counter>,
    /// `anpr_recognizer_plates_read_total`: plates reported.
    pub plates_read: Counter,
    /// `anpr_recognizer_publish_errors_total`: FrameReads that could not be
    /// handed to NATS.
    pub publish_errors: Counter,
    /// `anpr_recognizer_queue_depth`: frames waiting for a worker now.
    pub queue_depth: Gauge,
    /// `anpr_recognizer_stage_duration_seconds{stage}`: time per stage of one
    /// frame.
    pub stage_seconds: HistogramFamily<StageLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            frames_received: Counter::default(),
            frames_processed: Counter::default(),
            frames_dropped: Family::default(),
            malformed: Family::default(),
            read_errors: Family::default(),
            plates_read: Counter::default(),
            publish_errors: Counter::default(),
            queue_depth: Gauge::default(),
            stage_seconds: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics::default();
        let r = registry.sub_registry_with_prefix("anpr_recognizer");
        r.register(
            "frames_received",
            "Frame messages delivered to this replica",
            metrics.frames_received.clone(),
        );
        r.register(
            "frames_processed",
            "Frames read (or failed to read), each answered with a FrameReads",
            metrics.frames_processed.clone(),
        );
        r.register(
            "frames_dropped",
            "Frames dropped without being read, by reason (too_old, queue_full)",
            metrics.frames_dropped.clone(),
        );
        r.register(
            "malformed_frames",
            "Messages on the frames subject skipped as malformed, by reason",
            metrics.malformed.clone(),
        );
        r.register(
            "read_errors",
            "Frames whose picture could not be read, by kind",
            metrics.read_errors.clone(),
        );
        r.register(
            "plates_read",
            "Plates reported in FrameReads",
            metrics.plates_read.clone(),
        );
        r.register(
            "publish_errors",
            "FrameReads that could not be published",
            metrics.publish_errors.clone(),
        );
        r.register(
            "queue_depth",
            "Frames waiting for a worker",
            metrics.queue_depth.clone(),
        );
        r.register(
            "stage_duration_seconds",
            "Time per stage of one frame (queue_wait, decode, detect, recognize, total)",
            metrics.stage_seconds.clone(),
        );
        // Every known series from the start, at zero: dashboards and alerts
        // see "none yet" rather than "no data".
        for reason in [drop_reason::TOO_OLD, drop_reason::QUEUE_FULL] {
            drop(metrics.frames_dropped.get_or_create(&DropLabels { reason }));
        }
        for kind in read_error_kind::ALL {
            drop(metrics.read_errors.get_or_create(&ReadErrorLabels { kind }));
        }
        for stage in stage::ALL {
            drop(metrics.stage_seconds.get_or_create(&StageLabels { stage }));
        }
        metrics
    }

    pub fn dropped(&self, reason: &'static str) {
        self.frames_dropped
            .get_or_create(&DropLabels { reason })
            .inc();
    }

    pub fn observe(&self, stage: &'static str, seconds: f64) {
        self.stage_seconds
            .get_or_create(&StageLabels { stage })
            .observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exported_under_its_documented_name() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.frames_received.inc();
        metrics.dropped(drop_reason::QUEUE_FULL);
        metrics
            .malformed
            .get_or_create(&MalformedLabels { reason: "protobuf" })
            .inc();
        metrics
            .read_errors
            .get_or_create(&ReadErrorLabels { kind: "decode" })
            .inc();
        metrics.observe(stage::DETECT, 0.2);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        for line in [
            "anpr_recognizer_frames_received_total 1",
            "anpr_recognizer_frames_processed_total 0",
            "anpr_recognizer_frames_dropped_total{reason=\"queue_full\"} 1",
            "anpr_recognizer_frames_dropped_total{reason=\"too_old\"} 0",
            "anpr_recognizer_read_errors_total{kind=\"panic\"} 0",
            "anpr_recognizer_malformed_frames_total{reason=\"protobuf\"} 1",
            "anpr_recognizer_read_errors_total{kind=\"decode\"} 1",
            "anpr_recognizer_plates_read_total 0",
            "anpr_recognizer_publish_errors_total 0",
            "anpr_recognizer_queue_depth 0",
            "anpr_recognizer_stage_duration_seconds_count{stage=\"detect\"} 1",
            "anpr_recognizer_stage_duration_seconds_count{stage=\"queue_wait\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
