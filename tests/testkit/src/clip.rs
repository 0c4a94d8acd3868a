//! Test video rendered at test time with Debian's `ffmpeg`: a road scene in
//! which cars carrying licence plates with known texts drive across the
//! picture one after the other, with stretches of empty road between them
//! (so each plate leaves the scene before the next one comes).
//!
//! The clip is H.264 as an IP camera in low-latency mode sends it (High
//! profile, no B-frames, an IDR every 2 s) in MPEG-TS, which
//! [`RtspServer`](crate::rtsp::RtspServer) loops forever. Rendered clips are
//! cached by a hash of the complete ffmpeg command, so a test run renders a
//! clip once and later runs reuse it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What to render.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSpec {
    /// Plate texts, in the order the cars pass: `A-Z` and `0-9` only.
    pub plates: Vec<String>,
    /// How long each car is in the picture.
    pub seconds_per_plate: f64,
    /// Empty road after each car.
    pub gap_seconds: f64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// US-style plates that the recognizer reads exactly from this scene, with
/// no characters it may confuse (O/0, I/1, B/8, S/5).
pub const DEFAULT_PLATES: [&str; 3] = ["7ABC123", "KX5M21", "4TRW856"];

impl Default for ClipSpec {
    fn default() -> Self {
        ClipSpec::new(&DEFAULT_PLATES)
    }
}

impl ClipSpec {
    /// 1280x720 at 25 fps, 4 s per car and 3 s of empty road after each.
    pub fn new(plates: &[&str]) -> Self {
        ClipSpec {
            plates: plates.iter().map(|plate| plate.to_string()).collect(),
            seconds_per_plate: 4.0,
            gap_seconds: 3.0,
            width: 1280,
            height: 720,
            fps: 25,
        }
    }

    /// Length of one car's slot: in the picture, then empty road.
    pub fn slot_seconds(&self) -> f64 {
        self.seconds_per_plate + self.gap_seconds
    }

    /// Length of the whole clip.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.slot_seconds() * self.plates.len() as f64)
    }

    fn check(&self) {
        assert!(!self.plates.is_empty(), "ClipSpec: no plates");
        for plate in &self.plates {
            assert!(
                !plate.is_empty()
                    && plate.len() <= 8
                    && plate
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
                "ClipSpec: plate {plate:?} must be 1-8 of A-Z 0-9"
            );
        }
        assert!(
            self.seconds_per_plate > 0.0 && self.gap_seconds >= 0.0,
            "ClipSpec: seconds_per_plate must be > 0 and gap_seconds >= 0"
        );
        assert!(
            self.width >= 320
                && self.height >= 240
                && self.width.is_multiple_of(2)
                && self.height.is_multiple_of(2),
            "ClipSpec: {}x{} must be even and at least 320x240",
            self.width,
            self.height
        );
        assert!(self.fps > 0, "ClipSpec: fps must be > 0");
    }
}

/// A rendered clip.
#[derive(Debug, Clone)]
pub struct PlateClip {
    /// The MPEG-TS file.
    pub path: PathBuf,
    /// Plate texts in the order the cars pass.
    pub plates: Vec<String>,
    pub duration: Duration,
    pub spec: ClipSpec,
}

impl PlateClip {
    /// When plate `index` is in the picture: from, to (clip time).
    pub fn plate_window(&self, index: usize) -> (Duration, Duration) {
        let start = self.spec.slot_seconds() * index as f64;
        (
            Duration::from_secs_f64(start),
            Duration::from_secs_f64(start + self.spec.seconds_per_plate),
        )
    }

    /// Clip times at which plate `index` is well inside the picture (the
    /// middle of its crossing, `count` instants spread over its middle half).
    pub fn mid_crossing_times(&self, index: usize, count: usize) -> Vec<Duration> {
        let (from, to) = self.plate_window(index);
        let span = (to - from).as_secs_f64();
        (0..count)
            .map(|i| {
                let fraction = 0.25 + 0.5 * (i as f64 + 0.5) / count as f64;
                from + Duration::from_secs_f64(span * fraction)
            })
            .collect()
    }

    /// Writes the frame at clip time `at` as a JPEG file `path`.
    pub fn extract_frame(&self, at: Duration, path: &Path) {
        let status = Command::new(ffmpeg())
            .args(["-hide_banner", "-loglevel", "error", "-y", "-ss"])
            .arg(format!("{:.3}", at.as_secs_f64()))
            .arg("-i")
            .arg(&self.path)
            .args(["-frames:v", "1", "-q:v", "2"])
            .arg(path)
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|err| panic!("running ffmpeg: {err}"));
        assert!(
            status.success() && path.is_file(),
            "ffmpeg could not extract the frame at {at:?} of {} into {}",
            self.path.display(),
            path.display()
        );
    }
}

/// The ffmpeg binary: `$FFMPEG_BIN`, else `ffmpeg` from PATH.
fn ffmpeg() -> PathBuf {
    std::env::var_os("FFMPEG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("ffmpeg"))
}

/// The bold font of the plates: `$ANPR_TEST_FONT`, else DejaVu Sans Bold.
fn font() -> PathBuf {
    let font = std::env::var_os("ANPR_TEST_FONT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"));
    assert!(
        font.is_file(),
        "font {} not found: apt-get install fonts-dejavu-core, or set ANPR_TEST_FONT",
        font.display()
    );
    font
}

/// Where rendered clips are kept between runs: `$ANPR_TEST_CLIPS`, else
/// `$CARGO_TARGET_DIR/anpr-test-clips`, else `<temp dir>/anpr-test-clips`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ANPR_TEST_CLIPS") {
        return PathBuf::from(dir);
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("anpr-test-clips"),
        None => std::env::temp_dir().join("anpr-test-clips"),
    }
}

/// Renders `spec` into [`cache_dir`], or reuses the clip rendered earlier.
pub fn plate_clip(spec: &ClipSpec) -> PlateClip {
    render_plate_clip(spec, &cache_dir())
}

/// Renders `spec` into `dir` (created if missing) as `plates-<hash>.ts`, or
/// reuses that file when it is there already. Safe to call from tests
/// running at the same time: the clip is written under a temporary name and
/// renamed into place.
pub fn render_plate_clip(spec: &ClipSpec, dir: &Path) -> PlateClip {
    spec.check();
    std::fs::create_dir_all(dir)
        .unwrap_or_else(|err| panic!("creating the clip folder {}: {err}", dir.display()));
    let args = ffmpeg_args(spec, &font());
    let path = dir.join(format!("plates-{:016x}.ts", fnv1a(&args.join("\u{1}"))));
    let clip = PlateClip {
        path: path.clone(),
        plates: spec.plates.clone(),
        duration: spec.duration(),
        spec: spec.clone(),
    };
    if path.is_file() {
        return clip;
    }
    // Unique per process and call: tests in one process may render the same
    // clip at the same time; the last rename wins, with identical content.
    static RENDERS: AtomicUsize = AtomicUsize::new(0);
    let partial = dir.join(format!(
        ".{}.{}-{}.partial.ts",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("clip"),
        std::process::id(),
        RENDERS.fetch_add(1, Ordering::Relaxed)
    ));
    let output = Command::new(ffmpeg())
        .args(&args)
        .arg(&partial)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| {
            panic!("running ffmpeg ({err}): apt-get install ffmpeg, or set FFMPEG_BIN")
        });
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        panic!(
            "ffmpeg could not render the clip {spec:?} ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::rename(&partial, &path)
        .unwrap_or_else(|err| panic!("moving {} to {}: {err}", partial.display(), path.display()));
    clip
}

/// Car body colours, one per car in turn.
const CAR_COLOURS: [&str; 4] = ["0x7a1c1c", "0x1c3a7a", "0xb0b4b8", "0x1e5a2c"];

/// The complete ffmpeg command line except the output file.
fn ffmpeg_args(spec: &ClipSpec, font: &Path) -> Vec<String> {
    let (w, h) = (spec.width as f64, spec.height as f64);
    let scale = w / 1280.0;
    let px = |value: f64| (value * scale).round() as i64;
    let even = |value: f64| ((value * scale / 2.0).round() as i64) * 2;
    let duration = spec.duration().as_secs_f64();
    let slot = spec.slot_seconds();
    let on_road = spec.seconds_per_plate;

    // The car: a box with a white plate (2:1, dark border) low in its middle.
    let (car_w, car_h) = (even(600.0), even(340.0));
    let (plate_w, plate_h) = (even(460.0), even(230.0));
    let plate_x = (car_w - plate_w) / 2;
    let plate_y = car_h - plate_h - px(30.0);
    let font_size = px(72.0);
    let border = px(6.0).max(2);
    let font = font.display().to_string();

    // Body colour, then the plate, then its text: each car in its own slot.
    let mut body = String::new();
    let mut text = String::new();
    for (index, plate) in spec.plates.iter().enumerate() {
        let from = slot * index as f64;
        let to = from + slot;
        let colour = CAR_COLOURS[index % CAR_COLOURS.len()];
        let _ = write!(
            body,
            "drawbox=x=0:y=0:w={car_w}:h={car_h}:color={colour}:t=fill:enable='between(t,{from:.3},{to:.3})',"
        );
        let _ = write!(
            text,
            "drawtext=fontfile={font}:text={plate}:fontsize={font_size}:fontcolor=black:\
             x={plate_x}+({plate_w}-text_w)/2:y={plate_y}+({plate_h}-text_h)/2:\
             enable='between(t,{from:.3},{to:.3})',"
        );
    }
    // Road surface, a lane marking and a roadside sign without text.
    let background = format!(
        "[0:v]drawbox=x=0:y={road_y}:w={w}:h={road_h}:color=0x35383c:t=fill,\
         drawbox=x=0:y={line_y}:w={w}:h={line_h}:color=0xd0d0d0:t=fill,\
         drawbox=x={sign_x}:y={sign_y}:w={sign_w}:h={sign_h}:color=0x6a7a50:t=fill[road];",
        road_y = (h * 0.72) as i64,
        road_h = h as i64 - (h * 0.72) as i64,
        line_y = (h * 0.83) as i64,
        line_h = px(12.0).max(2),
        sign_x = (w * 0.70) as i64,
        sign_y = (h * 0.08) as i64,
        sign_w = (w * 0.23) as i64,
        sign_h = (h * 0.25) as i64,
        w = w as i64,
    );
    let plate_box = format!(
        "drawbox=x={plate_x}:y={plate_y}:w={plate_w}:h={plate_h}:color=white:t=fill,\
         drawbox=x={plate_x}:y={plate_y}:w={plate_w}:h={plate_h}:color=0x202020:t={border},"
    );
    let margin = px(60.0);
    let travel = w as i64 - car_w - 2 * margin;
    let car_y = (h * 0.42) as i64;
    let filter = format!(
        "{background}[1:v]{body}{plate_box}{text}null[car];\
         [road][car]overlay=x='{margin}+{travel}*mod(t,{slot:.3})/{on_road:.3}':y={car_y}:\
         enable='lt(mod(t,{slot:.3}),{on_road:.3})'[scene];\
         [scene]noise=alls=6:allf=t,format=yuv420p[out]"
    );
    let size = format!("{}x{}", spec.width, spec.height);
    let car_size = format!("{car_w}x{car_h}");
    vec![
        "-hide_banner".into(),
        "-loglevel".into(),
        "error".into(),
        "-y".into(),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("color=c=0x4a5058:s={size}:r={}:d={duration:.3}", spec.fps),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("color=c=black:s={car_size}:r={}:d={duration:.3}", spec.fps),
        "-filter_complex".into(),
        filter,
        "-map".into(),
        "[out]".into(),
        "-an".into(),
        "-c:v".into(),
        "libx264".into(),
        "-profile:v".into(),
        "high".into(),
        "-bf".into(),
        "0".into(),
        "-g".into(),
        (2 * spec.fps).to_string(),
        "-preset".into(),
        "veryfast".into(),
        "-crf".into(),
        "24".into(),
        "-f".into(),
        "mpegts".into(),
    ]
}

/// 64-bit FNV-1a: a hash that stays the same across Rust releases.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_follows_the_spec() {
        let font = Path::new("/font.ttf");
        let a = ffmpeg_args(&ClipSpec::default(), font).join("\u{1}");
        let b = ffmpeg_args(&ClipSpec::new(&["7ABC123"]), font).join("\u{1}");
        assert_ne!(fnv1a(&a), fnv1a(&b));
        assert_eq!(
            fnv1a(&a),
            fnv1a(&ffmpeg_args(&ClipSpec::default(), font).join("\u{1}"))
        );
    }

    #[test]
    fn plate_windows_follow_the_slots() {
        let spec = ClipSpec::default();
        let clip = PlateClip {
            path: PathBuf::new(),
            plates: spec.plates.clone(),
            duration: spec.duration(),
            spec,
        };
        assert_eq!(clip.duration, Duration::from_secs(21));
        assert_eq!(
            clip.plate_window(1),
            (Duration::from_secs(7), Duration::from_secs(11))
        );
        let times = clip.mid_crossing_times(1, 2);
        assert_eq!(
            times,
            [Duration::from_millis(8500), Duration::from_millis(9500)]
        );
    }

    #[test]
    #[should_panic(expected = "must be 1-8 of A-Z 0-9")]
    fn plate_texts_are_checked() {
        ClipSpec::new(&["ab:c"]).check();
    }
}
