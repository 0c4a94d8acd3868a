//! Text detection with the PP-OCRv4 DBNet model: image to input tensor, and
//! probability map to rotated text boxes in image coordinates.

use image::imageops::FilterType;
use image::RgbImage;

use crate::geometry::{self, Point, Quad};
use crate::models::TensorData;

/// Pixels of the probability map at or above this count as text.
pub const MAP_THRESHOLD: f32 = 0.3;
/// A region is kept when the mean probability inside its box reaches this.
pub const BOX_THRESHOLD: f32 = 0.5;
/// How far DBNet's shrunk regions are grown back (the model's training
/// setting). Measured on plates-us: 1.4 lost 3 plates, 2.0 lost 20 (the
/// crops take in the plate frame and its printing).
pub const UNCLIP_RATIO: f32 = 1.6;
/// Regions thinner than this many map pixels are noise.
const MIN_SIDE: f32 = 3.0;
/// At most this many regions are considered per image (largest first).
const MAX_REGIONS: usize = 200;

/// ImageNet mean and standard deviation, applied in the model's channel
/// order (B, G, R) as PaddleOCR's own detection preprocessing does; measured
/// slightly better than the plain `(x - 0.5) / 0.5` form on real plates.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// One text region found by the detector, in the original image's pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct TextBox {
    /// Corners clockwise from top-left.
    pub quad: Quad,
    /// Mean text probability inside the region, in [0, 1].
    pub score: f32,
}

/// The detector's input size for an image: the longest side scaled down to
/// at most `max_side` (never up: small images keep their scale), each side
/// rounded to a multiple of 32 (the network's stride), at least 32.
pub fn input_size(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let long = width.max(height).max(1) as f32;
    let scale = (max_side.max(32) as f32 / long).min(1.0);
    let round32 = |v: u32| -> u32 {
        let scaled = (v as f32 * scale / 32.0).round() as u32 * 32;
        scaled.max(32)
    };
    (round32(width), round32(height))
}

/// The detector input for `image`, and the factors that map the model's
/// coordinates back to the image's (x, y).
pub fn preprocess(image: &RgbImage, max_side: u32) -> (TensorData, (f32, f32)) {
    let (w, h) = input_size(image.width(), image.height(), max_side);
    let scale = (
        image.width() as f32 / w as f32,
        image.height() as f32 / h as f32,
    );
    let data = if scale.0 <= 2.0 && scale.1 <= 2.0 {
        // Mild scaling (the usual 720p/1080p frame): bilinear sampling
        // straight into the tensor, one pass, no intermediate image.
        bilinear_normalised(image, w, h)
    } else {
        // Strong downscaling needs a filter that averages every source
        // pixel, or fine text aliases away.
        let resized = image::imageops::resize(image, w, h, FilterType::Triangle);
        normalised(&resized)
    };
    (
        TensorData {
            shape: vec![1, 3, h as usize, w as usize],
            data,
        },
        scale,
    )
}

/// One normalised value of channel `c` (0 = B, 1 = G, 2 = R) from an RGB
/// byte value.
fn normalise(value: f32, c: usize) -> f32 {
    (value / 255.0 - MEAN[c]) / STD[c]
}

/// CHW BGR planes of an image at its own size.
fn normalised(image: &RgbImage) -> Vec<f32> {
    let plane = (image.width() * image.height()) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    for (i, px) in image.pixels().enumerate() {
        for c in 0..3 {
            data[c * plane + i] = normalise(px.0[2 - c] as f32, c);
        }
    }
    data
}

/// CHW BGR planes of `image` resampled to `w` x `h` with bilinear
/// interpolation (pixel centres aligned).
fn bilinear_normalised(image: &RgbImage, w: u32, h: u32) -> Vec<f32> {
    let (iw, ih) = image.dimensions();
    let plane = (w * h) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    let sx = iw as f32 / w as f32;
    let sy = ih as f32 / h as f32;
    let raw = image.as_raw();
    let stride = iw as usize * 3;
    // Horizontal taps are the same for every row: compute them once.
    let taps: Vec<(usize, usize, f32)> = (0..w)
        .map(|x| {
            let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (iw - 1) as f32);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(iw as usize - 1);
            (x0 * 3, x1 * 3, fx - x0 as f32)
        })
        .collect();
    for y in 0..h as usize {
        let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (ih - 1) as f32);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(ih as usize - 1);
        let wy = fy - y0 as f32;
        let row0 = &raw[y0 * stride..(y0 + 1) * stride];
        let row1 = &raw[y1 * stride..(y1 + 1) * stride];
        for (x, &(a, b, wx)) in taps.iter().enumerate() {
            let i = y * w as usize + x;
            for c in 0..3 {
                // Source channel 2 - c: RGB bytes into BGR planes.
                let k = 2 - c;
                let top = row0[a + k] as f32 * (1.0 - wx) + row0[b + k] as f32 * wx;
                let bottom = row1[a + k] as f32 * (1.0 - wx) + row1[b + k] as f32 * wx;
                data[c * plane + i] = normalise(top * (1.0 - wy) + bottom * wy, c);
            }
        }
    }
    data
}

/// Turns the detector's probability map (shape `[1, 1, H, W]`) into text
/// boxes, scaled by `scale` into an image of `bounds` (width, height).
pub fn postprocess(
    map: &TensorData,
    scale: (f32, f32),
    bounds: (u32, u32),
) -> Result<Vec<TextBox>, String> {
    let (h, w) = match map.shape.as_slice() {
        [1, 1, h, w] | [1, h, w] => (*h, *w),
        other => return Err(format!("unexpected detector output shape {other:?}")),
    };
    if map.data.len() != h * w {
        return Err("detector output size does not match its shape".into());
    }
    let prob = &map.data;
    let regions = connected_regions(prob, w, h, MAP_THRESHOLD);
    let mut boxes = Vec::new();
    for region in regions.into_iter().take(MAX_REGIONS) {
        let points: Vec<Point> = region
            .iter()
            .map(|&i| Point::new((i % w) as f32, (i / w) as f32))
            .collect();
        let Some(rect) = geometry::min_area_rect(&points) else {
            continue;
        };
        // Pixel centres span one pixel less than the region: count whole
        // pixels.
        let rect = rect.grown(0.5);
        if rect.width.min(rect.height) < MIN_SIDE {
            continue;
        }
        let score = mean_inside(prob, w, h, &rect.corners());
        if score < BOX_THRESHOLD {
            continue;
        }
        let grown = rect.grown(geometry::unclip_distance(
            rect.width,
            rect.height,
            UNCLIP_RATIO,
        ));
        if grown.width.min(grown.height) < MIN_SIDE + 2.0 {
            continue;
        }
        let (bw, bh) = (bounds.0 as f32, bounds.1 as f32);
        let quad = grown.corners().map(|p| {
            Point::new(
                (p.x * scale.0).clamp(0.0, bw),
                (p.y * scale.1).clamp(0.0, bh),
            )
        });
        boxes.push(TextBox {
            quad: geometry::order_quad(quad),
            score,
        });
    }
    Ok(boxes)
}

/// 8-connected regions of pixels at or above `threshold`, as lists of flat
/// indices, largest first.
fn connected_regions(prob: &[f32], w: usize, h: usize, threshold: f32) -> Vec<Vec<usize>> {
    let mut seen = vec![false; prob.len()];
    let mut regions = Vec::new();
    let mut stack = Vec::new();
    for start in 0..prob.len() {
        if seen[start] || prob[start] < threshold {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut region = Vec::new();
        while let Some(i) = stack.pop() {
            region.push(i);
            let (x, y) = (i % w, i / w);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if !seen[j] && prob[j] >= threshold {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        regions.push(region);
    }
    regions.sort_by_key(|r| std::cmp::Reverse(r.len()));
    regions
}

/// Mean probability of the map pixels whose centres lie inside `quad`.
fn mean_inside(prob: &[f32], w: usize, h: usize, quad: &Quad) -> f32 {
    let b = geometry::quad_bounds(quad);
    let x0 = b.x.floor().max(0.0) as usize;
    let y0 = b.y.floor().max(0.0) as usize;
    let x1 = ((b.x + b.width).ceil() as usize).min(w);
    let y1 = ((b.y + b.height).ceil() as usize).min(h);
    let (mut sum, mut n) = (0.0f32, 0u32);
    for y in y0..y1 {
        for x in x0..x1 {
            if geometry::quad_contains(quad, Point::new(x as f32, y as f32)) {
                sum += prob[y * w + x];
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_size_scales_down_and_rounds_to_32() {
        assert_eq!(input_size(1280, 720, 960), (960, 544));
        assert_eq!(input_size(720, 1280, 960), (544, 960));
        // Never scaled up.
        assert_eq!(input_size(300, 100, 960), (288, 96));
        assert_eq!(input_size(10, 5, 960), (32, 32));
        assert_eq!(input_size(4000, 3000, 640), (640, 480));
    }

    #[test]
    fn preprocess_normalises_in_bgr_order() {
        let img = RgbImage::from_pixel(64, 32, image::Rgb([255, 0, 0]));
        let (t, scale) = preprocess(&img, 960);
        assert_eq!(t.shape, vec![1, 3, 32, 64]);
        assert_eq!(scale, (1.0, 1.0));
        let plane = 64 * 32;
        // Blue plane first: blue is 0 in a red image.
        assert!((t.data[0] - (0.0 - MEAN[0]) / STD[0]).abs() < 1e-5);
        assert!((t.data[2 * plane] - (1.0 - MEAN[2]) / STD[2]).abs() < 1e-5);
    }

    #[test]
    fn bilinear_resampling_keeps_flat_areas_and_halves_evenly() {
        // Left half black, right half white, 128x64 down to 64x32.
        let img = RgbImage::from_fn(128, 64, |x, _| {
            if x < 64 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let data = bilinear_normalised(&img, 64, 32);
        let plane = 64 * 32;
        assert_eq!(data.len(), 3 * plane);
        let black = normalise(0.0, 0);
        let white = normalise(255.0, 0);
        assert!((data[10 * 64 + 5] - black).abs() < 1e-5);
        assert!((data[10 * 64 + 60] - white).abs() < 1e-5);
        // A strong downscale goes through the averaging resize instead.
        let big = RgbImage::from_pixel(4000, 100, image::Rgb([10, 20, 30]));
        let (t, scale) = preprocess(&big, 960);
        assert_eq!(t.shape, vec![1, 3, 32, 960]);
        assert!(scale.0 > 4.0);
        assert!((t.data[0] - normalise(30.0, 0)).abs() < 1e-3);
    }

    #[test]
    fn postprocess_finds_two_separate_regions() {
        let (w, h) = (64usize, 32usize);
        let mut data = vec![0.0f32; w * h];
        for y in 10..16 {
            for x in 5..30 {
                data[y * w + x] = 0.9;
            }
            for x in 40..60 {
                data[y * w + x] = 0.8;
            }
        }
        // A speck below the minimum size is ignored.
        data[25 * w + 10] = 0.9;
        let map = TensorData {
            shape: vec![1, 1, h, w],
            data,
        };
        let mut boxes = postprocess(&map, (2.0, 2.0), (128, 64)).unwrap();
        assert_eq!(boxes.len(), 2);
        boxes.sort_by(|a, b| a.quad[0].x.total_cmp(&b.quad[0].x));
        let b = geometry::quad_bounds(&boxes[0].quad);
        // Grown around the 25x6 kernel, scaled by 2.
        assert!(b.x < 10.0 && b.x + b.width > 60.0, "{b:?}");
        assert!(b.y < 20.0 && b.y + b.height > 32.0, "{b:?}");
        assert!((boxes[0].score - 0.9).abs() < 1e-4);
        assert!(postprocess(
            &TensorData {
                shape: vec![2, 2],
                data: vec![0.0; 4]
            },
            (1.0, 1.0),
            (2, 2)
        )
        .is_err());
    }
}
