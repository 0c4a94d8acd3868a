//! JPEG encoding with libjpeg-turbo, and fitting a frame under the bus's
//! payload limit.
//!
//! A frame is never dropped silently for being too large (a picture full of
//! noise or detail can pass 1 MiB at quality 85 in 1080p): it is re-encoded
//! at lower qualities, then at half size, and only dropped (and counted) when
//! nothing fits.

use crate::picture::I420;

#[derive(Debug, thiserror::Error)]
pub enum JpegError {
    #[error("JPEG encoder: {0}")]
    Turbo(#[from] turbojpeg::Error),
}

/// Baseline 4:2:0 JPEG straight from I420 planes.
pub struct JpegEncoder {
    compressor: turbojpeg::Compressor,
}

impl JpegEncoder {
    pub fn new() -> Result<Self, JpegError> {
        Ok(JpegEncoder {
            compressor: turbojpeg::Compressor::new()?,
        })
    }

    pub fn encode(&mut self, picture: &I420, quality: u8) -> Result<Vec<u8>, JpegError> {
        self.compressor
            .set_quality(i32::from(quality.clamp(1, 100)))?;
        let image = turbojpeg::YuvPlanesImage {
            y_plane: picture.y.as_slice(),
            u_plane: picture.u.as_slice(),
            v_plane: picture.v.as_slice(),
            width: picture.width,
            height: picture.height,
            y_stride: picture.width,
            u_stride: picture.chroma_width(),
            v_stride: picture.chroma_width(),
            subsamp: turbojpeg::Subsamp::Sub2x2,
        };
        Ok(self.compressor.compress_yuv_planes_to_vec(&image)?)
    }
}

/// One way of encoding a frame: a quality, and how many times the picture is
/// halved first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub quality: u8,
    pub halvings: u32,
}

/// Lower qualities tried, in order, before shrinking the picture.
const FALLBACK_QUALITIES: [u8; 3] = [70, 50, 30];
/// Quality used for shrunk pictures.
const SHRUNK_QUALITY: u8 = 50;
/// At most an eighth of the width and height: below that no plate is legible.
const MAX_HALVINGS: u32 = 3;

/// The attempts for a frame, best first: the configured quality, lower
/// qualities, then half, quarter and eighth size.
pub fn attempts(quality: u8) -> Vec<Attempt> {
    let quality = quality.clamp(1, 100);
    let mut list = vec![Attempt {
        quality,
        halvings: 0,
    }];
    list.extend(
        FALLBACK_QUALITIES
            .iter()
            .filter(|&&q| q < quality)
            .map(|&quality| Attempt {
                quality,
                halvings: 0,
            }),
    );
    list.extend((1..=MAX_HALVINGS).map(|halvings| Attempt {
        quality: SHRUNK_QUALITY.min(quality),
        halvings,
    }));
    list
}

/// A frame that fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    pub jpeg: Vec<u8>,
    pub attempt: Attempt,
}

#[derive(Debug, thiserror::Error)]
pub enum FitError<E> {
    #[error("frame is over the {limit}-byte payload limit even at 1/8 size ({smallest} bytes)")]
    TooLarge { limit: usize, smallest: usize },
    #[error(transparent)]
    Encode(E),
}

/// Encodes with each attempt in turn until the result is at most `limit`
/// bytes. `encode` gets each attempt; it may cache shrunk pictures.
pub fn fit<E>(
    limit: usize,
    quality: u8,
    mut encode: impl FnMut(Attempt) -> Result<Vec<u8>, E>,
) -> Result<Fitted, FitError<E>> {
    let mut smallest = usize::MAX;
    for attempt in attempts(quality) {
        let jpeg = encode(attempt).map_err(FitError::Encode)?;
        if jpeg.len() <= limit {
            return Ok(Fitted { jpeg, attempt });
        }
        smallest = smallest.min(jpeg.len());
    }
    Err(FitError::TooLarge { limit, smallest })
}

/// Room a `Frame` message needs besides its JPEG: the other fields (camera
/// id, IP, times, sizes, protobuf tags) and the trace headers.
pub fn frame_overhead(camera_id: &str, camera_ip: &str) -> usize {
    // Fixed fields: sequence, timestamp, sizes, tags and lengths < 64 bytes;
    // traceparent + tracestate headers < 256 bytes. Generous on purpose: the
    // NATS client refuses anything over the limit outright.
    512 + camera_id.len() + camera_ip.len()
}

/// The largest JPEG that fits a server whose limit is `max_payload`.
pub fn jpeg_limit(max_payload: usize, camera_id: &str, camera_ip: &str) -> usize {
    max_payload.saturating_sub(frame_overhead(camera_id, camera_ip))
}

/// A full-range picture with a fixed seed of noise, the hardest case for JPEG.
#[cfg(test)]
pub(crate) fn noise_picture(width: usize, height: usize) -> I420 {
    let mut state = 0x1234_5678u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state >> 24) as u8
    };
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    I420 {
        width,
        height,
        y: (0..width * height).map(|_| next()).collect(),
        u: (0..cw * ch).map(|_| next()).collect(),
        v: (0..cw * ch).map(|_| next()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_lower_quality_then_shrink() {
        let list = attempts(85);
        let qualities: Vec<_> = list.iter().map(|a| (a.quality, a.halvings)).collect();
        assert_eq!(
            qualities,
            [
                (85, 0),
                (70, 0),
                (50, 0),
                (30, 0),
                (50, 1),
                (50, 2),
                (50, 3)
            ]
        );
        // A configured quality below the fallbacks is never raised.
        let low: Vec<_> = attempts(40)
            .iter()
            .map(|a| (a.quality, a.halvings))
            .collect();
        assert_eq!(low, [(40, 0), (30, 0), (40, 1), (40, 2), (40, 3)]);
    }

    #[test]
    fn fit_takes_the_first_attempt_that_fits_or_reports_the_smallest() {
        // Size falls with quality and by 4x per halving.
        let size = |a: Attempt| (usize::from(a.quality) * 1000) >> (2 * a.halvings);
        let fitted = fit(60_000, 85, |a| Ok::<_, ()>(vec![0; size(a)])).expect("fits");
        assert_eq!(
            fitted.attempt,
            Attempt {
                quality: 50,
                halvings: 0
            }
        );
        let shrunk = fit(10_000, 85, |a| Ok::<_, ()>(vec![0; size(a)])).expect("fits");
        assert_eq!(
            shrunk.attempt,
            Attempt {
                quality: 50,
                halvings: 2
            }
        );
        let first = fit(1_000_000, 85, |a| Ok::<_, ()>(vec![0; size(a)])).expect("fits");
        assert_eq!(first.attempt.quality, 85);
        match fit(10, 85, |a| Ok::<_, ()>(vec![0; size(a)])) {
            Err(FitError::TooLarge { limit, smallest }) => {
                assert_eq!((limit, smallest), (10, 781));
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(matches!(
            fit(10, 85, |_| Err::<Vec<u8>, _>("broken")),
            Err(FitError::Encode("broken"))
        ));
    }

    #[test]
    fn a_noise_frame_over_the_limit_is_shrunk_until_it_fits() {
        let picture = noise_picture(640, 480);
        let mut encoder = JpegEncoder::new().expect("encoder");
        let full = encoder.encode(&picture, 85).expect("encodes");
        let limit = full.len() / 3;
        let mut halves = vec![picture];
        let fitted = fit(limit, 85, |attempt| {
            while halves.len() <= attempt.halvings as usize {
                let next = halves[halves.len() - 1].half();
                halves.push(next);
            }
            encoder.encode(&halves[attempt.halvings as usize], attempt.quality)
        })
        .expect("fits at some size");
        assert!(fitted.jpeg.len() <= limit);
        let header = turbojpeg::read_header(&fitted.jpeg).expect("valid JPEG");
        let expected = 640 >> fitted.attempt.halvings;
        assert_eq!(header.width, expected);
        assert!(jpeg_limit(1024 * 1024, "gate-1", "10.0.0.1") < 1024 * 1024);
        assert_eq!(jpeg_limit(100, "gate-1", "10.0.0.1"), 0);
    }
}
