//! Every metric of the ingest service, named in one place. Per-camera series
//! carry the label `camera`; they are removed when the camera's worker is
//! removed, so a deleted camera leaves no stale series.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CameraLabels {
    pub camera: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub camera: String,
    /// Why: see [`DropReason`].
    pub reason: &'static str,
}

/// Why a frame was not published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Frames before the first key frame of a connection, which cannot be
    /// decoded.
    BeforeKeyframe,
    /// Frames after lost packets, until the next key frame.
    PacketLoss,
    /// Decoding or converting the picture failed.
    DecodeError,
    /// The pipeline could not keep up with a live camera.
    Overload,
    /// Over the bus's payload limit even at reduced quality and size.
    TooLarge,
    /// JPEG encoding failed.
    EncodeError,
    /// The NATS client refused the message.
    Publish,
}

impl DropReason {
    pub fn label(self) -> &'static str {
        match self {
            DropReason::BeforeKeyframe => "before_keyframe",
            DropReason::PacketLoss => "packet_loss",
            DropReason::DecodeError => "decode_error",
            DropReason::Overload => "overload",
            DropReason::TooLarge => "too_large",
            DropReason::EncodeError => "encode_error",
            DropReason::Publish => "publish",
        }
    }
}

fn seconds_histogram() -> Histogram {
    // 0.25 ms to about 0.5 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 12))
}

#[derive(Clone)]
pub struct Metrics {
    /// `anpr_ingest_camera_connected{camera}`: 1 while frames arrive.
    pub connected: Family<CameraLabels, Gauge>,
    /// `anpr_ingest_frames_decoded_total{camera}`: pictures decoded (or
    /// JPEGs read, for a folder source).
    pub decoded: Family<CameraLabels, Counter>,
    /// `anpr_ingest_frames_published_total{camera}`.
    pub published: Family<CameraLabels, Counter>,
    /// `anpr_ingest_frames_dropped_total{camera,reason}`.
    pub dropped: Family<DropLabels, Counter>,
    /// `anpr_ingest_reconnects_total{camera}`: connection attempts after a
    /// lost or failed connection.
    pub reconnects: Family<CameraLabels, Counter>,
    /// `anpr_ingest_decode_seconds{camera}`: time to decode one compressed frame.
    pub decode_seconds: Family<CameraLabels, Histogram>,
    /// `anpr_ingest_jpeg_encode_seconds{camera}`: time to encode one JPEG
    /// (all attempts of a frame that had to be shrunk).
    pub encode_seconds: Family<CameraLabels, Histogram>,
    /// `anpr_ingest_published_jpeg_bytes_total{camera}`.
    pub jpeg_bytes: Family<CameraLabels, Counter>,
    /// `anpr_ingest_workers`: camera workers running in this replica.
    pub workers: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connected: Family::default(),
            decoded: Family::default(),
            published: Family::default(),
            dropped: Family::default(),
            reconnects: Family::default(),
            decode_seconds: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            encode_seconds: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            jpeg_bytes: Family::default(),
            workers: Gauge::default(),
        }
    }
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics::default();
        let r = registry.sub_registry_with_prefix("anpr_ingest");
        r.register(
            "camera_connected",
            "1 while the camera's stream delivers frames, else 0",
            metrics.connected.clone(),
        );
        r.register(
            "frames_decoded",
            "Pictures decoded per camera",
            metrics.decoded.clone(),
        );
        r.register(
            "frames_published",
            "Frames published to the recognizer per camera",
            metrics.published.clone(),
        );
        r.register(
            "frames_dropped",
            "Frames not published, per camera and reason",
            metrics.dropped.clone(),
        );
        r.register(
            "reconnects",
            "Connection attempts after a lost or failed connection",
            metrics.reconnects.clone(),
        );
        r.register(
            "decode_seconds",
            "Time to decode one compressed frame",
            metrics.decode_seconds.clone(),
        );
        r.register(
            "jpeg_encode_seconds",
            "Time to encode one published JPEG",
            metrics.encode_seconds.clone(),
        );
        r.register(
            "published_jpeg_bytes",
            "Bytes of JPEG published per camera",
            metrics.jpeg_bytes.clone(),
        );
        r.register(
            "workers",
            "Camera workers running in this replica",
            metrics.workers.clone(),
        );
        metrics
    }

    /// The series of one camera.
    pub fn camera(&self, camera: &str) -> CameraMetrics {
        CameraMetrics {
            metrics: self.clone(),
            labels: CameraLabels {
                camera: camera.to_string(),
            },
        }
    }
}

/// One camera's view of [`Metrics`].
#[derive(Clone)]
pub struct CameraMetrics {
    metrics: Metrics,
    labels: CameraLabels,
}

impl CameraMetrics {
    pub fn set_connected(&self, connected: bool) {
        self.metrics
            .connected
            .get_or_create(&self.labels)
            .set(i64::from(connected));
    }

    pub fn decoded(&self) {
        self.metrics.decoded.get_or_create(&self.labels).inc();
    }

    pub fn published(&self, jpeg_bytes: usize) {
        self.metrics.published.get_or_create(&self.labels).inc();
        self.metrics
            .jpeg_bytes
            .get_or_create(&self.labels)
            .inc_by(jpeg_bytes as u64);
    }

    pub fn dropped(&self, reason: DropReason) {
        self.metrics
            .dropped
            .get_or_create(&DropLabels {
                camera: self.labels.camera.clone(),
                reason: reason.label(),
            })
            .inc();
    }

    pub fn reconnect(&self) {
        self.metrics.reconnects.get_or_create(&self.labels).inc();
    }

    pub fn decode_time(&self, seconds: f64) {
        self.metrics
            .decode_seconds
            .get_or_create(&self.labels)
            .observe(seconds);
    }

    pub fn encode_time(&self, seconds: f64) {
        self.metrics
            .encode_seconds
            .get_or_create(&self.labels)
            .observe(seconds);
    }

    /// Removes every series of the camera (it was deleted or disabled).
    pub fn remove(&self) {
        let m = &self.metrics;
        m.connected.remove(&self.labels);
        m.decoded.remove(&self.labels);
        m.published.remove(&self.labels);
        m.reconnects.remove(&self.labels);
        m.decode_seconds.remove(&self.labels);
        m.encode_seconds.remove(&self.labels);
        m.jpeg_bytes.remove(&self.labels);
        for reason in [
            DropReason::BeforeKeyframe,
            DropReason::PacketLoss,
            DropReason::DecodeError,
            DropReason::Overload,
            DropReason::TooLarge,
            DropReason::EncodeError,
            DropReason::Publish,
        ] {
            m.dropped.remove(&DropLabels {
                camera: self.labels.camera.clone(),
                reason: reason.label(),
            });
        }
    }
}
