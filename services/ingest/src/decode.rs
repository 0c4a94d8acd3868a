//! H.264/H.265 decoding with FFmpeg (Debian's libavcodec through
//! `ffmpeg-next`), and the decoded picture as full-range I420.
//!
//! One single-threaded decoder per camera: about 2.5 ms a 720p frame, and no
//! frame-threading delay. Every compressed frame is decoded; sampling happens
//! after decoding (see [`crate::sampler`]).

use std::sync::Once;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::util::frame::Video as VideoFrame;
use ffmpeg_next as ffmpeg;

use crate::picture::{PictureError, Plane, Range, I420};

/// How the decoder learns the stream's format.
pub enum DecoderSetup {
    /// Annex-B data with in-band parameter sets (RTSP through retina).
    Codec(ffmpeg::codec::Id),
    /// A container's codec parameters (MP4 needs the avcC extradata).
    Parameters(ffmpeg::codec::Parameters),
}

impl std::fmt::Debug for DecoderSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecoderSetup::Codec(id) => f.debug_tuple("Codec").field(id).finish(),
            DecoderSetup::Parameters(p) => f.debug_tuple("Parameters").field(&p.id()).finish(),
        }
    }
}

/// Short codec name for the status line ("h264", "h265").
pub fn codec_label(id: ffmpeg::codec::Id) -> String {
    match id {
        ffmpeg::codec::Id::H264 => "h264".to_string(),
        ffmpeg::codec::Id::HEVC => "h265".to_string(),
        other => other.name().to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("no FFmpeg decoder for {0}")]
    NoDecoder(String),
    #[error("opening the decoder: {0}")]
    Open(ffmpeg::Error),
    #[error("decoding: {0}")]
    Decode(ffmpeg::Error),
    #[error("converting {format:?} pictures: {source}")]
    Convert {
        format: Pixel,
        source: ffmpeg::Error,
    },
    #[error(transparent)]
    Picture(#[from] PictureError),
    #[error("decoded picture has {0} planes, 3 expected")]
    Planes(usize),
}

/// Initialises FFmpeg once per process, with its own logging off: errors
/// reach the logs through this service, as structured lines.
pub fn init_ffmpeg() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Err(error) = ffmpeg::init() {
            tracing::warn!(%error, "FFmpeg initialisation reported an error");
        }
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

/// A decoded picture and the tag of the packet it came from.
pub struct Decoded {
    pub tag: Option<i64>,
    pub frame: VideoFrame,
}

pub struct VideoDecoder {
    decoder: ffmpeg::decoder::Video,
    /// Converter for pixel formats other than 4:2:0 8-bit, made on first use.
    scaler: Option<(Pixel, u32, u32, scaling::Context)>,
    codec: String,
}

impl VideoDecoder {
    pub fn new(setup: DecoderSetup) -> Result<Self, DecodeError> {
        init_ffmpeg();
        let context = match setup {
            DecoderSetup::Codec(id) => {
                let codec = ffmpeg::decoder::find(id)
                    .ok_or_else(|| DecodeError::NoDecoder(codec_label(id)))?;
                ffmpeg::codec::Context::new_with_codec(codec)
            }
            DecoderSetup::Parameters(parameters) => {
                ffmpeg::codec::Context::from_parameters(parameters).map_err(DecodeError::Open)?
            }
        };
        let codec = codec_label(context.id());
        let decoder = context.decoder().video().map_err(DecodeError::Open)?;
        Ok(VideoDecoder {
            decoder,
            scaler: None,
            codec,
        })
    }

    /// "h264" or "h265".
    pub fn codec(&self) -> &str {
        &self.codec
    }

    /// Decodes one compressed frame, tagged so that the pictures that come
    /// out (possibly later, in display order) can be matched to it.
    pub fn decode(&mut self, data: &[u8], tag: i64) -> Result<Vec<Decoded>, DecodeError> {
        let mut packet = ffmpeg::Packet::copy(data);
        packet.set_pts(Some(tag));
        packet.set_dts(Some(tag));
        self.decoder
            .send_packet(&packet)
            .map_err(DecodeError::Decode)?;
        self.drain()
    }

    /// Pictures the decoder still holds, at the end of a stream.
    pub fn flush(&mut self) -> Result<Vec<Decoded>, DecodeError> {
        self.decoder.send_eof().map_err(DecodeError::Decode)?;
        self.drain()
    }

    fn drain(&mut self) -> Result<Vec<Decoded>, DecodeError> {
        let mut out = Vec::new();
        loop {
            let mut frame = VideoFrame::empty();
            match self.decoder.receive_frame(&mut frame) {
                Ok(()) => out.push(Decoded {
                    tag: frame.pts().or_else(|| frame.timestamp()),
                    frame,
                }),
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                    break
                }
                Err(ffmpeg::Error::Eof) => break,
                Err(error) => return Err(DecodeError::Decode(error)),
            }
        }
        Ok(out)
    }

    /// The picture as full-range I420.
    pub fn to_i420(&mut self, frame: &VideoFrame) -> Result<I420, DecodeError> {
        let format = frame.format();
        let (width, height) = (frame.width(), frame.height());
        let frame_range = if frame.color_range() == ffmpeg::util::color::Range::JPEG {
            Range::Full
        } else {
            Range::Limited
        };
        match format {
            Pixel::YUV420P | Pixel::YUVJ420P => {
                let range = if format == Pixel::YUVJ420P {
                    Range::Full
                } else {
                    frame_range
                };
                planes_of(frame, range)
            }
            _ => {
                let scaler = match self.scaler.take() {
                    Some(cached)
                        if cached.0 == format && cached.1 == width && cached.2 == height =>
                    {
                        self.scaler.insert(cached)
                    }
                    _ => {
                        let context = scaling::Context::get(
                            format,
                            width,
                            height,
                            Pixel::YUV420P,
                            width,
                            height,
                            scaling::Flags::BILINEAR,
                        )
                        .map_err(|source| DecodeError::Convert { format, source })?;
                        self.scaler.insert((format, width, height, context))
                    }
                };
                let mut converted = VideoFrame::empty();
                scaler
                    .3
                    .run(frame, &mut converted)
                    .map_err(|source| DecodeError::Convert { format, source })?;
                // swscale converts the full-range "J" formats to video levels
                // for YUV420P; other formats keep what the frame says.
                let range = if is_jpeg_format(format) {
                    Range::Limited
                } else {
                    frame_range
                };
                planes_of(&converted, range)
            }
        }
    }
}

fn is_jpeg_format(format: Pixel) -> bool {
    matches!(
        format,
        Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P | Pixel::YUVJ440P | Pixel::YUVJ411P
    )
}

fn planes_of(frame: &VideoFrame, range: Range) -> Result<I420, DecodeError> {
    if frame.planes() < 3 {
        return Err(DecodeError::Planes(frame.planes()));
    }
    let plane = |i: usize| Plane {
        data: frame.data(i),
        stride: frame.stride(i),
    };
    I420::from_planes(
        frame.width() as usize,
        frame.height() as usize,
        plane(0),
        plane(1),
        plane(2),
        range,
    )
    .map_err(DecodeError::from)
}
