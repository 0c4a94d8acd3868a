//! Where compressed pictures come from: the seam between the network (or
//! disk) and the rest of ingest. [`FrameSource`] is what a worker reads;
//! [`SourceOpener`] makes one from a camera's URL. Tests can hand a worker
//! any source they like.

pub mod clip;
pub mod jpeg_dir;
pub mod rtsp;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use crate::camera_url::{Rate, SourceSpec};
use crate::decode::DecoderSetup;
use crate::sampler::MediaMicros;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One compressed video frame (an access unit).
#[derive(Debug)]
pub struct VideoUnit {
    pub data: Vec<u8>,
    /// Decoding can start here (IDR / random-access point).
    pub keyframe: bool,
    /// Presentation time on the stream's own clock, for sampling.
    pub media_time: MediaMicros,
    /// Wall-clock capture time.
    pub capture_time: SystemTime,
    /// Packets were lost before this frame: the picture is damaged until the
    /// next key frame.
    pub after_loss: bool,
}

/// One picture that is already a JPEG (a folder source).
#[derive(Debug)]
pub struct JpegUnit {
    pub data: Vec<u8>,
    pub capture_time: SystemTime,
}

#[derive(Debug)]
pub enum SourceItem {
    Video(VideoUnit),
    Jpeg(JpegUnit),
}

/// RTSP login. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// RTP over the RTSP connection or over UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RtspTransport {
    /// Interleaved in the RTSP TCP connection: works through NAT and
    /// firewalls, no loss from reordering.
    #[default]
    Tcp,
    /// RTP/RTCP over UDP (retina: experimental, no reorder buffer).
    Udp,
}

/// What opening a source needs besides its URL.
#[derive(Debug, Clone)]
pub struct OpenParams {
    pub credentials: Option<Credentials>,
    pub transport: RtspTransport,
    /// Pace of a JPEG folder.
    pub sample_fps: f32,
}

/// Why a source failed. Messages never contain a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("camera refused the credentials (RTSP 401)")]
    Unauthorized,
    #[error("connecting: {0}")]
    Connect(String),
    #[error("{0}")]
    NoVideo(String),
    #[error("stream: {0}")]
    Stream(String),
    #[error("file source: {0}")]
    File(String),
    #[error("timed out: {0}")]
    Timeout(String),
}

impl SourceError {
    /// Short reason for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            SourceError::Unauthorized => "unauthorized",
            SourceError::Connect(_) => "connect",
            SourceError::NoVideo(_) => "no_video",
            SourceError::Stream(_) => "stream",
            SourceError::File(_) => "file",
            SourceError::Timeout(_) => "timeout",
        }
    }
}

/// A stream of pictures of one camera, for one connection.
pub trait FrameSource: Send {
    /// How the decoder is set up; `None` for sources of JPEGs. Taken once.
    fn take_decoder(&mut self) -> Option<DecoderSetup>;

    /// A live camera (frames that cannot be taken in time are dropped) or a
    /// file (read only as fast as the pipeline takes it).
    fn is_live(&self) -> bool;

    /// The next picture; `Ok(None)` at the end of the stream.
    fn next(&mut self) -> BoxFuture<'_, Result<Option<SourceItem>, SourceError>>;
}

/// Opens sources; the production one dispatches on the URL.
pub trait SourceOpener: Send + Sync {
    fn open<'a>(
        &'a self,
        spec: &'a SourceSpec,
        params: &'a OpenParams,
    ) -> BoxFuture<'a, Result<Box<dyn FrameSource>, SourceError>>;
}

/// RTSP cameras, clips and JPEG folders.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultOpener;

impl SourceOpener for DefaultOpener {
    fn open<'a>(
        &'a self,
        spec: &'a SourceSpec,
        params: &'a OpenParams,
    ) -> BoxFuture<'a, Result<Box<dyn FrameSource>, SourceError>> {
        Box::pin(async move {
            match spec {
                SourceSpec::Rtsp { url } => {
                    let source = rtsp::RtspSource::open(url.clone(), params).await?;
                    Ok(Box::new(source) as Box<dyn FrameSource>)
                }
                SourceSpec::File { path, looped, rate } => {
                    let metadata = tokio::fs::metadata(path)
                        .await
                        .map_err(|err| SourceError::File(format!("{}: {err}", path.display())))?;
                    if metadata.is_dir() && matches!(rate, Rate::Live { .. }) {
                        return Err(SourceError::File(format!(
                            "{}: rate=live plays clips, not folders of JPEGs",
                            path.display()
                        )));
                    }
                    if metadata.is_dir() {
                        let source =
                            jpeg_dir::JpegDirSource::open(path, *looped, *rate, params.sample_fps)
                                .await?;
                        Ok(Box::new(source) as Box<dyn FrameSource>)
                    } else {
                        let source = clip::ClipSource::open(path.clone(), *looped, *rate).await?;
                        Ok(Box::new(source) as Box<dyn FrameSource>)
                    }
                }
            }
        })
    }
}
