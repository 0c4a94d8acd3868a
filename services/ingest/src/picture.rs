//! Decoded pictures as planar YUV 4:2:0 (I420), the layout both the H.264
//! decoder and the JPEG encoder use, so a picture goes from one to the other
//! without a trip through RGB.
//!
//! Video is "limited range" (luma 16-235, chroma 16-240) while JPEG (JFIF) is
//! full range (0-255). Handing limited-range planes to the JPEG encoder
//! unchanged makes white plates light grey and black ones dark grey, which
//! costs OCR contrast; [`I420::from_planes`] expands the range while copying.

/// The value range of YUV samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// Video levels: luma 16-235, chroma 16-240 (the default for H.264/H.265).
    Limited,
    /// JPEG levels: 0-255.
    Full,
}

/// A planar 4:2:0 picture at full range, planes packed (stride = width).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420 {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PictureError {
    #[error("picture has no pixels ({width}x{height})")]
    Empty { width: usize, height: usize },
    #[error("plane {plane} holds {len} bytes, a {rows}x{stride} plane needs {needed}")]
    ShortPlane {
        plane: &'static str,
        len: usize,
        rows: usize,
        stride: usize,
        needed: usize,
    },
}

/// One plane as the decoder hands it: rows of `stride` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    pub data: &'a [u8],
    pub stride: usize,
}

const fn luma_lut() -> [u8; 256] {
    let mut lut = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        // (y - 16) * 255 / 219, rounded, clamped.
        let scaled = (i as i32 - 16) * 255;
        let value = if scaled <= 0 { 0 } else { (scaled + 109) / 219 };
        lut[i] = if value > 255 { 255 } else { value as u8 };
        i += 1;
    }
    lut
}

const fn chroma_lut() -> [u8; 256] {
    let mut lut = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        // (c - 128) * 255 / 224 + 128, rounded half away from zero, clamped.
        let d = (i as i32 - 128) * 255;
        let r = if d >= 0 {
            (d + 112) / 224
        } else {
            -((-d + 112) / 224)
        };
        let value = 128 + r;
        lut[i] = if value < 0 {
            0
        } else if value > 255 {
            255
        } else {
            value as u8
        };
        i += 1;
    }
    lut
}

static LUMA_EXPAND: [u8; 256] = luma_lut();
static CHROMA_EXPAND: [u8; 256] = chroma_lut();

/// A limited-range luma sample at full range (16 -> 0, 235 -> 255).
pub fn expand_luma(y: u8) -> u8 {
    LUMA_EXPAND[usize::from(y)]
}

/// A limited-range chroma sample at full range (16 -> 0, 128 -> 128, 240 -> 255).
pub fn expand_chroma(c: u8) -> u8 {
    CHROMA_EXPAND[usize::from(c)]
}

fn copy_plane(
    name: &'static str,
    plane: Plane<'_>,
    width: usize,
    rows: usize,
    lut: Option<&[u8; 256]>,
) -> Result<Vec<u8>, PictureError> {
    let needed = if rows == 0 {
        0
    } else {
        plane.stride * (rows - 1) + width
    };
    if plane.stride < width || plane.data.len() < needed {
        return Err(PictureError::ShortPlane {
            plane: name,
            len: plane.data.len(),
            rows,
            stride: plane.stride,
            needed,
        });
    }
    let mut out = Vec::with_capacity(width * rows);
    for row in 0..rows {
        let start = row * plane.stride;
        let line = &plane.data[start..start + width];
        match lut {
            Some(lut) => out.extend(line.iter().map(|&s| lut[usize::from(s)])),
            None => out.extend_from_slice(line),
        }
    }
    Ok(out)
}

impl I420 {
    pub fn chroma_width(&self) -> usize {
        self.width.div_ceil(2)
    }

    pub fn chroma_height(&self) -> usize {
        self.height.div_ceil(2)
    }

    /// Copies decoder planes into a packed full-range picture.
    pub fn from_planes(
        width: usize,
        height: usize,
        y: Plane<'_>,
        u: Plane<'_>,
        v: Plane<'_>,
        range: Range,
    ) -> Result<Self, PictureError> {
        if width == 0 || height == 0 {
            return Err(PictureError::Empty { width, height });
        }
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let (luma, chroma) = match range {
            Range::Limited => (Some(&LUMA_EXPAND), Some(&CHROMA_EXPAND)),
            Range::Full => (None, None),
        };
        Ok(I420 {
            width,
            height,
            y: copy_plane("y", y, width, height, luma)?,
            u: copy_plane("u", u, cw, ch, chroma)?,
            v: copy_plane("v", v, cw, ch, chroma)?,
        })
    }

    /// The picture at half width and height (each output sample the mean of
    /// a 2x2 block): the last resort for a frame too large for the bus.
    pub fn half(&self) -> I420 {
        let width = (self.width / 2).max(1);
        let height = (self.height / 2).max(1);
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        I420 {
            width,
            height,
            y: halve(&self.y, self.width, self.height, width, height),
            u: halve(&self.u, self.chroma_width(), self.chroma_height(), cw, ch),
            v: halve(&self.v, self.chroma_width(), self.chroma_height(), cw, ch),
        }
    }
}

/// Box-filters a packed plane to `out_w` x `out_h` (about half its size),
/// clamping at the right and bottom edges of odd-sized planes.
fn halve(src: &[u8], w: usize, h: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(out_w * out_h);
    for oy in 0..out_h {
        let y0 = (oy * 2).min(h - 1);
        let y1 = (oy * 2 + 1).min(h - 1);
        for ox in 0..out_w {
            let x0 = (ox * 2).min(w - 1);
            let x1 = (ox * 2 + 1).min(w - 1);
            let sum = u32::from(src[y0 * w + x0])
                + u32::from(src[y0 * w + x1])
                + u32::from(src[y1 * w + x0])
                + u32::from(src[y1 * w + x1]);
            out.push(((sum + 2) / 4) as u8);
        }
    }
    out
}

/// Converts packed RGB (3 bytes a pixel, rows of `pitch` bytes) to a
/// full-range I420 picture with the JFIF (BT.601 full-range) equations.
pub fn rgb_to_i420(
    rgb: &[u8],
    width: usize,
    height: usize,
    pitch: usize,
) -> Result<I420, PictureError> {
    if width == 0 || height == 0 {
        return Err(PictureError::Empty { width, height });
    }
    let needed = pitch * (height - 1) + width * 3;
    if pitch < width * 3 || rgb.len() < needed {
        return Err(PictureError::ShortPlane {
            plane: "rgb",
            len: rgb.len(),
            rows: height,
            stride: pitch,
            needed,
        });
    }
    let pixel = |x: usize, y: usize| {
        let at = y * pitch + x * 3;
        (
            f32::from(rgb[at]),
            f32::from(rgb[at + 1]),
            f32::from(rgb[at + 2]),
        )
    };
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    let mut y_plane = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let (r, g, b) = pixel(x, y);
            y_plane.push(clamp(0.299 * r + 0.587 * g + 0.114 * b));
        }
    }
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let mut u_plane = Vec::with_capacity(cw * ch);
    let mut v_plane = Vec::with_capacity(cw * ch);
    for cy in 0..ch {
        for cx in 0..cw {
            let (mut r, mut g, mut b, mut n) = (0.0, 0.0, 0.0, 0.0);
            for y in (cy * 2)..(cy * 2 + 2).min(height) {
                for x in (cx * 2)..(cx * 2 + 2).min(width) {
                    let (pr, pg, pb) = pixel(x, y);
                    r += pr;
                    g += pg;
                    b += pb;
                    n += 1.0;
                }
            }
            let (r, g, b) = (r / n, g / n, b / n);
            u_plane.push(clamp(128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b));
            v_plane.push(clamp(128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b));
        }
    }
    Ok(I420 {
        width,
        height,
        y: y_plane,
        u: u_plane,
        v: v_plane,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_range_white_and_black_become_full_range() {
        assert_eq!(expand_luma(235), 255);
        assert_eq!(expand_luma(240), 255);
        assert_eq!(expand_luma(16), 0);
        assert_eq!(expand_luma(0), 0);
        assert_eq!(expand_luma(126), 128);
        assert_eq!(expand_chroma(128), 128);
        assert_eq!(expand_chroma(240), 255);
        assert_eq!(expand_chroma(16), 0);
        // Monotonic: no banding inversions.
        assert!((1..=255u8).all(|v| expand_luma(v) >= expand_luma(v - 1)));
        assert!((1..=255u8).all(|v| expand_chroma(v) >= expand_chroma(v - 1)));
    }

    #[test]
    fn planes_are_copied_by_stride_and_expanded() {
        // 3x2 picture, luma stride 4 (one padding byte per row), chroma 2x1.
        let y = [235, 16, 126, 99, 235, 235, 235, 99];
        let u = [128, 240, 7];
        let v = [16, 128, 7];
        let picture = I420::from_planes(
            3,
            2,
            Plane {
                data: &y,
                stride: 4,
            },
            Plane {
                data: &u,
                stride: 3,
            },
            Plane {
                data: &v,
                stride: 3,
            },
            Range::Limited,
        )
        .expect("valid");
        assert_eq!(picture.y, [255, 0, 128, 255, 255, 255]);
        assert_eq!(picture.u, [128, 255]);
        assert_eq!(picture.v, [0, 128]);
        let full = I420::from_planes(
            3,
            2,
            Plane {
                data: &y,
                stride: 4,
            },
            Plane {
                data: &u,
                stride: 3,
            },
            Plane {
                data: &v,
                stride: 3,
            },
            Range::Full,
        )
        .expect("valid");
        assert_eq!(full.y, [235, 16, 126, 235, 235, 235]);
        let short = I420::from_planes(
            3,
            2,
            Plane {
                data: &y[..6],
                stride: 4,
            },
            Plane {
                data: &u,
                stride: 3,
            },
            Plane {
                data: &v,
                stride: 3,
            },
            Range::Full,
        );
        assert!(matches!(
            short,
            Err(PictureError::ShortPlane { plane: "y", .. })
        ));
    }

    #[test]
    fn halving_averages_blocks_and_handles_odd_sizes() {
        let picture = I420 {
            width: 3,
            height: 3,
            y: vec![0, 100, 50, 200, 100, 50, 10, 10, 10],
            u: vec![10, 20, 30, 40],
            v: vec![128; 4],
        };
        let half = picture.half();
        assert_eq!((half.width, half.height), (1, 1));
        assert_eq!(half.y, [100]);
        assert_eq!(half.u, [25]);
        assert_eq!(half.v, [128]);
    }

    #[test]
    fn rgb_white_stays_white_and_grey_has_no_colour() {
        let white = vec![255u8; 4 * 2 * 3];
        let picture = rgb_to_i420(&white, 4, 2, 12).expect("valid");
        assert!(picture.y.iter().all(|&v| v == 255));
        assert!(picture.u.iter().chain(&picture.v).all(|&v| v == 128));
        let red = [255u8, 0, 0].repeat(4);
        let picture = rgb_to_i420(&red, 2, 2, 6).expect("valid");
        assert_eq!(picture.y, [76; 4]);
        assert_eq!(picture.v, [255]);
    }
}
