//! A recorded clip (MP4, MPEG-TS, anything FFmpeg demuxes) played as a
//! camera: for tests, demos and offline runs.
//!
//! FFmpeg's demuxer blocks, so it runs on its own thread and hands compressed
//! frames over a small channel; the channel's back-pressure is what makes
//! `rate=fast` go exactly as fast as the pipeline. `rate=native` paces the
//! frames by their timestamps. `loop=true` reopens the file at its end.
//! `rate=live` anchors the passes to the wall clock (pass `k` starts at
//! `epoch + k × length`) and joins a pass at the first key frame that is not
//! already past, as a viewer joins a live camera.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use ffmpeg_next as ffmpeg;
use tokio::sync::{mpsc, oneshot};

use super::{BoxFuture, FrameSource, SourceError, SourceItem, VideoUnit};
use crate::camera_url::Rate;
use crate::decode::{init_ffmpeg, DecoderSetup};
use crate::sampler::MediaMicros;

/// Frames read ahead of the pipeline.
const READ_AHEAD: usize = 8;
/// A timestamp jump larger than this (or backwards) restarts the pacing
/// instead of stalling or bursting.
const MAX_PACING_GAP: MediaMicros = 5_000_000;
/// Longest single sleep, so a stopped worker's thread notices soon.
const SLEEP_SLICE: Duration = Duration::from_millis(100);
/// How late a key frame may be and still start a live pass.
const LIVE_SLACK: Duration = Duration::from_millis(200);

/// Where the wall clock is in a live clip: when the pass it is in began.
/// The passes repeat before the epoch too, as a camera shows its scene
/// before anyone counts.
pub fn live_pass_begin(epoch: SystemTime, length: Duration, now: SystemTime) -> SystemTime {
    let length_us = length.as_micros().max(1);
    let micros = |n: u128| Duration::from_micros(u64::try_from(n).unwrap_or(u64::MAX));
    match now.duration_since(epoch) {
        Ok(since) => epoch
            .checked_add(micros(since.as_micros() / length_us * length_us))
            .unwrap_or(now),
        Err(before) => {
            let passes = before.duration().as_micros().div_ceil(length_us);
            epoch.checked_sub(micros(passes * length_us)).unwrap_or(now)
        }
    }
}

/// Sleeps until `due` in slices; `false` when the receiver went away.
fn sleep_until(due: SystemTime, tx: &mpsc::Sender<Result<VideoUnit, SourceError>>) -> bool {
    while let Ok(wait) = due.duration_since(SystemTime::now()) {
        if wait.is_zero() {
            break;
        }
        if tx.is_closed() {
            return false;
        }
        std::thread::sleep(wait.min(SLEEP_SLICE));
    }
    true
}

/// Real-time pacing by media timestamps.
#[derive(Debug, Default, Clone)]
pub struct Pacer {
    origin: Option<(Instant, MediaMicros)>,
}

impl Pacer {
    /// Forgets the timeline (a new pass over the file).
    pub fn restart(&mut self) {
        self.origin = None;
    }

    /// How long to wait, at `now`, before the frame at media time `t` is due.
    pub fn wait(&mut self, t: MediaMicros, now: Instant) -> Duration {
        let Some((start, t0)) = self.origin else {
            self.origin = Some((now, t));
            return Duration::ZERO;
        };
        let offset = t - t0;
        // How far the frame is ahead of real time.
        let ahead = offset - micros_since(start, now);
        if offset < 0 || ahead > MAX_PACING_GAP {
            self.origin = Some((now, t));
            return Duration::ZERO;
        }
        let due = start + Duration::from_micros(u64::try_from(offset).unwrap_or(0));
        due.saturating_duration_since(now)
    }
}

fn micros_since(start: Instant, now: Instant) -> MediaMicros {
    i64::try_from(now.saturating_duration_since(start).as_micros()).unwrap_or(i64::MAX)
}

fn to_micros(ts: i64, time_base: ffmpeg::Rational) -> Option<MediaMicros> {
    let (num, den) = (
        i128::from(time_base.numerator()),
        i128::from(time_base.denominator()),
    );
    if den == 0 {
        return None;
    }
    i64::try_from(i128::from(ts) * num * 1_000_000 / den).ok()
}

pub struct ClipSource {
    rx: mpsc::Receiver<Result<VideoUnit, SourceError>>,
    setup: Option<DecoderSetup>,
}

impl ClipSource {
    pub async fn open(path: PathBuf, looped: bool, rate: Rate) -> Result<Self, SourceError> {
        let (info_tx, info_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        std::thread::Builder::new()
            .name("ingest-clip".into())
            .spawn(move || demux(&path, looped, rate, info_tx, tx))
            .map_err(|err| SourceError::File(format!("starting the reader thread: {err}")))?;
        let setup = info_rx.await.map_err(|_| {
            SourceError::File("the reader stopped before the stream was known".into())
        })??;
        Ok(ClipSource {
            rx,
            setup: Some(setup),
        })
    }
}

impl FrameSource for ClipSource {
    fn take_decoder(&mut self) -> Option<DecoderSetup> {
        self.setup.take()
    }

    fn is_live(&self) -> bool {
        false
    }

    fn next(&mut self) -> BoxFuture<'_, Result<Option<SourceItem>, SourceError>> {
        Box::pin(async move {
            match self.rx.recv().await {
                None => Ok(None),
                Some(Ok(unit)) => Ok(Some(SourceItem::Video(unit))),
                Some(Err(err)) => Err(err),
            }
        })
    }
}

type InfoSender = oneshot::Sender<Result<DecoderSetup, SourceError>>;

/// The reader thread: passes over the file until it ends (or forever with
/// `looped`), or until the receiver is gone.
fn demux(
    path: &Path,
    looped: bool,
    rate: Rate,
    info_tx: InfoSender,
    tx: mpsc::Sender<Result<VideoUnit, SourceError>>,
) {
    init_ffmpeg();
    let mut info_tx = Some(info_tx);
    let fail = |info_tx: &mut Option<InfoSender>, error: SourceError| match info_tx.take() {
        Some(info) => {
            let _ = info.send(Err(error));
        }
        None => {
            let _ = tx.blocking_send(Err(error));
        }
    };
    let mut pacer = Pacer::default();
    let live_epoch = match rate {
        Rate::Live { epoch_ms } => Some(SystemTime::UNIX_EPOCH + Duration::from_millis(epoch_ms)),
        _ => None,
    };
    // The start of the next live pass: the one the clock is in at first,
    // then one clip length later each time.
    let mut next_pass: Option<SystemTime> = None;
    loop {
        let mut input = match ffmpeg::format::input(path) {
            Ok(input) => input,
            Err(err) => {
                fail(
                    &mut info_tx,
                    SourceError::File(format!("cannot open {}: {err}", path.display())),
                );
                return;
            }
        };
        let Some(stream) = input.streams().best(ffmpeg::media::Type::Video) else {
            fail(
                &mut info_tx,
                SourceError::NoVideo(format!("{} has no video stream", path.display())),
            );
            return;
        };
        let index = stream.index();
        let time_base = stream.time_base();
        // An owned copy: the decoder lives on another thread than the demuxer.
        let parameters = stream.parameters().clone();
        if let Some(info) = info_tx.take() {
            if info.send(Ok(DecoderSetup::Parameters(parameters))).is_err() {
                return;
            }
        }
        pacer.restart();
        let pass_begin = match live_epoch {
            Some(epoch) => {
                let length = u64::try_from(input.duration())
                    .ok()
                    .filter(|&micros| micros > 0)
                    .map(Duration::from_micros);
                let Some(length) = length else {
                    fail(
                        &mut info_tx,
                        SourceError::File(format!(
                            "{}: rate=live needs a clip of known length",
                            path.display()
                        )),
                    );
                    return;
                };
                let begin =
                    next_pass.unwrap_or_else(|| live_pass_begin(epoch, length, SystemTime::now()));
                next_pass = Some(begin + length);
                Some(begin)
            }
            None => None,
        };
        let mut joined = false;
        let mut first_pace: Option<MediaMicros> = None;
        let mut demuxed = 0u64;
        let mut last_media: MediaMicros = 0;
        for (stream, packet) in input.packets() {
            if stream.index() != index {
                continue;
            }
            let Some(data) = packet.data() else { continue };
            let media_time = packet
                .pts()
                .or(packet.dts())
                .and_then(|ts| to_micros(ts, time_base))
                .unwrap_or(last_media);
            last_media = media_time;
            demuxed += 1;
            if let Some(begin) = pass_begin {
                let pace_at = packet
                    .dts()
                    .and_then(|ts| to_micros(ts, time_base))
                    .unwrap_or(media_time);
                let origin = *first_pace.get_or_insert(pace_at);
                let offset = u64::try_from(pace_at - origin).unwrap_or(0);
                let due = begin + Duration::from_micros(offset);
                if !joined {
                    // Join at a key frame that is not already past.
                    if !packet.is_key() || due + LIVE_SLACK < SystemTime::now() {
                        continue;
                    }
                    joined = true;
                }
                if !sleep_until(due, &tx) {
                    return;
                }
            } else if rate == Rate::Native {
                // Decode order is what arrives; pace by it.
                let pace_at = packet
                    .dts()
                    .and_then(|ts| to_micros(ts, time_base))
                    .unwrap_or(media_time);
                let mut wait = pacer.wait(pace_at, Instant::now());
                while !wait.is_zero() {
                    if tx.is_closed() {
                        return;
                    }
                    let slice = wait.min(SLEEP_SLICE);
                    std::thread::sleep(slice);
                    wait -= slice;
                }
            }
            let unit = VideoUnit {
                data: data.to_vec(),
                keyframe: packet.is_key(),
                media_time,
                capture_time: SystemTime::now(),
                after_loss: false,
            };
            if tx.blocking_send(Ok(unit)).is_err() {
                return;
            }
        }
        if demuxed == 0 {
            fail(
                &mut info_tx,
                SourceError::NoVideo(format!("{} has no video frames", path.display())),
            );
            return;
        }
        if !looped {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_follows_timestamps_and_restarts_on_jumps() {
        let start = Instant::now();
        let mut pacer = Pacer::default();
        assert_eq!(pacer.wait(1_000_000, start), Duration::ZERO);
        // 40 ms later in media time, 10 ms later in real time: wait 30 ms.
        let now = start + Duration::from_millis(10);
        assert_eq!(pacer.wait(1_040_000, now), Duration::from_millis(30));
        // Running late: no wait, no catching up by waiting less later.
        let late = start + Duration::from_millis(500);
        assert_eq!(pacer.wait(1_080_000, late), Duration::ZERO);
        // Backwards (a new timeline) and far ahead restart the pacing.
        assert_eq!(pacer.wait(0, late), Duration::ZERO);
        assert_eq!(pacer.wait(40_000, late), Duration::from_millis(40));
        assert_eq!(pacer.wait(60_000_000, late), Duration::ZERO);
        assert_eq!(pacer.wait(60_100_000, late), Duration::from_millis(100));
    }

    #[test]
    fn live_passes_follow_the_wall_clock() {
        let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let length = Duration::from_secs(20);
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(live_pass_begin(epoch, length, at(1_005)), epoch);
        assert_eq!(live_pass_begin(epoch, length, at(1_020)), at(1_020));
        assert_eq!(live_pass_begin(epoch, length, at(1_059)), at(1_040));
        // Before the epoch the passes repeat backwards.
        assert_eq!(live_pass_begin(epoch, length, at(995)), at(980));
        assert_eq!(live_pass_begin(epoch, length, at(980)), at(980));
    }

    #[test]
    fn timestamps_convert_by_time_base() {
        assert_eq!(
            to_micros(90_000, ffmpeg::Rational::new(1, 90_000)),
            Some(1_000_000)
        );
        assert_eq!(to_micros(3, ffmpeg::Rational::new(1, 25)), Some(120_000));
        assert_eq!(to_micros(3, ffmpeg::Rational::new(1, 0)), None);
    }
}
