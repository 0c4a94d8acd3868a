//! Plane geometry for text boxes: minimum-area rotated rectangles around
//! detector regions, growing ("unclipping") them, corner ordering,
//! perspective crops and overlaps. Pure functions on plain data.

use image::{Rgb, RgbImage};

use crate::types::Rect;

/// A point in pixels, `x` to the right, `y` down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub fn new(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    fn sub(self, other: Point) -> Point {
        Point::new(self.x - other.x, self.y - other.y)
    }

    fn dist(self, other: Point) -> f32 {
        let d = self.sub(other);
        (d.x * d.x + d.y * d.y).sqrt()
    }
}

/// Four corners, clockwise from top-left (in image coordinates, where y
/// grows downwards): top-left, top-right, bottom-right, bottom-left.
pub type Quad = [Point; 4];

fn cross(o: Point, a: Point, b: Point) -> f32 {
    (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x)
}

/// Convex hull (Andrew's monotone chain), counter-clockwise in a y-up frame.
/// Duplicates and collinear points are dropped.
pub fn convex_hull(points: &[Point]) -> Vec<Point> {
    let mut pts: Vec<Point> = points
        .iter()
        .copied()
        .filter(|p| p.x.is_finite() && p.y.is_finite())
        .collect();
    pts.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let mut hull: Vec<Point> = Vec::with_capacity(pts.len() * 2);
    for &p in &pts {
        while hull.len() >= 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
            hull.pop();
        }
        hull.push(p);
    }
    let lower_len = hull.len() + 1;
    for &p in pts.iter().rev().skip(1) {
        while hull.len() >= lower_len && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
        {
            hull.pop();
        }
        hull.push(p);
    }
    hull.pop();
    hull
}

/// A rotated rectangle: centre, side lengths and the direction of the
/// `width` side (unit vector).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedRect {
    pub center: Point,
    pub width: f32,
    pub height: f32,
    /// Unit vector along the `width` side.
    pub axis: Point,
}

impl RotatedRect {
    /// Corners in clockwise order from top-left (see [`order_quad`]).
    pub fn corners(&self) -> Quad {
        let (ux, uy) = (self.axis.x, self.axis.y);
        // Perpendicular to the axis.
        let (vx, vy) = (-uy, ux);
        let (hw, hh) = (self.width / 2.0, self.height / 2.0);
        let c = self.center;
        let p = |a: f32, b: f32| Point::new(c.x + a * ux + b * vx, c.y + a * uy + b * vy);
        order_quad([p(-hw, -hh), p(hw, -hh), p(hw, hh), p(-hw, hh)])
    }

    /// Grows every side outwards by `distance` pixels.
    pub fn grown(&self, distance: f32) -> RotatedRect {
        RotatedRect {
            width: (self.width + 2.0 * distance).max(0.0),
            height: (self.height + 2.0 * distance).max(0.0),
            ..*self
        }
    }
}

/// The rotated rectangle of least area containing all `points` (rotating
/// calipers over the convex hull's edges). `None` for fewer than one point.
pub fn min_area_rect(points: &[Point]) -> Option<RotatedRect> {
    let hull = convex_hull(points);
    match hull.len() {
        0 => return None,
        1 => {
            return Some(RotatedRect {
                center: hull[0],
                width: 0.0,
                height: 0.0,
                axis: Point::new(1.0, 0.0),
            })
        }
        _ => {}
    }
    let mut best: Option<(f32, RotatedRect)> = None;
    for i in 0..hull.len() {
        let a = hull[i];
        let b = hull[(i + 1) % hull.len()];
        let len = a.dist(b);
        if len <= f32::EPSILON {
            continue;
        }
        let u = Point::new((b.x - a.x) / len, (b.y - a.y) / len);
        let v = Point::new(-u.y, u.x);
        let (mut min_u, mut max_u, mut min_v, mut max_v) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for p in &hull {
            let pu = p.x * u.x + p.y * u.y;
            let pv = p.x * v.x + p.y * v.y;
            min_u = min_u.min(pu);
            max_u = max_u.max(pu);
            min_v = min_v.min(pv);
            max_v = max_v.max(pv);
        }
        let area = (max_u - min_u) * (max_v - min_v);
        if best.as_ref().is_none_or(|(a, _)| area < *a) {
            let cu = (min_u + max_u) / 2.0;
            let cv = (min_v + max_v) / 2.0;
            let center = Point::new(cu * u.x + cv * v.x, cu * u.y + cv * v.y);
            let (mut width, mut height, mut axis) = (max_u - min_u, max_v - min_v, u);
            // Keep the width side the more horizontal one so that text reads
            // left to right.
            if axis.x.abs() < axis.y.abs() {
                std::mem::swap(&mut width, &mut height);
                axis = v;
            }
            if axis.x < 0.0 {
                axis = Point::new(-axis.x, -axis.y);
            }
            best = Some((
                area,
                RotatedRect {
                    center,
                    width,
                    height,
                    axis,
                },
            ));
        }
    }
    best.map(|(_, r)| r)
}

/// The distance by which DBNet's shrunk text kernels are grown back: the
/// polygon offset `area * ratio / perimeter` of the reference implementation.
pub fn unclip_distance(width: f32, height: f32, ratio: f32) -> f32 {
    let perimeter = 2.0 * (width + height);
    if perimeter <= 0.0 {
        return 0.0;
    }
    width * height * ratio / perimeter
}

/// Orders four corners clockwise from top-left: the two left-most points
/// are the left side (upper one first), the others the right side.
pub fn order_quad(points: [Point; 4]) -> Quad {
    let mut p = points;
    p.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    let (tl, bl) = if p[0].y <= p[1].y {
        (p[0], p[1])
    } else {
        (p[1], p[0])
    };
    let (tr, br) = if p[2].y <= p[3].y {
        (p[2], p[3])
    } else {
        (p[3], p[2])
    };
    [tl, tr, br, bl]
}

/// Axis-aligned bounds of a quad.
pub fn quad_bounds(quad: &Quad) -> Rect {
    let min_x = quad.iter().map(|p| p.x).fold(f32::MAX, f32::min);
    let max_x = quad.iter().map(|p| p.x).fold(f32::MIN, f32::max);
    let min_y = quad.iter().map(|p| p.y).fold(f32::MAX, f32::min);
    let max_y = quad.iter().map(|p| p.y).fold(f32::MIN, f32::max);
    Rect {
        x: min_x,
        y: min_y,
        width: (max_x - min_x).max(0.0),
        height: (max_y - min_y).max(0.0),
    }
}

/// Side lengths of a quad as (width, height): the longer of top/bottom and
/// of left/right.
pub fn quad_size(quad: &Quad) -> (f32, f32) {
    let w = quad[0].dist(quad[1]).max(quad[3].dist(quad[2]));
    let h = quad[0].dist(quad[3]).max(quad[1].dist(quad[2]));
    (w, h)
}

/// Whether `p` lies inside the convex quad (either winding).
pub fn quad_contains(quad: &Quad, p: Point) -> bool {
    let mut sign = 0.0f32;
    for i in 0..4 {
        let c = cross(quad[i], quad[(i + 1) % 4], p);
        if c != 0.0 {
            if sign != 0.0 && c.signum() != sign {
                return false;
            }
            sign = c.signum();
        }
    }
    true
}

/// Intersection over union of two rectangles, 0 when either is empty.
pub fn iou(a: &Rect, b: &Rect) -> f32 {
    let ix = (a.x + a.width).min(b.x + b.width) - a.x.max(b.x);
    let iy = (a.y + a.height).min(b.y + b.height) - a.y.max(b.y);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    let union = a.width * a.height + b.width * b.height - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Fraction of `a`'s area that lies inside `b`.
pub fn covered_fraction(a: &Rect, b: &Rect) -> f32 {
    let ix = (a.x + a.width).min(b.x + b.width) - a.x.max(b.x);
    let iy = (a.y + a.height).min(b.y + b.height) - a.y.max(b.y);
    let area = a.width * a.height;
    if ix <= 0.0 || iy <= 0.0 || area <= 0.0 {
        return 0.0;
    }
    ix * iy / area
}

/// A 3x3 projective transform, row-major, `h[8]` normalised to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography(pub [f64; 9]);

impl Homography {
    /// The transform mapping each `from[i]` onto `to[i]`, or `None` when the
    /// points are degenerate (three on a line).
    pub fn from_points(from: &[Point; 4], to: &[Point; 4]) -> Option<Homography> {
        // Eight equations in the eight unknowns h0..h7 (h8 = 1).
        let mut m = [[0.0f64; 9]; 8];
        for i in 0..4 {
            let (x, y) = (from[i].x as f64, from[i].y as f64);
            let (u, v) = (to[i].x as f64, to[i].y as f64);
            m[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            m[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        let h = solve8(&mut m)?;
        Some(Homography([
            h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0,
        ]))
    }

    pub fn apply(&self, p: Point) -> Point {
        let h = &self.0;
        let (x, y) = (p.x as f64, p.y as f64);
        let w = h[6] * x + h[7] * y + h[8];
        let w = if w.abs() < 1e-12 { 1e-12 } else { w };
        Point::new(
            ((h[0] * x + h[1] * y + h[2]) / w) as f32,
            ((h[3] * x + h[4] * y + h[5]) / w) as f32,
        )
    }
}

/// Gaussian elimination with partial pivoting on an 8x9 augmented matrix.
fn solve8(m: &mut [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-10 {
            return None;
        }
        m.swap(col, pivot);
        for row in 0..8 {
            if row != col {
                let f = m[row][col] / m[col][col];
                if f != 0.0 {
                    let pivot_row = m[col];
                    for (value, p) in m[row].iter_mut().zip(pivot_row).skip(col) {
                        *value -= f * p;
                    }
                }
            }
        }
    }
    let mut out = [0.0; 8];
    for (i, o) in out.iter_mut().enumerate() {
        *o = m[i][8] / m[i][i];
    }
    Some(out)
}

/// Samples `image` at a real-valued position with bilinear interpolation;
/// positions outside repeat the border pixel.
fn sample_bilinear(image: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = image.dimensions();
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let x0 = x.floor() as u32;
    let y0 = y.floor() as u32;
    let x1 = (x0 + 1).min(w - 1);
    let y1 = (y0 + 1).min(h - 1);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p00 = image.get_pixel(x0, y0).0;
    let p10 = image.get_pixel(x1, y0).0;
    let p01 = image.get_pixel(x0, y1).0;
    let p11 = image.get_pixel(x1, y1).0;
    let mut out = [0.0; 3];
    for c in 0..3 {
        let top = p00[c] as f32 * (1.0 - fx) + p10[c] as f32 * fx;
        let bottom = p01[c] as f32 * (1.0 - fx) + p11[c] as f32 * fx;
        out[c] = top * (1.0 - fy) + bottom * fy;
    }
    out
}

/// Cuts the quad out of `image` and straightens it into an
/// `out_width` x `out_height` image (perspective warp, bilinear sampling).
/// `None` when the quad is degenerate, the image or output is empty.
pub fn perspective_crop(
    image: &RgbImage,
    quad: &Quad,
    out_width: u32,
    out_height: u32,
) -> Option<RgbImage> {
    if image.width() == 0 || image.height() == 0 || out_width == 0 || out_height == 0 {
        return None;
    }
    let (w, h) = (out_width as f32, out_height as f32);
    let target = [
        Point::new(0.0, 0.0),
        Point::new(w, 0.0),
        Point::new(w, h),
        Point::new(0.0, h),
    ];
    // Map output pixels back into the source image.
    let back = Homography::from_points(&target, quad)?;
    let mut out = RgbImage::new(out_width, out_height);
    for (ox, oy, px) in out.enumerate_pixels_mut() {
        // Pixel centres.
        let src = back.apply(Point::new(ox as f32 + 0.5, oy as f32 + 0.5));
        let s = sample_bilinear(image, src.x - 0.5, src.y - 0.5);
        *px = Rgb([s[0] as u8, s[1] as u8, s[2] as u8]);
    }
    Some(out)
}

/// The natural output size of a perspective crop of `quad`, in pixels
/// (rounded, at least 1x1): the crop keeps the plate's native scale.
pub fn crop_size(quad: &Quad) -> (u32, u32) {
    let (w, h) = quad_size(quad);
    (w.round().max(1.0) as u32, h.round().max(1.0) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32, eps: f32) -> bool {
        (a - b).abs() <= eps
    }

    #[test]
    fn min_area_rect_of_an_axis_aligned_block() {
        let mut pts = Vec::new();
        for y in 10..=20 {
            for x in 5..=45 {
                pts.push(Point::new(x as f32, y as f32));
            }
        }
        let r = min_area_rect(&pts).unwrap();
        assert!(close(r.width, 40.0, 1e-3), "{r:?}");
        assert!(close(r.height, 10.0, 1e-3), "{r:?}");
        assert!(close(r.center.x, 25.0, 1e-3) && close(r.center.y, 15.0, 1e-3));
        let c = r.corners();
        assert!(
            close(c[0].x, 5.0, 1e-3) && close(c[0].y, 10.0, 1e-3),
            "{c:?}"
        );
        assert!(
            close(c[2].x, 45.0, 1e-3) && close(c[2].y, 20.0, 1e-3),
            "{c:?}"
        );
    }

    #[test]
    fn min_area_rect_of_a_rotated_rectangle() {
        // A 60x20 rectangle turned by 30 degrees around (100, 100).
        let (s, c) = 30f32.to_radians().sin_cos();
        let mut pts = Vec::new();
        for i in 0..=60 {
            for j in 0..=20 {
                let (u, v) = (i as f32 - 30.0, j as f32 - 10.0);
                pts.push(Point::new(100.0 + u * c - v * s, 100.0 + u * s + v * c));
            }
        }
        let r = min_area_rect(&pts).unwrap();
        assert!(close(r.width, 60.0, 0.05), "{r:?}");
        assert!(close(r.height, 20.0, 0.05), "{r:?}");
        assert!(
            close(r.axis.x, c, 1e-3) && close(r.axis.y, s, 1e-3),
            "{r:?}"
        );
        assert!(close(r.center.x, 100.0, 1e-2) && close(r.center.y, 100.0, 1e-2));
    }

    #[test]
    fn min_area_rect_of_degenerate_input() {
        assert!(min_area_rect(&[]).is_none());
        let one = min_area_rect(&[Point::new(3.0, 4.0)]).unwrap();
        assert_eq!((one.width, one.height), (0.0, 0.0));
        let line = min_area_rect(&[Point::new(0.0, 0.0), Point::new(10.0, 0.0)]).unwrap();
        assert!(close(line.width, 10.0, 1e-4) && close(line.height, 0.0, 1e-4));
    }

    #[test]
    fn unclip_grows_by_the_reference_offset() {
        // 100x20: area 2000, perimeter 240, ratio 1.6 -> 13.33 px per side.
        let d = unclip_distance(100.0, 20.0, 1.6);
        assert!(close(d, 2000.0 * 1.6 / 240.0, 1e-4));
        let r = RotatedRect {
            center: Point::new(0.0, 0.0),
            width: 100.0,
            height: 20.0,
            axis: Point::new(1.0, 0.0),
        }
        .grown(d);
        assert!(close(r.width, 100.0 + 2.0 * d, 1e-4));
        assert!(close(r.height, 20.0 + 2.0 * d, 1e-4));
        assert_eq!(unclip_distance(0.0, 0.0, 1.6), 0.0);
    }

    #[test]
    fn quads_are_ordered_clockwise_from_top_left() {
        let q = order_quad([
            Point::new(10.0, 12.0),
            Point::new(0.0, 0.0),
            Point::new(0.0, 10.0),
            Point::new(10.0, 1.0),
        ]);
        assert_eq!(q[0], Point::new(0.0, 0.0));
        assert_eq!(q[1], Point::new(10.0, 1.0));
        assert_eq!(q[2], Point::new(10.0, 12.0));
        assert_eq!(q[3], Point::new(0.0, 10.0));
        assert!(quad_contains(&q, Point::new(5.0, 5.0)));
        assert!(!quad_contains(&q, Point::new(11.0, 5.0)));
    }

    #[test]
    fn homography_maps_corners_and_rejects_degenerate_points() {
        let from = [
            Point::new(10.0, 10.0),
            Point::new(90.0, 20.0),
            Point::new(95.0, 60.0),
            Point::new(5.0, 50.0),
        ];
        let to = [
            Point::new(0.0, 0.0),
            Point::new(80.0, 0.0),
            Point::new(80.0, 40.0),
            Point::new(0.0, 40.0),
        ];
        let h = Homography::from_points(&from, &to).unwrap();
        for i in 0..4 {
            let p = h.apply(from[i]);
            assert!(
                close(p.x, to[i].x, 1e-3) && close(p.y, to[i].y, 1e-3),
                "{p:?}"
            );
        }
        let line = [Point::new(0.0, 0.0); 4];
        assert!(Homography::from_points(&line, &to).is_none());
    }

    #[test]
    fn perspective_crop_straightens_a_skewed_region() {
        // Left half black, right half white, inside a skewed quad.
        let mut img = RgbImage::from_pixel(100, 60, Rgb([128, 128, 128]));
        for y in 0..60 {
            for x in 0..100 {
                if x < 50 {
                    img.put_pixel(x, y, Rgb([0, 0, 0]));
                } else {
                    img.put_pixel(x, y, Rgb([255, 255, 255]));
                }
            }
        }
        let quad = [
            Point::new(20.0, 10.0),
            Point::new(80.0, 15.0),
            Point::new(78.0, 50.0),
            Point::new(22.0, 45.0),
        ];
        let crop = perspective_crop(&img, &quad, 40, 20).unwrap();
        assert_eq!(crop.dimensions(), (40, 20));
        assert!(crop.get_pixel(5, 10).0[0] < 20);
        assert!(crop.get_pixel(35, 10).0[0] > 235);
        assert!(perspective_crop(&img, &quad, 0, 20).is_none());
    }

    #[test]
    fn iou_and_coverage() {
        let a = Rect {
            x: 0.0,
            y: 0.0,
            width: 10.0,
            height: 10.0,
        };
        let b = Rect {
            x: 5.0,
            y: 0.0,
            width: 10.0,
            height: 10.0,
        };
        assert!(close(iou(&a, &b), 50.0 / 150.0, 1e-6));
        assert!(close(covered_fraction(&a, &b), 0.5, 1e-6));
        let far = Rect { x: 50.0, ..a };
        assert_eq!(iou(&a, &far), 0.0);
    }
}
