//! The recognizer with the real models on plates rendered here: several
//! fonts, sizes, angles, two plates in a frame, a state name above a plate,
//! a plate seen at an angle. Each must be read exactly. Bad images must give
//! an error, never a panic, and leave the recognizer working.
//!
//! Needs `scripts/fetch-models` (models in `models/`) and the Debian font
//! packages fonts-dejavu-core and fonts-liberation2.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ab_glyph::{point, Font, FontVec, PxScale, ScaleFont};
use anpr_recognizer::bench;
use anpr_recognizer::{ImageReads, ModelConfig, ReadError, ReadOptions, Recognizer, Rect};
use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_text_mut, text_size};
use imageproc::geometric_transformations::Projection;

const FRAME_WIDTH: u32 = 1280;
const FRAME_HEIGHT: u32 = 720;

fn recognizer() -> &'static Recognizer {
    static RECOGNIZER: OnceLock<Recognizer> = OnceLock::new();
    RECOGNIZER.get_or_init(|| {
        let config = ModelConfig {
            models_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models")),
            threads: 2,
            ..ModelConfig::default()
        };
        Recognizer::load(&config).unwrap_or_else(|error| panic!("loading the models: {error}"))
    })
}

/// The fonts the plates are drawn with, and the package that ships each.
const DEJAVU_SANS_BOLD: (&str, &str) = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "fonts-dejavu-core",
);
const DEJAVU_MONO_BOLD: (&str, &str) = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "fonts-dejavu-core",
);
const DEJAVU_SANS: (&str, &str) = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "fonts-dejavu-core",
);
const DEJAVU_CONDENSED_BOLD: (&str, &str) = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "fonts-dejavu-core",
);
const LIBERATION_SANS_BOLD: (&str, &str) = (
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf",
    "fonts-liberation2",
);
const LIBERATION_MONO_BOLD: (&str, &str) = (
    "/usr/share/fonts/truetype/liberation2/LiberationMono-Bold.ttf",
    "fonts-liberation2",
);

fn font((path, package): (&str, &str)) -> FontVec {
    let bytes = std::fs::read(path).unwrap_or_else(|error| {
        panic!("font {path} cannot be read ({error}): install the Debian package {package}")
    });
    FontVec::try_from_vec(bytes)
        .unwrap_or_else(|error| panic!("font {path} is not a font: {error}"))
}

/// A small deterministic generator for the background noise, so every run
/// draws the same frames.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    /// In -amplitude..=amplitude.
    fn offset(&mut self, amplitude: i32) -> i32 {
        (self.next() % (2 * amplitude as u32 + 1)) as i32 - amplitude
    }
}

/// A grey, noisy scene with a car-like body, a bumper and a dark grille,
/// and no text.
fn scene(seed: u64) -> RgbImage {
    let mut noise = Noise(seed);
    let mut frame = RgbImage::from_fn(FRAME_WIDTH, FRAME_HEIGHT, |_, y| {
        // Lighter sky-ish top to darker road-ish bottom.
        let level = 170 - (y * 80 / FRAME_HEIGHT) as u8;
        Rgb([level, level, level.saturating_add(6)])
    });
    draw_filled_rect_mut(
        &mut frame,
        imageproc::rect::Rect::at(140, 180).of_size(1000, 440),
        Rgb([92, 98, 110]),
    );
    draw_filled_rect_mut(
        &mut frame,
        imageproc::rect::Rect::at(140, 540).of_size(1000, 50),
        Rgb([40, 42, 46]),
    );
    draw_filled_rect_mut(
        &mut frame,
        imageproc::rect::Rect::at(300, 220).of_size(680, 90),
        Rgb([30, 30, 34]),
    );
    for pixel in frame.pixels_mut() {
        for channel in pixel.0.iter_mut() {
            *channel = (i32::from(*channel) + noise.offset(10)).clamp(0, 255) as u8;
        }
    }
    frame
}

/// A plate as a flat image, twice as wide as high: off-white, dark border,
/// the text large in the middle and, if given, a state name small above it.
fn render_plate(
    text: &str,
    text_font: &FontVec,
    width: u32,
    state: Option<(&str, &FontVec)>,
) -> RgbImage {
    let height = width / 2;
    let mut plate = RgbImage::from_pixel(width, height, Rgb([28, 30, 40]));
    let border = (width / 50).max(2);
    draw_filled_rect_mut(
        &mut plate,
        imageproc::rect::Rect::at(border as i32, border as i32)
            .of_size(width - 2 * border, height - 2 * border),
        Rgb([244, 244, 238]),
    );
    let text_middle = match state {
        Some((name, state_font)) => {
            let scale = fit_scale(state_font, name, height as f32 * 0.16, width as f32 * 0.6);
            draw_centered(
                &mut plate,
                state_font,
                scale,
                name,
                height as f32 * 0.09,
                Rgb([150, 20, 30]),
            );
            height as f32 * 0.6
        }
        None => height as f32 * 0.5,
    };
    // Narrow plates of long text are limited by width: centre whatever
    // height the capitals end up with.
    let scale = fit_scale(text_font, text, height as f32 * 0.5, width as f32 * 0.86);
    let (_, cap_height) = cap_top_and_height(text_font, scale);
    draw_centered(
        &mut plate,
        text_font,
        scale,
        text,
        text_middle - cap_height / 2.0,
        Rgb([20, 24, 70]),
    );
    plate
}

/// The largest scale at which capitals are `cap_height` tall and the text
/// fits in `max_width`.
fn fit_scale(font: &FontVec, text: &str, cap_height: f32, max_width: f32) -> PxScale {
    let measured_caps = cap_top_and_height(font, PxScale::from(100.0)).1;
    let mut scale = PxScale::from(100.0 * cap_height / measured_caps);
    let (text_width, _) = text_size(scale, font, text);
    if text_width as f32 > max_width {
        scale = PxScale::from(scale.y * max_width / text_width as f32);
    }
    scale
}

/// Where the top of a capital letter lies below the drawing position, and
/// its height, at `scale`.
fn cap_top_and_height(font: &FontVec, scale: PxScale) -> (f32, f32) {
    let scaled = font.as_scaled(scale);
    let glyph = font
        .glyph_id('H')
        .with_scale_and_position(scale, point(0.0, scaled.ascent()));
    let bounds = font
        .outline_glyph(glyph)
        .map(|outline| outline.px_bounds())
        .unwrap_or_else(|| panic!("the font has no outline for H"));
    (bounds.min.y, bounds.height())
}

/// Draws `text` centred horizontally with the top of its capitals at `top`.
fn draw_centered(
    plate: &mut RgbImage,
    font: &FontVec,
    scale: PxScale,
    text: &str,
    top: f32,
    colour: Rgb<u8>,
) {
    let (text_width, _) = text_size(scale, font, text);
    let (cap_top, _) = cap_top_and_height(font, scale);
    let x = (plate.width() as i32 - text_width as i32) / 2;
    let y = (top - cap_top).round() as i32;
    draw_text_mut(plate, colour, x, y, scale, font, text);
}

/// The corners (clockwise from top-left) of a `width` x `width / 2` plate
/// centred at (cx, cy) and turned by `degrees` (positive: clockwise on screen).
fn turned(cx: f32, cy: f32, width: f32, degrees: f32) -> [(f32, f32); 4] {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (hw, hh) = (width / 2.0, width / 4.0);
    [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
        .map(|(x, y)| (cx + x * cos - y * sin, cy + x * sin + y * cos))
}

/// Draws `plate` into `frame` so that its corners land on `quad` (clockwise
/// from top-left), sampling bilinearly; returns the quad's bounding box.
fn place(frame: &mut RgbImage, plate: &RgbImage, quad: [(f32, f32); 4]) -> Rect {
    let (w, h) = (plate.width() as f32, plate.height() as f32);
    let to_frame = Projection::from_control_points([(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)], quad)
        .unwrap_or_else(|| panic!("degenerate quad {quad:?}"));
    let to_plate = to_frame.invert();
    let left = quad
        .iter()
        .map(|p| p.0)
        .fold(f32::MAX, f32::min)
        .floor()
        .max(0.0);
    let top = quad
        .iter()
        .map(|p| p.1)
        .fold(f32::MAX, f32::min)
        .floor()
        .max(0.0);
    let right = quad
        .iter()
        .map(|p| p.0)
        .fold(f32::MIN, f32::max)
        .ceil()
        .min(frame.width() as f32);
    let bottom = quad
        .iter()
        .map(|p| p.1)
        .fold(f32::MIN, f32::max)
        .ceil()
        .min(frame.height() as f32);
    for y in top as u32..bottom as u32 {
        for x in left as u32..right as u32 {
            let (u, v) = to_plate * (x as f32 + 0.5, y as f32 + 0.5);
            if u >= 0.0 && v >= 0.0 && u < w && v < h {
                frame.put_pixel(x, y, sample(plate, u - 0.5, v - 0.5));
            }
        }
    }
    Rect {
        x: left,
        y: top,
        width: right - left,
        height: bottom - top,
    }
}

fn sample(image: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let max_x = image.width() - 1;
    let max_y = image.height() - 1;
    let (x, y) = (x.clamp(0.0, max_x as f32), y.clamp(0.0, max_y as f32));
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(max_x), (y0 + 1).min(max_y));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let mut out = [0u8; 3];
    for (c, value) in out.iter_mut().enumerate() {
        let at = |px: u32, py: u32| f32::from(image.get_pixel(px, py).0[c]);
        let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
        let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
        *value = (top * (1.0 - fy) + bottom * fy).round() as u8;
    }
    Rgb(out)
}

fn jpeg(frame: &RgbImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(Cursor::new(&mut bytes), 90)
        .encode_image(frame)
        .unwrap_or_else(|error| panic!("encoding the test frame: {error}"));
    bytes
}

/// Reads a frame the way cameras send it: as a JPEG. With
/// `ANPR_TEST_DUMP=DIR` the frame is also saved there, named after the test,
/// for a person to look at when a case fails.
fn read(frame: &RgbImage) -> ImageReads {
    read_with(frame, &ReadOptions::default())
}

fn read_with(frame: &RgbImage, options: &ReadOptions) -> ImageReads {
    if let Some(dir) = std::env::var_os("ANPR_TEST_DUMP") {
        let test = std::thread::current()
            .name()
            .unwrap_or("frame")
            .replace("::", "-");
        let path = Path::new(&dir).join(format!("{test}.png"));
        frame
            .save(&path)
            .unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
    }
    recognizer()
        .read_encoded(&jpeg(frame), options)
        .unwrap_or_else(|error| panic!("reading a valid frame failed: {error}"))
}

fn texts(reads: &ImageReads) -> Vec<(String, f32)> {
    reads
        .plates
        .iter()
        .map(|p| (p.text.clone(), p.confidence))
        .collect()
}

/// Renders one plate into a scene, reads it, and checks the best plate is
/// exactly `text` and sits where it was drawn.
fn assert_reads_one(
    text: &str,
    font_file: (&str, &str),
    width: u32,
    quad: [(f32, f32); 4],
    seed: u64,
) {
    let plate = render_plate(text, &font(font_file), width, None);
    let mut frame = scene(seed);
    let drawn = place(&mut frame, &plate, quad);
    let reads = read(&frame);
    let best = reads.plates.first().map(|p| p.text.as_str());
    assert_eq!(best, Some(text), "plates read: {:?}", texts(&reads));
    assert!(
        lies_on(&reads.plates[0].bbox, &drawn),
        "the plate was drawn at {drawn:?} but found at {:?}",
        reads.plates[0].bbox
    );
}

/// Whether a box found in the image lies on the plate drawn at `drawn`: at
/// least 80 % of it inside. (The engine may report the text's box, smaller
/// than the plate, so IoU with the whole plate would say little.)
fn lies_on(found: &Rect, drawn: &Rect) -> bool {
    let overlap_x = (found.x + found.width).min(drawn.x + drawn.width) - found.x.max(drawn.x);
    let overlap_y = (found.y + found.height).min(drawn.y + drawn.height) - found.y.max(drawn.y);
    let inside = overlap_x.max(0.0) * overlap_y.max(0.0);
    let area = found.width * found.height;
    area > 0.0 && inside >= 0.8 * area
}

fn straight(cx: f32, cy: f32, width: u32) -> [(f32, f32); 4] {
    turned(cx, cy, width as f32, 0.0)
}

#[test]
fn dejavu_sans_bold_plate() {
    assert_reads_one(
        "7ABC123",
        DEJAVU_SANS_BOLD,
        300,
        straight(640.0, 450.0, 300),
        1,
    );
}

#[test]
fn dejavu_mono_bold_large_plate() {
    assert_reads_one(
        "8FHD92",
        DEJAVU_MONO_BOLD,
        400,
        straight(620.0, 430.0, 400),
        2,
    );
}

#[test]
fn liberation_sans_bold_medium_plate() {
    assert_reads_one(
        "KXT4821",
        LIBERATION_SANS_BOLD,
        200,
        straight(700.0, 470.0, 200),
        3,
    );
}

#[test]
fn liberation_mono_bold_small_plate() {
    assert_reads_one(
        "5GRM730",
        LIBERATION_MONO_BOLD,
        130,
        straight(600.0, 480.0, 130),
        4,
    );
}

#[test]
fn plate_turned_clockwise() {
    assert_reads_one(
        "3PKW517",
        DEJAVU_SANS_BOLD,
        260,
        turned(640.0, 450.0, 260.0, 8.0),
        5,
    );
}

#[test]
fn plate_turned_anticlockwise() {
    assert_reads_one(
        "6TRJ244",
        LIBERATION_SANS_BOLD,
        260,
        turned(660.0, 440.0, 260.0, -8.0),
        6,
    );
}

#[test]
fn plate_upside_down_with_the_orientation_check() {
    // A camera mounted the wrong way round: with the check on (it is off by
    // default), the orientation model turns the text before it is read.
    let text = "2HVT618";
    let plate = render_plate(text, &font(DEJAVU_SANS_BOLD), 300, None);
    let mut frame = scene(11);
    place(&mut frame, &plate, turned(640.0, 450.0, 300.0, 180.0));
    let options = ReadOptions {
        upside_down_text: true,
        ..ReadOptions::default()
    };
    let reads = read_with(&frame, &options);
    let best = reads.plates.first().map(|p| p.text.as_str());
    assert_eq!(best, Some(text), "plates read: {:?}", texts(&reads));
}

#[test]
fn plate_seen_at_an_angle() {
    // The right edge farther from the camera: shorter and pulled in, as when
    // a car stands at an angle to the camera.
    let quad = [
        (520.0, 380.0),
        (770.0, 402.0),
        (770.0, 492.0),
        (520.0, 530.0),
    ];
    assert_reads_one("9LMN482", DEJAVU_SANS_BOLD, 300, quad, 7);
}

#[test]
fn two_plates_in_one_frame() {
    let mut frame = scene(8);
    let first = render_plate("7ABC123", &font(DEJAVU_SANS_BOLD), 240, None);
    let second = render_plate("KXT4821", &font(LIBERATION_SANS_BOLD), 220, None);
    let first_box = place(&mut frame, &first, straight(340.0, 420.0, 240));
    let second_box = place(&mut frame, &second, straight(930.0, 470.0, 220));
    let reads = read(&frame);
    for (text, drawn) in [("7ABC123", first_box), ("KXT4821", second_box)] {
        let found = reads.plates.iter().find(|p| p.text == text);
        let found =
            found.unwrap_or_else(|| panic!("{text} not read; plates read: {:?}", texts(&reads)));
        assert!(
            lies_on(&found.bbox, &drawn),
            "{text} drawn at {drawn:?} but found at {:?}",
            found.bbox
        );
    }
    assert_eq!(reads.plates.len(), 2, "plates read: {:?}", texts(&reads));
}

#[test]
fn state_name_above_the_plate_is_not_the_plate() {
    let state_font = font(DEJAVU_SANS);
    let plate = render_plate(
        "4MXD805",
        &font(DEJAVU_SANS_BOLD),
        320,
        Some(("California", &state_font)),
    );
    let mut frame = scene(9);
    place(&mut frame, &plate, straight(640.0, 440.0, 320));
    let reads = read(&frame);
    let best = reads.plates.first().map(|p| p.text.as_str());
    assert_eq!(best, Some("4MXD805"), "plates read: {:?}", texts(&reads));
    assert!(
        reads.plates.iter().all(|p| !p.text.contains("CALIF")),
        "the state name was reported as a plate: {:?}",
        texts(&reads)
    );
}

/// A PNG of the given dimensions whose pixel data stops right after the
/// zlib header: enough for a reader to see the size, not to decode pixels.
fn png_without_pixels(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // 8 bits per channel, RGB, deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let chunks = [
        (&b"IHDR"[..], &ihdr[..]),
        (&b"IDAT"[..], &[0x78, 0x9C][..]),
        (&b"IEND"[..], &[][..]),
    ];
    for (kind, data) in chunks {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    png
}

/// CRC-32 as PNG chunks use it (reflected, polynomial 0xEDB88320).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32_matches_the_png_check_value() {
    // The standard check value of CRC-32 over "123456789".
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn bad_images_give_errors_and_the_recognizer_goes_on() {
    let recognizer = recognizer();
    let options = ReadOptions::default();

    // A JPEG start followed by garbage.
    let mut corrupt = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    corrupt.extend((0..2000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let result = recognizer.read_encoded(&corrupt, &options);
    assert!(matches!(result, Err(ReadError::Decode(_))), "{result:?}");

    // A real frame cut short.
    let mut frame = scene(10);
    place(
        &mut frame,
        &render_plate("7ABC123", &font(DEJAVU_SANS_BOLD), 300, None),
        straight(640.0, 450.0, 300),
    );
    let whole = jpeg(&frame);
    // A frame cut short may be decoded as far as it goes (the JPEG decoder
    // is lenient) or refused: either is fine, only a panic is not.
    let _ = recognizer.read_encoded(&whole[..whole.len() / 3], &options);

    let result = recognizer.read_encoded(b"", &options);
    assert!(matches!(result, Err(ReadError::Decode(_))), "{result:?}");

    let result = recognizer.read_encoded(&png_without_pixels(0, 0), &options);
    assert!(
        matches!(result, Err(ReadError::Decode(_) | ReadError::Empty { .. })),
        "{result:?}"
    );
    let result = recognizer.read_image(&RgbImage::new(0, 0), &options);
    assert!(
        matches!(
            result,
            Err(ReadError::Empty {
                width: 0,
                height: 0
            })
        ),
        "{result:?}"
    );

    // 10000x10000 is 100 megapixels, over the default limit of 40: refused
    // from the header, before any pixel is decoded...
    let result = recognizer.read_encoded(&png_without_pixels(10_000, 10_000), &options);
    assert!(
        matches!(
            result,
            Err(ReadError::TooLarge {
                width: 10_000,
                height: 10_000,
                ..
            })
        ),
        "{result:?}"
    );
    // ...and as decoded pixels.
    let huge = RgbImage::new(10_000, 10_000);
    let result = recognizer.read_image(&huge, &options);
    assert!(
        matches!(
            result,
            Err(ReadError::TooLarge {
                width: 10_000,
                height: 10_000,
                ..
            })
        ),
        "{result:?}"
    );
    drop(huge);

    // Still reading after all that.
    let reads = recognizer
        .read_encoded(&whole, &options)
        .unwrap_or_else(|error| panic!("reading a valid frame after the errors: {error}"));
    assert_eq!(
        reads.plates.first().map(|p| p.text.as_str()),
        Some("7ABC123"),
        "{:?}",
        texts(&reads)
    );
}

/// Writes a frame and its annotation in the testdata format.
fn write_sample(dir: &Path, name: &str, frame: &RgbImage, truth: &str, drawn: Rect) {
    std::fs::write(dir.join(format!("{name}.jpg")), jpeg(frame))
        .unwrap_or_else(|error| panic!("writing {name}.jpg: {error}"));
    let line = format!(
        "{name}.jpg\t{}\t{}\t{}\t{}\t{truth}\n",
        drawn.x, drawn.y, drawn.width, drawn.height
    );
    std::fs::write(dir.join(format!("{name}.txt")), line)
        .unwrap_or_else(|error| panic!("writing {name}.txt: {error}"));
}

#[test]
fn benchmark_scores_a_rendered_dataset() {
    let dir =
        tempfile::tempdir().unwrap_or_else(|error| panic!("creating a temporary folder: {error}"));
    // A condensed font, as on real plates, fills the plate's height enough
    // for the text's box to count as detecting the whole plate (IoU >= 0.3).
    let cases = [
        (
            "a",
            "7ABC123",
            DEJAVU_CONDENSED_BOLD,
            straight(640.0, 450.0, 300),
        ),
        (
            "b",
            "KXT4821",
            DEJAVU_CONDENSED_BOLD,
            straight(500.0, 420.0, 260),
        ),
    ];
    for (index, (name, text, font_file, quad)) in cases.iter().enumerate() {
        let mut frame = scene(20 + index as u64);
        let width = (quad[1].0 - quad[0].0) as u32;
        let drawn = place(
            &mut frame,
            &render_plate(text, &font(*font_file), width, None),
            *quad,
        );
        write_sample(dir.path(), name, &frame, text, drawn);
    }
    // And one image the recogniser must refuse.
    std::fs::write(dir.path().join("c.jpg"), b"\xFF\xD8 not really a jpeg")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("c.txt"), "c.jpg\t1\t1\t10\t5\tABC123\n")
        .unwrap_or_else(|e| panic!("{e}"));

    let samples = bench::load_dataset(dir.path()).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(samples.len(), 3);
    let options = ReadOptions::default();
    let mut seen = 0;
    let scores = bench::evaluate(
        &samples,
        |bytes| recognizer().read_encoded(bytes, &options),
        |_| seen += 1,
    );
    assert_eq!(seen, 3);
    let summary = bench::summarize(&scores);
    assert_eq!(summary.images, 3);
    assert_eq!(summary.top1, 2, "{scores:#?}");
    assert_eq!(summary.among_candidates, 2);
    assert_eq!(summary.detected_best, 2, "{scores:#?}");
    assert_eq!(summary.errors, 1);
    assert!(
        scores[2]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("decodable")),
        "{:?}",
        scores[2]
    );
    let total = summary
        .total
        .unwrap_or_else(|| panic!("no latency measured"));
    assert!(total.median_ms > 0.0 && total.p95_ms >= total.median_ms);
}
