//! An RTSP camera through retina: DESCRIBE, SETUP of the first H.264/H.265
//! video stream, PLAY, then depacketized frames in Annex-B form with the
//! parameter sets repeated before each key frame (what FFmpeg decodes
//! directly). RTCP sender reports set the wall clock of the frames.

use std::time::{Duration, SystemTime};

use ffmpeg_next::codec::Id as CodecId;
use futures::StreamExt as _;
use retina::client::{
    Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
    UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat};
use url::Url;

use super::{
    BoxFuture, FrameSource, OpenParams, RtspTransport, SourceError, SourceItem, VideoUnit,
};
use crate::clock::{CaptureClock, SenderReport};
use crate::decode::DecoderSetup;

/// DESCRIBE to PLAY must be done in this time; a camera that accepts the TCP
/// connection and then says nothing would otherwise hold the worker forever.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RtspSource {
    demuxed: std::pin::Pin<Box<Demuxed>>,
    stream_id: usize,
    clock_rate: u32,
    clock: CaptureClock,
    codec: Option<CodecId>,
    /// To scrub from error texts, in case a server echoes it.
    password: Option<String>,
}

/// An error text with the password, if any, removed.
fn scrub(text: String, password: Option<&str>) -> String {
    match password.filter(|p| !p.is_empty()) {
        Some(password) => text.replace(password, "<redacted>"),
        None => text,
    }
}

fn connect_error(error: retina::Error, password: Option<&str>) -> SourceError {
    match error.status_code() {
        Some(401) => SourceError::Unauthorized,
        _ => SourceError::Connect(scrub(error.to_string(), password)),
    }
}

impl RtspSource {
    pub async fn open(url: Url, params: &OpenParams) -> Result<Self, SourceError> {
        let password = params.credentials.as_ref().map(|c| c.password.clone());
        let creds = params
            .credentials
            .as_ref()
            .map(|c| retina::client::Credentials {
                username: c.username.clone(),
                password: c.password.clone(),
            });
        let transport = match params.transport {
            RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
            RtspTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
        };
        let options = SessionOptions::default()
            .creds(creds)
            .user_agent(format!("anpr-ingest/{}", env!("CARGO_PKG_VERSION")));
        let pw = password.as_deref();
        let connect = async {
            let mut session = Session::describe(url, options)
                .await
                .map_err(|e| connect_error(e, pw))?;
            let found = session.streams().iter().enumerate().find_map(|(i, s)| {
                let codec = match (s.media(), s.encoding_name()) {
                    ("video", "h264") => Some(CodecId::H264),
                    ("video", "h265") => Some(CodecId::HEVC),
                    _ => None,
                };
                codec.map(|codec| (i, codec, s.clock_rate_hz()))
            });
            let Some((stream_id, codec, clock_rate)) = found else {
                let offered: Vec<String> = session
                    .streams()
                    .iter()
                    .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                    .collect();
                return Err(SourceError::NoVideo(format!(
                    "camera offers no H.264 or H.265 video stream (offered: {})",
                    offered.join(", ")
                )));
            };
            session
                .setup(
                    stream_id,
                    SetupOptions::default()
                        .transport(transport)
                        .frame_format(FrameFormat::SIMPLE),
                )
                .await
                .map_err(|e| connect_error(e, pw))?;
            let playing = session
                .play(PlayOptions::default())
                .await
                .map_err(|e| connect_error(e, pw))?;
            let demuxed = playing.demuxed().map_err(|e| connect_error(e, pw))?;
            Ok((demuxed, stream_id, codec, clock_rate))
        };
        let (demuxed, stream_id, codec, clock_rate) =
            tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| {
                    SourceError::Timeout(format!(
                        "camera did not start streaming within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ))
                })??;
        Ok(RtspSource {
            demuxed: Box::pin(demuxed),
            stream_id,
            clock_rate,
            clock: CaptureClock::default(),
            codec: Some(codec),
            password,
        })
    }

    async fn next_item(&mut self) -> Result<Option<SourceItem>, SourceError> {
        loop {
            let item = match self.demuxed.next().await {
                None => return Ok(None),
                Some(Err(error)) => {
                    return Err(SourceError::Stream(scrub(
                        error.to_string(),
                        self.password.as_deref(),
                    )))
                }
                Some(Ok(item)) => item,
            };
            match item {
                CodecItem::VideoFrame(frame) if frame.stream_id() == self.stream_id => {
                    let timestamp = frame.timestamp();
                    let capture_time = self.clock.capture_time(
                        timestamp.timestamp(),
                        self.clock_rate,
                        SystemTime::now(),
                    );
                    let rate = i128::from(self.clock_rate.max(1));
                    let media_time =
                        i64::try_from(i128::from(timestamp.elapsed()) * 1_000_000 / rate)
                            .unwrap_or(i64::MAX);
                    return Ok(Some(SourceItem::Video(VideoUnit {
                        keyframe: frame.is_random_access_point(),
                        after_loss: frame.loss() > 0,
                        data: frame.into_data(),
                        media_time,
                        capture_time,
                    })));
                }
                CodecItem::Rtcp(packet) if packet.stream_id() == self.stream_id => {
                    let Some(rtp) = packet.rtp_timestamp() else {
                        continue;
                    };
                    let report = packet
                        .pkts()
                        .next()
                        .and_then(|p| p.as_sender_report().ok().flatten())
                        .map(|sr| sr.ntp_timestamp().0);
                    if let Some(ntp) = report {
                        if !self.clock.synchronised() {
                            tracing::debug!("first RTCP sender report: capture times now follow the camera's clock");
                        }
                        self.clock.on_sender_report(SenderReport {
                            ntp,
                            rtp: rtp.timestamp(),
                        });
                    }
                }
                _ => {}
            }
        }
    }
}

impl FrameSource for RtspSource {
    fn take_decoder(&mut self) -> Option<DecoderSetup> {
        self.codec.take().map(DecoderSetup::Codec)
    }

    fn is_live(&self) -> bool {
        true
    }

    fn next(&mut self) -> BoxFuture<'_, Result<Option<SourceItem>, SourceError>> {
        Box::pin(self.next_item())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_scrubbed_from_error_texts() {
        assert_eq!(
            scrub("bad auth for s3cret at cam".into(), Some("s3cret")),
            "bad auth for <redacted> at cam"
        );
        assert_eq!(scrub("plain".into(), Some("")), "plain");
        assert_eq!(scrub("plain".into(), None), "plain");
    }
}
