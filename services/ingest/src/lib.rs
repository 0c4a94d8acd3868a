//! Camera ingest: one worker per enabled camera (that this replica holds the
//! lease of) pulls RTSP video (or a file), decodes every frame with FFmpeg,
//! samples the camera's `sample_fps`, encodes JPEGs with libjpeg-turbo and
//! publishes them as `Frame`s on `anpr.v1.frames.<camera>`, with a trace per
//! frame. Each worker reports a `CameraStatus` to the `anpr_camera_status`
//! bucket.
//!
//! Pure, tested parts: [`camera_url`], [`sampler`], [`clock`], [`backoff`],
//! [`picture`], [`jpeg`]. I/O seams: [`source::FrameSource`] (RTSP, clips,
//! JPEG folders) and [`source::SourceOpener`]. The rest wires them:
//! [`pipeline`] (decode/sample/encode thread), [`worker`], [`supervisor`],
//! [`service`].

pub mod backoff;
pub mod camera_url;
pub mod clock;
pub mod decode;
pub mod jpeg;
pub mod metrics;
pub mod picture;
pub mod pipeline;
pub mod sampler;
pub mod service;
pub mod source;
pub mod status;
pub mod supervisor;
pub mod worker;

pub use service::{run, start, Options, Running, ServiceError};
