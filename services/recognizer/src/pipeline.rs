//! The whole read of one image: decode, detect text, crop, orient,
//! recognise with both recognisers, choose plates.

use std::io::Cursor;
use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::RgbImage;

use crate::detect::{self, TextBox};
use crate::geometry::{self, Point};
use crate::models::Models;
use crate::plate::{self, Candidate};
use crate::recognize::{self, CharTable, TextRead};
use crate::types::{
    ImageReads, LoadError, ModelConfig, PlateResult, ReadError, ReadOptions, Reader, Rect, Timings,
};

/// Text regions smaller than this (pixels, in the image) cannot hold
/// readable characters.
const MIN_BOX_HEIGHT: f32 = 8.0;
const MIN_BOX_WIDTH: f32 = 12.0;
/// At most this many text regions are recognised per image (the most
/// confident, largest first): bounds the time of cluttered frames.
const MAX_BOXES: usize = 8;
/// The English recogniser gives a second opinion only on first reads below
/// this confidence: above it the ensemble almost never changes the answer.
const SECOND_OPINION_BELOW: f32 = 0.95;
/// Candidates scoring at most this are not plates worth reporting.
const MIN_PLATE_SCORE: f32 = 0.15;
/// Crops attached to results have at most this longest side.
const CROP_MAX_SIDE: u32 = 256;
const CROP_QUALITY: u8 = 85;
/// Largest image side accepted, whatever `max_pixels` allows: the detector
/// input and the crops are computed in f32 pixel coordinates.
const MAX_SIDE: u32 = 16_384;

/// Reads plates in images. Loads every model once; `Send + Sync`, so one
/// instance serves all threads (each model runs one inference at a time, see
/// [`crate::models`]).
#[derive(Debug)]
pub struct Recognizer {
    models: Models,
    ch_table: CharTable,
    en_table: CharTable,
    plate_table: CharTable,
}

impl Recognizer {
    pub fn load(config: &ModelConfig) -> Result<Recognizer, LoadError> {
        let models = Models::load(config)?;
        let ch_table = CharTable::new(models.ch_classes.clone());
        let en_table = CharTable::new(models.en_classes.clone());
        Ok(Recognizer {
            models,
            ch_table,
            en_table,
            plate_table: crate::plate_ocr::classes(),
        })
    }

    /// [`load`](Self::load), refusing a `reader` whose model is missing.
    pub fn load_for(config: &ModelConfig, reader: Reader) -> Result<Recognizer, LoadError> {
        let recognizer = Self::load(config)?;
        if !recognizer.supports(reader) {
            return Err(LoadError::Missing {
                path: config.models_dir.join(crate::plate_ocr::PLATE_OCR_MODEL),
            });
        }
        Ok(recognizer)
    }

    /// Whether `reader` can be used: the plate recogniser needs its model.
    pub fn supports(&self, reader: Reader) -> bool {
        reader == Reader::PpOcr || self.models.plate.is_some()
    }

    fn plate_reads(&self, crops: &[RgbImage]) -> Result<Vec<TextRead>, ReadError> {
        let model = self.models.plate.as_ref().ok_or_else(|| {
            ReadError::Inference(format!(
                "the plate recogniser {} is not in the models folder (run scripts/fetch-models)",
                crate::plate_ocr::PLATE_OCR_MODEL
            ))
        })?;
        crate::plate_ocr::recognise(model, &self.plate_table, crops).map_err(ReadError::Inference)
    }

    /// Reads one crop that holds a plate (the recogniser alone, no
    /// detection): the plate text, its confidence and the time taken.
    pub fn read_plate_crop(
        &self,
        crop: RgbImage,
        options: &ReadOptions,
    ) -> Result<(String, f32, std::time::Duration), ReadError> {
        let start = Instant::now();
        let (w, h) = (crop.width() as f32, crop.height() as f32);
        let quad = [
            Point { x: 0.0, y: 0.0 },
            Point { x: w, y: 0.0 },
            Point { x: w, y: h },
            Point { x: 0.0, y: h },
        ];
        let candidates = self.recognise_crops(vec![crop], &[quad], options)?;
        let elapsed = start.elapsed();
        Ok(candidates
            .into_iter()
            .next()
            .map(|c| {
                (
                    c.chars.iter().map(|x| x.ch).collect(),
                    c.confidence(),
                    elapsed,
                )
            })
            .unwrap_or((String::new(), 0.0, elapsed)))
    }

    /// JPEG or PNG bytes.
    pub fn read_encoded(
        &self,
        bytes: &[u8],
        options: &ReadOptions,
    ) -> Result<ImageReads, ReadError> {
        let start = Instant::now();
        let image = decode(bytes, options)?;
        let decode_time = start.elapsed();
        let mut reads = self.read_image(&image, options)?;
        reads.timings.decode = decode_time;
        reads.timings.total = start.elapsed();
        Ok(reads)
    }

    pub fn read_image(
        &self,
        image: &RgbImage,
        options: &ReadOptions,
    ) -> Result<ImageReads, ReadError> {
        let start = Instant::now();
        let (width, height) = image.dimensions();
        check_size(width, height, options)?;

        let detect_start = Instant::now();
        let (input, scale) = detect::preprocess(image, options.detector_max_side);
        let map = self
            .models
            .detector
            .run(input)
            .map_err(ReadError::Inference)?;
        let boxes =
            detect::postprocess(&map, scale, (width, height)).map_err(ReadError::Inference)?;
        let detect_time = detect_start.elapsed();

        let recognize_start = Instant::now();
        let masks: Vec<Rect> = options
            .masks
            .iter()
            .map(|m| Rect {
                x: m.x * width as f32,
                y: m.y * height as f32,
                width: m.width * width as f32,
                height: m.height * height as f32,
            })
            .collect();
        let boxes = select_boxes(boxes, &masks);
        let mut crops = Vec::with_capacity(boxes.len());
        let mut quads = Vec::with_capacity(boxes.len());
        for b in &boxes {
            let (cw, ch) = geometry::crop_size(&b.quad);
            if let Some(crop) = geometry::perspective_crop(image, &b.quad, cw, ch) {
                crops.push(crop);
                quads.push(b.quad);
            }
        }
        let candidates = self.recognise_crops(crops, &quads, options)?;
        let ranked = plate::rank(candidates, (width, height), MIN_PLATE_SCORE);
        let plates = ranked
            .into_iter()
            .filter(|(c, _)| c.confidence() >= options.min_confidence)
            .map(|(c, _)| to_result(c, image, options.crop_jpeg))
            .collect();
        let recognize_time = recognize_start.elapsed();

        Ok(ImageReads {
            width,
            height,
            plates,
            timings: Timings {
                decode: Default::default(),
                detect: detect_time,
                recognize: recognize_time,
                total: start.elapsed(),
            },
        })
    }

    /// Orients the crops, reads each with both recognisers and keeps, per
    /// crop, the more confident reading (the other becomes an alternative).
    fn recognise_crops(
        &self,
        mut crops: Vec<RgbImage>,
        quads: &[geometry::Quad],
        options: &ReadOptions,
    ) -> Result<Vec<Candidate>, ReadError> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let mut quads = quads.to_vec();
        if options.upside_down_text {
            let flips = recognize::upside_down(&self.models.orientation, &crops)
                .map_err(ReadError::Inference)?;
            for ((crop, quad), p) in crops.iter_mut().zip(quads.iter_mut()).zip(flips) {
                if p >= recognize::CLS_THRESHOLD {
                    image::imageops::rotate180_in_place(crop);
                    // Keep the corners in reading order of the turned text.
                    *quad = [quad[2], quad[3], quad[0], quad[1]];
                }
            }
        }
        if options.reader == Reader::Plate {
            let reads = self.plate_reads(&crops)?;
            return Ok(reads
                .into_iter()
                .zip(quads)
                .map(|(read, quad)| choose(read, None, quad, options.letter_o_as_zero))
                .collect());
        }
        let ch = recognize::recognise(&self.models.rec_ch, &self.ch_table, &crops)
            .map_err(ReadError::Inference)?;
        let plate_reads = if options.reader == Reader::Combined {
            Some(self.plate_reads(&crops)?)
        } else {
            None
        };
        // The second opinion only where it can matter: crops whose first read
        // could be a plate (the rest are dates, words, specks). Saves about
        // half the English recogniser's time on cluttered frames. A vote
        // needs the third voice wherever the first two disagree, however
        // confident the first: with two, the more confident one wins every
        // disputed character, and the plate model is the more confident one
        // even when it is wrong.
        let disputed = |i: usize| {
            plate_reads
                .as_ref()
                .and_then(|p| p.get(i))
                .is_some_and(|p| p.text() != ch[i].text())
        };
        let second: Vec<usize> = ch
            .iter()
            .enumerate()
            .filter(|&(i, r)| worth_second_read(r, disputed(i)))
            .map(|(i, _)| i)
            .collect();
        let second_crops: Vec<RgbImage> = second.iter().map(|&i| crops[i].clone()).collect();
        let en_reads = recognize::recognise(&self.models.rec_en, &self.en_table, &second_crops)
            .map_err(ReadError::Inference)?;
        let mut en: Vec<Option<TextRead>> = vec![None; ch.len()];
        for (i, r) in second.into_iter().zip(en_reads) {
            en[i] = Some(r);
        }
        if let Some(plate_reads) = plate_reads {
            return Ok(ch
                .into_iter()
                .zip(en)
                .zip(plate_reads)
                .zip(quads)
                .map(|(((a, b), p), quad)| {
                    let mut reads = vec![p, a];
                    reads.extend(b);
                    let voted = vote(&reads, options.letter_o_as_zero);
                    let runner_up = reads.into_iter().find(|r| r.text() != voted.text());
                    choose_from(voted, runner_up, quad, options.letter_o_as_zero, true)
                })
                .collect());
        }
        Ok(ch
            .into_iter()
            .zip(en)
            .zip(quads)
            .map(|((a, b), quad)| choose(a, b, quad, options.letter_o_as_zero))
            .collect())
    }
}

/// Per-character confidence voting over several reads of one crop: the
/// length with the most confidence summed over its reads wins; then, per
/// position, the character with the most confidence summed over those reads.
/// A character's probability is its summed confidence divided by the number
/// of reads of that length, so agreement counts. The first read breaks ties.
///
/// With `round_follows_first` (the recognizer passes `letter_o_as_zero`),
/// where the vote and the first read (the plate model's) both have a round
/// character, O or 0, the first read says which: on US plates the two are
/// one shape and O versus 0 is a convention, which the plate model learnt
/// (its training labels write the round character of a US plate as 0) and
/// general OCR does not (it reads the vanity plate C0UGAR as the word
/// COUGAR). Both reads' support for the round character is pooled.
pub fn vote(reads: &[TextRead], round_follows_first: bool) -> TextRead {
    let mut by_length: Vec<(usize, f32)> = Vec::new();
    for read in reads.iter().filter(|r| !r.chars.is_empty()) {
        let len = read.chars.len();
        let weight = read.confidence();
        match by_length.iter_mut().find(|(l, _)| *l == len) {
            Some((_, total)) => *total += weight,
            None => by_length.push((len, weight)),
        }
    }
    let Some(&(len, _)) = by_length
        .iter()
        .reduce(|best, next| if next.1 > best.1 { next } else { best })
    else {
        return reads.first().cloned().unwrap_or(TextRead {
            chars: Vec::new(),
            raw: String::new(),
        });
    };
    let same: Vec<&TextRead> = reads.iter().filter(|r| r.chars.len() == len).collect();
    // The first read has a say on round characters only if it is of the
    // voted length.
    let lead = reads
        .first()
        .filter(|r| round_follows_first && r.chars.len() == len);
    let is_round = |c: char| c == 'O' || c == '0';
    let mut chars = Vec::with_capacity(len);
    for position in 0..len {
        let mut tally: Vec<(char, f32, usize)> = Vec::new();
        for (index, read) in same.iter().enumerate() {
            let c = read.chars[position];
            match tally.iter_mut().find(|(ch, _, _)| *ch == c.ch) {
                Some((_, sum, _)) => *sum += c.prob,
                None => tally.push((c.ch, c.prob, index)),
            }
        }
        let (mut ch, mut sum, first) = tally
            .iter()
            .copied()
            .reduce(|best, next| if next.1 > best.1 { next } else { best })
            .unwrap_or(('?', 0.0, 0));
        let lead_ch = lead.and_then(|r| r.chars.get(position)).map(|c| c.ch);
        if let Some(lead_ch) = lead_ch.filter(|&c| is_round(c) && is_round(ch)) {
            ch = lead_ch;
            sum = tally
                .iter()
                .filter(|(c, _, _)| is_round(*c))
                .map(|(_, s, _)| s)
                .sum();
        }
        let mut read = same[first].chars[position];
        read.ch = ch;
        read.prob = sum / same.len() as f32;
        chars.push(read);
    }
    TextRead {
        chars,
        raw: same[0].raw.clone(),
    }
}

/// Whether a first read could be (part of) a plate and deserves the second
/// recogniser: not a date or a printed word, at most a dozen characters, and
/// (unless `even_if_confident`) not already read with high confidence.
fn worth_second_read(read: &TextRead, even_if_confident: bool) -> bool {
    let len = read.chars.len();
    (1..=12).contains(&len)
        && (even_if_confident || read.confidence() < SECOND_OPINION_BELOW)
        && !plate::is_date_or_time(&read.raw)
        && !plate::looks_like_word(&read.raw)
}

/// The ensemble: the more confident of two reads of one crop (or always the
/// first, when it is already the vote of several), corrected, with the other
/// as an alternative.
fn choose(
    a: TextRead,
    b: Option<TextRead>,
    quad: geometry::Quad,
    letter_o_as_zero: bool,
) -> Candidate {
    choose_from(a, b, quad, letter_o_as_zero, false)
}

fn choose_from(
    a: TextRead,
    b: Option<TextRead>,
    quad: geometry::Quad,
    letter_o_as_zero: bool,
    keep_first: bool,
) -> Candidate {
    let (best, other) = match b {
        Some(b) if !keep_first && b.confidence() > a.confidence() && !b.chars.is_empty() => {
            (b, Some(a))
        }
        b => (a, b),
    };
    let chars = plate::correct_lookalikes(&best.chars, letter_o_as_zero);
    let text: String = chars.iter().map(|c| c.ch).collect();
    let mut readings = vec![(best.text(), best.confidence())];
    if let Some(other) = &other {
        let corrected: String = plate::correct_lookalikes(&other.chars, letter_o_as_zero)
            .iter()
            .map(|c| c.ch)
            .collect();
        readings.insert(0, (corrected, other.confidence()));
        readings.push((other.text(), other.confidence()));
    }
    let mut alternatives: Vec<(String, f32)> = Vec::new();
    for (t, conf) in readings {
        if !t.is_empty() && t != text && !alternatives.iter().any(|(x, _)| *x == t) {
            alternatives.push((t, conf));
        }
    }
    Candidate {
        chars,
        raw: best.raw,
        quad: geometry::order_quad(quad),
        alternatives,
        two_row: false,
        joined: false,
    }
}

/// Refuses images that are empty or too large before any work is done.
fn check_size(width: u32, height: u32, options: &ReadOptions) -> Result<(), ReadError> {
    if width == 0 || height == 0 {
        return Err(ReadError::Empty { width, height });
    }
    let pixels = width as u64 * height as u64;
    if pixels > options.max_pixels || width > MAX_SIDE || height > MAX_SIDE {
        return Err(ReadError::TooLarge {
            width,
            height,
            max_pixels: options.max_pixels,
        });
    }
    Ok(())
}

/// Decodes JPEG or PNG bytes, checking the size from the header before the
/// pixels are decoded (a 10000x10000 image is refused without allocating
/// it).
fn decode(bytes: &[u8], options: &ReadOptions) -> Result<RgbImage, ReadError> {
    if bytes.is_empty() {
        return Err(ReadError::Decode("no bytes".into()));
    }
    let reader = || {
        image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| ReadError::Decode(e.to_string()))
    };
    let (width, height) = reader()?
        .into_dimensions()
        .map_err(|e| ReadError::Decode(e.to_string()))?;
    check_size(width, height, options)?;
    let mut reader = reader()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // Room for the RGBA intermediate of the largest accepted image.
    limits.max_alloc = Some(options.max_pixels.saturating_mul(8).max(1 << 20));
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| ReadError::Decode(e.to_string()))?;
    Ok(image.into_rgb8())
}

/// Drops regions too small to read and those in masked areas, and keeps the
/// most promising [`MAX_BOXES`].
fn select_boxes(boxes: Vec<TextBox>, masks: &[Rect]) -> Vec<TextBox> {
    let mut kept: Vec<TextBox> = boxes
        .into_iter()
        .filter(|b| {
            let (w, h) = geometry::quad_size(&b.quad);
            if h < MIN_BOX_HEIGHT || w < MIN_BOX_WIDTH || h > 1.5 * w {
                return false;
            }
            let bounds = geometry::quad_bounds(&b.quad);
            !masks
                .iter()
                .any(|m| geometry::covered_fraction(&bounds, m) > 0.5)
        })
        .collect();
    let weight = |b: &TextBox| {
        let (w, h) = geometry::quad_size(&b.quad);
        b.score * (w * h).sqrt()
    };
    kept.sort_by(|a, b| weight(b).total_cmp(&weight(a)));
    kept.truncate(MAX_BOXES);
    kept
}

fn to_result(c: Candidate, image: &RgbImage, crop_jpeg: bool) -> PlateResult {
    let bbox = c.bbox();
    let crop = if crop_jpeg {
        plate_jpeg(image, &bbox)
    } else {
        None
    };
    let confidence = c.confidence();
    let text = c.text();
    PlateResult {
        text,
        raw_text: c.raw.clone(),
        char_confidences: c.chars.iter().map(|ch| ch.prob).collect(),
        confidence,
        bbox,
        quad: c.quad.map(|p: Point| (p.x, p.y)),
        candidates: c.alternatives,
        crop_jpeg: crop,
    }
}

/// A small JPEG of the plate's box with a little margin, never upscaled.
fn plate_jpeg(image: &RgbImage, bbox: &Rect) -> Option<Vec<u8>> {
    let (iw, ih) = image.dimensions();
    let margin_x = bbox.width * 0.1;
    let margin_y = bbox.height * 0.1;
    let x0 = (bbox.x - margin_x).max(0.0).floor() as u32;
    let y0 = (bbox.y - margin_y).max(0.0).floor() as u32;
    let x1 = ((bbox.x + bbox.width + margin_x).ceil() as u32).min(iw);
    let y1 = ((bbox.y + bbox.height + margin_y).ceil() as u32).min(ih);
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let mut crop = image::imageops::crop_imm(image, x0, y0, x1 - x0, y1 - y0).to_image();
    let long = crop.width().max(crop.height());
    if long > CROP_MAX_SIDE {
        let s = CROP_MAX_SIDE as f32 / long as f32;
        let w = ((crop.width() as f32 * s).round() as u32).max(1);
        let h = ((crop.height() as f32 * s).round() as u32).max(1);
        crop = image::imageops::resize(&crop, w, h, FilterType::Triangle);
    }
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, CROP_QUALITY)
        .encode_image(&crop)
        .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    use ab_glyph::{FontRef, PxScale};
    use image::Rgb;

    use super::*;

    fn text_read(text: &str, prob: f32) -> TextRead {
        TextRead {
            chars: text
                .chars()
                .map(|ch| recognize::CharRead {
                    ch,
                    prob,
                    best_letter: ('?', 0.0),
                    best_digit: ('?', 0.0),
                })
                .collect(),
            raw: text.to_string(),
        }
    }

    #[test]
    fn voting_goes_character_by_character() {
        // Each read has one wrong character; together they are right.
        let voted = vote(
            &[
                text_read("A8C123", 0.8),
                text_read("ABC1Z3", 0.7),
                text_read("ABCI23", 0.6),
            ],
            true,
        );
        assert_eq!(voted.text(), "ABC123");
        // Agreement counts: a character all three read is surer than one
        // only two read.
        assert!(voted.chars[0].prob > voted.chars[1].prob);
    }

    #[test]
    fn voting_takes_the_length_with_the_most_confidence() {
        let voted = vote(
            &[
                text_read("7ABC123", 0.9),
                text_read("ABC123", 0.5),
                text_read("7ABC128", 0.6),
            ],
            true,
        );
        assert_eq!(voted.text(), "7ABC123");
        assert_eq!(vote(&[text_read("", 0.0)], true).text(), "");
    }

    #[test]
    fn the_round_character_follows_the_plate_model_where_o_is_zero() {
        // The plate model reads a vanity plate's round character as 0, both
        // general recognisers read the word; no digit, so no O-to-0 fold.
        let reads = [
            text_read("C0UGAR", 0.8),
            text_read("COUGAR", 0.9),
            text_read("COUGAR", 0.9),
        ];
        let voted = vote(&reads, true);
        assert_eq!(voted.text(), "C0UGAR");
        // The pooled support of all three reads.
        assert!((voted.chars[1].prob - (0.8 + 0.9 + 0.9) / 3.0).abs() < 1e-6);
        // Where O is a letter of its own, the vote is as before.
        assert_eq!(vote(&reads, false).text(), "COUGAR");
        // Only the round pair: other characters are voted as ever.
        let reads = [
            text_read("8OB", 0.8),
            text_read("BOB", 0.9),
            text_read("BOB", 0.9),
        ];
        assert_eq!(vote(&reads, true).text(), "BOB");
        // A plate model read of another length has no say.
        let reads = [
            text_read("C0UGARS", 0.8),
            text_read("COUGAR", 0.9),
            text_read("COUGAR", 0.9),
        ];
        assert_eq!(vote(&reads, true).text(), "COUGAR");
    }

    #[test]
    fn a_vote_asks_the_second_recogniser_even_after_a_confident_first_read() {
        let confident = text_read("7ABC123", 0.99);
        assert!(!worth_second_read(&confident, false));
        assert!(worth_second_read(&confident, true));
        // Still never for what cannot be a plate.
        assert!(!worth_second_read(&text_read("", 0.5), true));
        assert!(!worth_second_read(&text_read("ABCDEFGHJKLMN", 0.5), true));
        // A confident plate model against a lone first read wins the disputed
        // character; with the second read the two agreeing reads outvote it.
        let plate_model = text_read("7ABCL23", 0.99);
        let first = text_read("7ABC423", 0.7);
        let second = text_read("7ABC423", 0.6);
        assert_eq!(
            vote(&[plate_model.clone(), first.clone()], true).text(),
            "7ABCL23"
        );
        assert_eq!(vote(&[plate_model, first, second], true).text(), "7ABC423");
    }

    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

    fn recognizer() -> &'static Recognizer {
        static R: OnceLock<Recognizer> = OnceLock::new();
        R.get_or_init(|| {
            let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models"));
            Recognizer::load(&ModelConfig {
                models_dir: dir,
                ..ModelConfig::default()
            })
            .expect("models present (scripts/fetch-models)")
        })
    }

    fn font_bytes() -> Vec<u8> {
        std::fs::read(FONT).expect("DejaVu fonts installed")
    }

    /// A grey street scene with a white plate carrying `text` in black.
    fn scene(text: &str, plate_at: (i32, i32), px: f32, above: Option<&str>) -> RgbImage {
        let bytes = font_bytes();
        let font = FontRef::try_from_slice(&bytes).expect("valid font");
        let mut img = RgbImage::from_pixel(960, 540, Rgb([90, 95, 100]));
        let scale = PxScale::from(px);
        let (tw, th) = imageproc::drawing::text_size(scale, &font, text);
        let (x, y) = plate_at;
        let pad = (px * 0.4) as i32;
        let top = if above.is_some() {
            (px * 0.6) as i32
        } else {
            0
        };
        imageproc::drawing::draw_filled_rect_mut(
            &mut img,
            imageproc::rect::Rect::at(x - pad, y - pad - top)
                .of_size(tw + 2 * pad as u32, th + 2 * pad as u32 + top as u32),
            Rgb([245, 245, 240]),
        );
        imageproc::drawing::draw_text_mut(&mut img, Rgb([20, 20, 30]), x, y, scale, &font, text);
        if let Some(state) = above {
            let small = PxScale::from(px * 0.35);
            let (sw, _) = imageproc::drawing::text_size(small, &font, state);
            let sx = x + (tw as i32 - sw as i32) / 2;
            imageproc::drawing::draw_text_mut(
                &mut img,
                Rgb([150, 20, 20]),
                sx,
                y - top - pad / 2,
                small,
                &font,
                state,
            );
        }
        img
    }

    #[test]
    fn reads_a_rendered_plate() {
        let img = scene("7ABC123", (360, 240), 56.0, None);
        let reads = recognizer()
            .read_image(&img, &ReadOptions::default())
            .unwrap();
        assert!(!reads.plates.is_empty(), "no plate in {reads:?}");
        let p = &reads.plates[0];
        assert_eq!(p.text, "7ABC123", "{reads:?}");
        assert_eq!(p.char_confidences.len(), 7);
        assert!(p.confidence > 0.8);
        assert!(p.bbox.x > 330.0 && p.bbox.x < 380.0, "{:?}", p.bbox);
        let jpeg = p.crop_jpeg.as_ref().expect("crop attached");
        let crop = image::load_from_memory(jpeg).unwrap();
        assert!(crop.width() <= CROP_MAX_SIDE && crop.height() <= CROP_MAX_SIDE);
    }

    #[test]
    fn reads_a_plate_with_a_state_name_above() {
        let img = scene("KTX4821", (330, 260), 60.0, Some("Texas"));
        let reads = recognizer()
            .read_image(&img, &ReadOptions::default())
            .unwrap();
        assert_eq!(
            reads.plates.first().map(|p| p.text.as_str()),
            Some("KTX4821"),
            "{reads:?}"
        );
    }

    #[test]
    fn reads_an_upside_down_plate_only_with_the_orientation_check() {
        let img = scene("HJK5079", (360, 240), 56.0, None);
        let turned = image::imageops::rotate180(&img);
        let checked = ReadOptions {
            upside_down_text: true,
            ..ReadOptions::default()
        };
        let reads = recognizer().read_image(&turned, &checked).unwrap();
        assert_eq!(
            reads.plates.first().map(|p| p.text.as_str()),
            Some("HJK5079"),
            "{reads:?}"
        );
        // Off by default: upright cameras do not pay for the classifier's
        // mistakes on upright plates.
        let reads = recognizer()
            .read_image(&turned, &ReadOptions::default())
            .unwrap();
        assert!(
            reads.plates.iter().all(|p| p.text != "HJK5079"),
            "{reads:?}"
        );
    }

    #[test]
    fn masked_plates_are_not_read() {
        let img = scene("7ABC123", (360, 240), 56.0, None);
        // The plate's surroundings, in fractions of the picture.
        let (w, h) = (img.width() as f32, img.height() as f32);
        let options = ReadOptions {
            masks: vec![Rect {
                x: 300.0 / w,
                y: 200.0 / h,
                width: 400.0 / w,
                height: 150.0 / h,
            }],
            ..ReadOptions::default()
        };
        let unmasked = recognizer()
            .read_image(&img, &ReadOptions::default())
            .unwrap();
        assert!(
            unmasked.plates.iter().any(|p| p.text == "7ABC123"),
            "{unmasked:?}"
        );
        let reads = recognizer().read_image(&img, &options).unwrap();
        assert!(
            reads.plates.iter().all(|p| p.text != "7ABC123"),
            "{reads:?}"
        );
    }

    #[test]
    fn encoded_images_round_trip_and_bad_input_is_an_error() {
        let img = scene("5KLM902", (360, 240), 56.0, None);
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let reads = recognizer()
            .read_encoded(&png, &ReadOptions::default())
            .unwrap();
        assert_eq!(
            reads.plates.first().map(|p| p.text.as_str()),
            Some("5KLM902")
        );
        assert!(reads.timings.total >= reads.timings.detect);

        let r = recognizer();
        assert!(matches!(
            r.read_encoded(b"\xff\xd8\xff\xe0garbage", &ReadOptions::default()),
            Err(ReadError::Decode(_))
        ));
        assert!(matches!(
            r.read_encoded(&[], &ReadOptions::default()),
            Err(ReadError::Decode(_))
        ));
        assert!(matches!(
            r.read_image(&RgbImage::new(0, 10), &ReadOptions::default()),
            Err(ReadError::Empty { .. })
        ));
        // A 10000x10000 PNG header is refused before its pixels are decoded.
        let mut big = Vec::new();
        let huge = image::GrayImage::new(10_000, 10_000);
        image::DynamicImage::ImageLuma8(huge)
            .write_to(&mut Cursor::new(&mut big), image::ImageFormat::Png)
            .unwrap();
        assert!(matches!(
            r.read_encoded(&big, &ReadOptions::default()),
            Err(ReadError::TooLarge { .. })
        ));
        // And the recognizer still reads after the errors.
        let again = r
            .read_image(
                &scene("7ABC123", (360, 240), 56.0, None),
                &ReadOptions::default(),
            )
            .unwrap();
        assert_eq!(
            again.plates.first().map(|p| p.text.as_str()),
            Some("7ABC123")
        );
    }

    #[test]
    fn threads_share_one_recognizer() {
        let r = recognizer();
        let plates = ["7ABC123", "HJK5079", "5KLM902"];
        std::thread::scope(|scope| {
            let handles: Vec<_> = plates
                .iter()
                .map(|text| {
                    scope.spawn(move || {
                        let img = scene(text, (360, 240), 56.0, None);
                        r.read_image(&img, &ReadOptions::default())
                            .map(|reads| reads.plates.first().map(|p| p.text.clone()))
                    })
                })
                .collect();
            for (handle, text) in handles.into_iter().zip(plates) {
                let read = handle.join().expect("reader thread").expect("read");
                assert_eq!(read.as_deref(), Some(text));
            }
        });
    }

    #[test]
    fn recognizer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Recognizer>();
    }
}
