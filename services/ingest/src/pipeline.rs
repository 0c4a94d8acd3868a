//! The CPU side of a camera's connection, on a blocking thread: decode every
//! compressed frame, pick the ones to publish at the sample rate, turn them
//! into JPEGs that fit the bus. Fed and drained through channels by the
//! worker, so no network code runs here and no decoding runs on the async
//! runtime.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use crate::decode::{DecodeError, Decoded, DecoderSetup, VideoDecoder};
use crate::jpeg::{self, FitError, JpegEncoder, JpegError};
use crate::metrics::{CameraMetrics, DropReason};
use crate::picture::{rgb_to_i420, I420};
use crate::sampler::{MediaMicros, Sampler};
use crate::source::{JpegUnit, SourceItem, VideoUnit};
use crate::status::StatusBoard;

/// Compressed frames in a row that may fail to decode before the connection
/// is declared broken (and reconnected).
pub const MAX_DECODE_FAILURES: u32 = 100;
/// Frames in flight in the decoder (B-frame reordering needs a few).
const MAX_PENDING: usize = 64;

pub struct PipelineConfig {
    pub sample_fps: f32,
    /// JPEG quality (1-100).
    pub quality: u8,
    /// Largest JPEG the bus takes.
    pub jpeg_limit: usize,
    /// How to decode; `None` for sources of JPEGs.
    pub decoder: Option<DecoderSetup>,
}

/// A frame ready to publish.
#[derive(Debug)]
pub struct Encoded {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub capture_time: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Decoder(#[from] DecodeError),
    #[error(transparent)]
    Jpeg(#[from] JpegError),
    #[error("{count} frames in a row failed to decode; last error: {last}")]
    Undecodable { count: u32, last: String },
    #[error("the source sent video but named no codec")]
    NoDecoder,
}

/// Runs until `input` closes or `output` is gone.
pub fn run(
    config: PipelineConfig,
    mut input: mpsc::Receiver<SourceItem>,
    output: mpsc::Sender<Encoded>,
    metrics: CameraMetrics,
    board: Arc<StatusBoard>,
) -> Result<(), PipelineError> {
    let mut pipeline = Pipeline::new(config, metrics, board)?;
    while let Some(item) = input.blocking_recv() {
        for frame in pipeline.push(item)? {
            if output.blocking_send(frame).is_err() {
                return Ok(());
            }
        }
    }
    // The stream ended: the decoder's last pictures are published too.
    for frame in pipeline.finish() {
        if output.blocking_send(frame).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

pub struct Pipeline {
    decoder: Option<VideoDecoder>,
    sampler: Sampler,
    encoder: JpegEncoder,
    quality: u8,
    jpeg_limit: usize,
    metrics: CameraMetrics,
    board: Arc<StatusBoard>,
    /// Decoding starts at a key frame (a connection's first, or the first
    /// after lost packets).
    awaiting_keyframe: bool,
    /// (tag, media time, capture time) of frames handed to the decoder.
    pending: VecDeque<(i64, MediaMicros, SystemTime)>,
    next_tag: i64,
    failures: u32,
    /// Media and capture time of the latest frame given to the decoder.
    latest: (MediaMicros, SystemTime),
}

impl Pipeline {
    pub fn new(
        config: PipelineConfig,
        metrics: CameraMetrics,
        board: Arc<StatusBoard>,
    ) -> Result<Self, PipelineError> {
        let decoder = config.decoder.map(VideoDecoder::new).transpose()?;
        Ok(Pipeline {
            decoder,
            sampler: Sampler::new(config.sample_fps),
            encoder: JpegEncoder::new()?,
            quality: config.quality,
            jpeg_limit: config.jpeg_limit,
            metrics,
            board,
            awaiting_keyframe: true,
            pending: VecDeque::new(),
            next_tag: 0,
            failures: 0,
            latest: (0, SystemTime::UNIX_EPOCH),
        })
    }

    fn drop_frame(&self, reason: DropReason) {
        self.metrics.dropped(reason);
        self.board.dropped();
    }

    /// Handles one item; returns the frames to publish.
    pub fn push(&mut self, item: SourceItem) -> Result<Vec<Encoded>, PipelineError> {
        match item {
            SourceItem::Video(unit) => self.push_video(unit),
            SourceItem::Jpeg(unit) => Ok(self.push_jpeg(unit).into_iter().collect()),
        }
    }

    fn push_video(&mut self, unit: VideoUnit) -> Result<Vec<Encoded>, PipelineError> {
        if unit.after_loss && !unit.keyframe {
            self.awaiting_keyframe = true;
            self.drop_frame(DropReason::PacketLoss);
            return Ok(Vec::new());
        }
        if self.awaiting_keyframe && !unit.keyframe {
            self.drop_frame(DropReason::BeforeKeyframe);
            return Ok(Vec::new());
        }
        self.awaiting_keyframe = false;
        let Some(decoder) = self.decoder.as_mut() else {
            return Err(PipelineError::NoDecoder);
        };
        let tag = self.next_tag;
        self.next_tag += 1;
        self.pending
            .push_back((tag, unit.media_time, unit.capture_time));
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_front();
        }
        let started = Instant::now();
        let decoded = decoder.decode(&unit.data, tag);
        self.metrics.decode_time(started.elapsed().as_secs_f64());
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(error) => {
                self.drop_frame(DropReason::DecodeError);
                self.failures += 1;
                if self.failures >= MAX_DECODE_FAILURES {
                    return Err(PipelineError::Undecodable {
                        count: self.failures,
                        last: error.to_string(),
                    });
                }
                tracing::debug!(%error, "frame failed to decode");
                return Ok(Vec::new());
            }
        };
        self.latest = (unit.media_time, unit.capture_time);
        Ok(self.pictures(decoded))
    }

    /// Flushes the decoder at the end of a stream.
    pub fn finish(&mut self) -> Vec<Encoded> {
        let Some(decoder) = self.decoder.as_mut() else {
            return Vec::new();
        };
        match decoder.flush() {
            Ok(decoded) => self.pictures(decoded),
            Err(error) => {
                tracing::debug!(%error, "flushing the decoder failed");
                Vec::new()
            }
        }
    }

    /// Samples decoded pictures and encodes the ones to publish.
    fn pictures(&mut self, decoded: Vec<Decoded>) -> Vec<Encoded> {
        let mut out = Vec::new();
        for picture in decoded {
            self.failures = 0;
            self.metrics.decoded();
            self.board.decoded();
            let (media_time, capture_time) = self.timing_of(picture.tag);
            if !self.sampler.offer(media_time) {
                continue;
            }
            let (width, height) = (picture.frame.width(), picture.frame.height());
            let Some(decoder) = self.decoder.as_mut() else {
                break;
            };
            self.board
                .set_stream(&format!("{} {width}x{height}", decoder.codec()));
            let i420 = match decoder.to_i420(&picture.frame) {
                Ok(i420) => i420,
                Err(error) => {
                    tracing::debug!(%error, "decoded picture could not be converted");
                    self.drop_frame(DropReason::DecodeError);
                    continue;
                }
            };
            if let Some(frame) = self.encode(i420, capture_time) {
                out.push(frame);
            }
        }
        out
    }

    /// The media and capture time of the packet a picture came from; a
    /// picture without a known tag takes the latest packet's.
    fn timing_of(&mut self, tag: Option<i64>) -> (MediaMicros, SystemTime) {
        if let Some(tag) = tag {
            if let Some(at) = self.pending.iter().position(|(t, _, _)| *t == tag) {
                if let Some((_, media, capture)) = self.pending.remove(at) {
                    return (media, capture);
                }
            }
        }
        self.latest
    }

    fn encode(&mut self, picture: I420, capture_time: SystemTime) -> Option<Encoded> {
        let started = Instant::now();
        let mut halves = vec![picture];
        let encoder = &mut self.encoder;
        let fitted = jpeg::fit(self.jpeg_limit, self.quality, |attempt| {
            let wanted = attempt.halvings as usize;
            while halves.len() <= wanted {
                let next = halves[halves.len() - 1].half();
                halves.push(next);
            }
            encoder.encode(&halves[wanted], attempt.quality)
        });
        self.metrics.encode_time(started.elapsed().as_secs_f64());
        match fitted {
            Ok(fitted) => {
                let picture = &halves[fitted.attempt.halvings as usize];
                if fitted.attempt.halvings > 0 || fitted.attempt.quality != self.quality {
                    tracing::debug!(
                        quality = fitted.attempt.quality,
                        halvings = fitted.attempt.halvings,
                        bytes = fitted.jpeg.len(),
                        "frame re-encoded to fit the payload limit"
                    );
                }
                Some(Encoded {
                    width: u32::try_from(picture.width).unwrap_or(u32::MAX),
                    height: u32::try_from(picture.height).unwrap_or(u32::MAX),
                    jpeg: fitted.jpeg,
                    capture_time,
                })
            }
            Err(FitError::TooLarge { limit, smallest }) => {
                tracing::warn!(
                    limit,
                    smallest,
                    "frame dropped: over the payload limit at every size"
                );
                self.drop_frame(DropReason::TooLarge);
                None
            }
            Err(FitError::Encode(error)) => {
                tracing::warn!(%error, "frame dropped: JPEG encoding failed");
                self.drop_frame(DropReason::EncodeError);
                None
            }
        }
    }

    fn push_jpeg(&mut self, unit: JpegUnit) -> Option<Encoded> {
        let header = match turbojpeg::read_header(&unit.data) {
            Ok(header) => header,
            Err(error) => {
                tracing::debug!(%error, "file is not a readable JPEG");
                self.drop_frame(DropReason::DecodeError);
                return None;
            }
        };
        self.metrics.decoded();
        self.board.decoded();
        self.board
            .set_stream(&format!("jpeg {}x{}", header.width, header.height));
        if unit.data.len() <= self.jpeg_limit {
            return Some(Encoded {
                width: u32::try_from(header.width).unwrap_or(u32::MAX),
                height: u32::try_from(header.height).unwrap_or(u32::MAX),
                jpeg: unit.data,
                capture_time: unit.capture_time,
            });
        }
        // Too large as it is: decode and go through the same fallbacks as
        // video.
        let picture = turbojpeg::decompress(&unit.data, turbojpeg::PixelFormat::RGB)
            .map_err(|error| error.to_string())
            .and_then(|rgb| {
                rgb_to_i420(&rgb.pixels, rgb.width, rgb.height, rgb.pitch)
                    .map_err(|error| error.to_string())
            });
        match picture {
            Ok(picture) => self.encode(picture, unit.capture_time),
            Err(error) => {
                tracing::debug!(%error, "JPEG could not be decoded for re-encoding");
                self.drop_frame(DropReason::DecodeError);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::noise_picture;
    use crate::metrics::Metrics;

    fn pipeline(limit: usize) -> (Pipeline, Arc<StatusBoard>) {
        let board = Arc::new(StatusBoard::new("test"));
        let pipeline = Pipeline::new(
            PipelineConfig {
                sample_fps: 10.0,
                quality: 85,
                jpeg_limit: limit,
                decoder: None,
            },
            Metrics::default().camera("cam"),
            board.clone(),
        )
        .expect("pipeline");
        (pipeline, board)
    }

    fn jpeg_of(picture: &I420) -> Vec<u8> {
        JpegEncoder::new()
            .expect("encoder")
            .encode(picture, 85)
            .expect("encodes")
    }

    #[test]
    fn jpegs_that_fit_pass_unchanged_and_large_ones_are_shrunk() {
        let data = jpeg_of(&noise_picture(320, 240));
        let (mut small, _) = pipeline(data.len());
        let out = small.push_jpeg(JpegUnit {
            data: data.clone(),
            capture_time: SystemTime::now(),
        });
        let out = out.expect("published");
        assert_eq!(out.jpeg, data);
        assert_eq!((out.width, out.height), (320, 240));

        let (mut tight, board) = pipeline(data.len() / 3);
        let out = tight
            .push_jpeg(JpegUnit {
                data: data.clone(),
                capture_time: SystemTime::now(),
            })
            .expect("re-encoded, not dropped");
        assert!(out.jpeg.len() <= data.len() / 3);
        let header = turbojpeg::read_header(&out.jpeg).expect("valid JPEG");
        assert_eq!(
            (header.width as u32, header.height as u32),
            (out.width, out.height)
        );
        assert_eq!(board.snapshot().dropped_frames, 0);

        let (mut impossible, board) = pipeline(100);
        assert!(impossible
            .push_jpeg(JpegUnit {
                data,
                capture_time: SystemTime::now(),
            })
            .is_none());
        assert_eq!(board.snapshot().dropped_frames, 1);
    }

    #[test]
    fn video_without_a_decoder_or_before_a_keyframe_is_not_decoded() {
        let (mut p, board) = pipeline(1 << 20);
        let unit = |keyframe| {
            SourceItem::Video(VideoUnit {
                data: vec![0, 0, 0, 1, 0x65],
                keyframe,
                media_time: 0,
                capture_time: SystemTime::now(),
                after_loss: false,
            })
        };
        assert!(p.push(unit(false)).expect("dropped").is_empty());
        assert_eq!(board.snapshot().dropped_frames, 1);
        assert!(matches!(p.push(unit(true)), Err(PipelineError::NoDecoder)));
    }
}
