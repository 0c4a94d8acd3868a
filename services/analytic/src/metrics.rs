//! Every metric of the analytic service, named in one place.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why, e.g. `decode`, `camera_mismatch`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Event kind: `detect`, `update` or `lost`.
    pub kind: &'static str,
}

#[derive(Clone, Default)]
pub struct Metrics {
    /// `anpr_analytic_frames_received_total`: FrameReads messages handled by
    /// this replica.
    pub frames_received: Counter,
    /// `anpr_analytic_reads_received_total`: plate reads in those frames.
    pub reads_received: Counter,
    /// `anpr_analytic_reads_repaired_total`: reads whose character
    /// confidences did not match their text (given the read's confidence).
    pub reads_repaired: Counter,
    /// `anpr_analytic_reads_skipped_total`: reads with no usable text or
    /// naming another camera.
    pub reads_skipped: Counter,
    /// `anpr_analytic_malformed_messages_total{reason}`: messages skipped.
    pub malformed: Family<ReasonLabels, Counter>,
    /// `anpr_analytic_frames_not_owned_total`: frames of cameras whose lease
    /// this replica does not hold (another replica handles them).
    pub not_owned: Counter,
    /// `anpr_analytic_tracks_resumed_total`: open tracks continued from the
    /// plate stream after taking a camera over.
    pub tracks_resumed: Counter,
    /// `anpr_analytic_tracks_opened_total`.
    pub tracks_opened: Counter,
    /// `anpr_analytic_tracks_expired_undetected_total`: tracks that ended
    /// without ever reaching Detect.
    pub expired_undetected: Counter,
    /// `anpr_analytic_open_tracks`: tracks open now.
    pub open_tracks: Gauge,
    /// `anpr_analytic_events_published_total{kind}`: acknowledged by JetStream.
    pub events_published: Family<KindLabels, Counter>,
    /// `anpr_analytic_publish_retries_total`: publish attempts that failed
    /// and were retried.
    pub publish_retries: Counter,
    /// `anpr_analytic_events_abandoned_total`: events still unpublished when
    /// the shutdown deadline ran out (each also logged with its id).
    pub events_abandoned: Counter,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics::default();
        let r = registry.sub_registry_with_prefix("anpr_analytic");
        r.register(
            "frames_received",
            "FrameReads messages handled by this replica",
            metrics.frames_received.clone(),
        );
        r.register(
            "reads_received",
            "Plate reads in the frames handled",
            metrics.reads_received.clone(),
        );
        r.register(
            "reads_repaired",
            "Reads whose character confidences did not match their text",
            metrics.reads_repaired.clone(),
        );
        r.register(
            "reads_skipped",
            "Reads skipped: no usable text, or another camera's",
            metrics.reads_skipped.clone(),
        );
        r.register(
            "malformed_messages",
            "Messages on the reads subject skipped as malformed, by reason",
            metrics.malformed.clone(),
        );
        r.register(
            "frames_not_owned",
            "Frames of cameras whose lease another replica holds",
            metrics.not_owned.clone(),
        );
        r.register(
            "tracks_resumed",
            "Open tracks continued from the plate stream after a camera takeover",
            metrics.tracks_resumed.clone(),
        );
        r.register(
            "tracks_opened",
            "Plate tracks opened",
            metrics.tracks_opened.clone(),
        );
        r.register(
            "tracks_expired_undetected",
            "Tracks that ended without reaching Detect",
            metrics.expired_undetected.clone(),
        );
        r.register(
            "open_tracks",
            "Plate tracks open now",
            metrics.open_tracks.clone(),
        );
        r.register(
            "events_published",
            "Plate events acknowledged by JetStream, by kind",
            metrics.events_published.clone(),
        );
        r.register(
            "publish_retries",
            "Failed plate-event publishes that were retried",
            metrics.publish_retries.clone(),
        );
        r.register(
            "events_abandoned",
            "Plate events left unpublished when the shutdown deadline ran out",
            metrics.events_abandoned.clone(),
        );
        metrics
    }
}
