//! The accuracy and speed benchmark: reads a dataset folder in the
//! `testdata/README.md` format, scores what the recogniser read against the
//! ground truth, and renders the result as a Markdown report.
//!
//! Everything here is plain logic on plain data, so it is unit-tested
//! without models; [`evaluate`] takes the reading function as a parameter
//! and the `anpr-bench-recognizer` binary passes the real
//! [`crate::Recognizer`].
//!
//! File names show up in the report (the list of misses) so a person can
//! look at the photos; nothing here looks at a name to decide anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::types::{ImageReads, ReadError, Rect, Timings};

/// A read plate box overlapping the true box by at least this much
/// (intersection over union) counts as having found the plate.
pub const DETECTION_IOU: f32 = 0.3;

/// How many of the most frequent confusions the report lists.
pub const TOP_CONFUSIONS: usize = 15;

/// Why a dataset folder could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("reading dataset folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Annotation { path: PathBuf, message: String },
    #[error("no annotated images in {path} (expected NAME.jpg with NAME.txt beside it)")]
    Empty { path: PathBuf },
}

/// One annotated image of the dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The image's file name, e.g. `car.jpg`.
    pub name: String,
    pub image: PathBuf,
    /// The plate, already reduced to A-Z0-9.
    pub truth: String,
    pub truth_box: Rect,
}

/// Reduces a plate to what accuracy is counted on: upper-case A-Z and 0-9.
pub fn normalise(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
            let c = c.to_ascii_uppercase();
            c.is_ascii_alphanumeric().then_some(c)
        })
        .collect()
}

/// Parses one annotation file (`NAME.jpg\tX\tY\tW\tH\tPLATE`, exactly one
/// line; blank lines and a trailing CR are allowed). `path` is only used
/// to name the file in errors. Returns the image's file name, the true box
/// and the normalised plate.
pub fn parse_annotation(path: &Path, text: &str) -> Result<(String, Rect, String), DatasetError> {
    let line_error = |line: usize, message: String| DatasetError::Line {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut found: Option<(String, Rect, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if found.is_some() {
            return Err(line_error(
                line_no,
                "more than one annotation line (the format has one plate per image)".into(),
            ));
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != 6 {
            return Err(line_error(
                line_no,
                format!(
                    "expected 6 tab-separated fields (NAME.jpg X Y WIDTH HEIGHT PLATE), found {}",
                    fields.len()
                ),
            ));
        }
        let name = fields[0].trim();
        if name.is_empty() {
            return Err(line_error(line_no, "the image name is empty".into()));
        }
        let mut numbers = [0f32; 4];
        for (slot, (label, field)) in numbers
            .iter_mut()
            .zip(["X", "Y", "WIDTH", "HEIGHT"].iter().zip(&fields[1..5]))
        {
            let value: f32 = field.trim().parse().map_err(|_| {
                line_error(line_no, format!("{label} must be a number, got {field:?}"))
            })?;
            if !value.is_finite() || value < 0.0 {
                return Err(line_error(
                    line_no,
                    format!("{label} must be a non-negative number, got {field:?}"),
                ));
            }
            *slot = value;
        }
        if numbers[2] <= 0.0 || numbers[3] <= 0.0 {
            return Err(line_error(
                line_no,
                "WIDTH and HEIGHT must be greater than 0".into(),
            ));
        }
        let plate = normalise(fields[5]);
        if plate.is_empty() {
            return Err(line_error(
                line_no,
                format!("PLATE has no letters or digits: {:?}", fields[5].trim_end()),
            ));
        }
        let rect = Rect {
            x: numbers[0],
            y: numbers[1],
            width: numbers[2],
            height: numbers[3],
        };
        found = Some((name.to_string(), rect, plate));
    }
    found.ok_or_else(|| DatasetError::Annotation {
        path: path.to_path_buf(),
        message: "no annotation line".into(),
    })
}

/// Reads every `NAME.txt` in `dir` (sorted by name, so runs are
/// comparable) and checks that the image it names exists beside it.
pub fn load_dataset(dir: &Path) -> Result<Vec<Sample>, DatasetError> {
    let folder_error = |source| DatasetError::Folder {
        path: dir.to_path_buf(),
        source,
    };
    let mut annotations = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(folder_error)? {
        let path = entry.map_err(folder_error)?.path();
        if path.extension().is_some_and(|ext| ext == "txt") && path.is_file() {
            annotations.push(path);
        }
    }
    annotations.sort();
    let mut samples = Vec::with_capacity(annotations.len());
    for path in annotations {
        let text = std::fs::read_to_string(&path).map_err(|source| DatasetError::File {
            path: path.clone(),
            source,
        })?;
        let (name, truth_box, truth) = parse_annotation(&path, &text)?;
        // The pairing NAME.jpg/NAME.txt is the format: a file that names
        // another image is a mistake in the dataset, not something to guess at.
        let expected_stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let named_stem = Path::new(&name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("");
        if named_stem != expected_stem || Path::new(&name).components().count() != 1 {
            return Err(DatasetError::Annotation {
                path: path.clone(),
                message: format!("names the image {name:?}, expected {expected_stem}.jpg"),
            });
        }
        let image = dir.join(&name);
        if !image.is_file() {
            return Err(DatasetError::Annotation {
                path: path.clone(),
                message: format!("the image {} does not exist", image.display()),
            });
        }
        samples.push(Sample {
            name,
            image,
            truth,
            truth_box,
        });
    }
    if samples.is_empty() {
        return Err(DatasetError::Empty {
            path: dir.to_path_buf(),
        });
    }
    Ok(samples)
}

/// Intersection over union of two boxes; 0 when either is empty.
pub fn iou(a: &Rect, b: &Rect) -> f32 {
    let left = a.x.max(b.x);
    let top = a.y.max(b.y);
    let right = (a.x + a.width).min(b.x + b.width);
    let bottom = (a.y + a.height).min(b.y + b.height);
    let intersection = (right - left).max(0.0) * (bottom - top).max(0.0);
    let union =
        a.width.max(0.0) * a.height.max(0.0) + b.width.max(0.0) * b.height.max(0.0) - intersection;
    if union <= 0.0 {
        0.0
    } else {
        intersection / union
    }
}

/// One step that turns the true plate into what was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Edit {
    /// The true character was read as another one.
    Substitution { truth: char, read: char },
    /// A character was read that is not on the plate.
    Insertion(char),
    /// A character of the plate was not read.
    Deletion(char),
}

impl std::fmt::Display for Edit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Edit::Substitution { truth, read } => write!(f, "{truth} read as {read}"),
            Edit::Insertion(c) => write!(f, "extra {c}"),
            Edit::Deletion(c) => write!(f, "missing {c}"),
        }
    }
}

/// The fewest edits (Levenshtein) that turn `truth` into `read`, in plate
/// order. Among equally short alignments substitutions are preferred,
/// because "0 read as O" says more than "missing 0, extra O".
pub fn align(truth: &str, read: &str) -> Vec<Edit> {
    let t: Vec<char> = truth.chars().collect();
    let r: Vec<char> = read.chars().collect();
    let cols = r.len() + 1;
    // cost[i * cols + j]: edits turning t[..i] into r[..j].
    let mut cost = vec![0usize; (t.len() + 1) * cols];
    for i in 0..=t.len() {
        for j in 0..=r.len() {
            cost[i * cols + j] = if i == 0 {
                j
            } else if j == 0 {
                i
            } else {
                let diagonal = cost[(i - 1) * cols + j - 1] + usize::from(t[i - 1] != r[j - 1]);
                let deletion = cost[(i - 1) * cols + j] + 1;
                let insertion = cost[i * cols + j - 1] + 1;
                diagonal.min(deletion).min(insertion)
            };
        }
    }
    let mut edits = Vec::new();
    let (mut i, mut j) = (t.len(), r.len());
    while i > 0 || j > 0 {
        let here = cost[i * cols + j];
        if i > 0
            && j > 0
            && here == cost[(i - 1) * cols + j - 1] + usize::from(t[i - 1] != r[j - 1])
        {
            if t[i - 1] != r[j - 1] {
                edits.push(Edit::Substitution {
                    truth: t[i - 1],
                    read: r[j - 1],
                });
            }
            i -= 1;
            j -= 1;
        } else if i > 0 && here == cost[(i - 1) * cols + j] + 1 {
            edits.push(Edit::Deletion(t[i - 1]));
            i -= 1;
        } else {
            edits.push(Edit::Insertion(r[j - 1]));
            j -= 1;
        }
    }
    edits.reverse();
    edits
}

/// Milliseconds per stage for one image.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StageTimes {
    pub decode_ms: f64,
    pub detect_ms: f64,
    pub recognize_ms: f64,
    /// The engine's own total.
    pub total_ms: f64,
    /// Measured by the benchmark around the whole call (a cross-check on
    /// `total_ms`).
    pub call_ms: f64,
}

impl StageTimes {
    fn new(timings: &Timings, call: Duration) -> StageTimes {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        StageTimes {
            decode_ms: ms(timings.decode),
            detect_ms: ms(timings.detect),
            recognize_ms: ms(timings.recognize),
            total_ms: ms(timings.total),
            call_ms: ms(call),
        }
    }
}

/// How one image scored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImageScore {
    pub name: String,
    pub truth: String,
    /// The best plate's text, normalised; empty when nothing was read.
    pub read: String,
    /// Why the image could not be read at all.
    pub error: Option<String>,
    /// The best plate is the true plate.
    pub top1: bool,
    /// The true plate is among every plate and candidate read.
    pub among_candidates: bool,
    /// The best plate's box overlaps the true box (IoU >= [`DETECTION_IOU`]).
    pub detected_best: bool,
    /// Some plate's box overlaps the true box.
    pub detected_any: bool,
    /// IoU of the best plate's box with the true box.
    pub best_iou: Option<f32>,
    /// Plates reported in the image.
    pub plates: usize,
    /// None when the image could not be read.
    pub times: Option<StageTimes>,
}

/// Scores what was read in one image against its ground truth.
pub fn score_image(
    sample: &Sample,
    result: &Result<ImageReads, ReadError>,
    call: Duration,
) -> ImageScore {
    let mut score = ImageScore {
        name: sample.name.clone(),
        truth: sample.truth.clone(),
        read: String::new(),
        error: None,
        top1: false,
        among_candidates: false,
        detected_best: false,
        detected_any: false,
        best_iou: None,
        plates: 0,
        times: None,
    };
    let reads = match result {
        Ok(reads) => reads,
        Err(error) => {
            score.error = Some(error.to_string());
            return score;
        }
    };
    score.plates = reads.plates.len();
    score.times = Some(StageTimes::new(&reads.timings, call));
    if let Some(best) = reads.plates.first() {
        score.read = normalise(&best.text);
        score.top1 = score.read == sample.truth;
        let overlap = iou(&best.bbox, &sample.truth_box);
        score.best_iou = Some(overlap);
        score.detected_best = overlap >= DETECTION_IOU;
    }
    score.detected_any = reads
        .plates
        .iter()
        .any(|plate| iou(&plate.bbox, &sample.truth_box) >= DETECTION_IOU);
    score.among_candidates = reads.plates.iter().any(|plate| {
        normalise(&plate.text) == sample.truth
            || plate
                .candidates
                .iter()
                .any(|(text, _)| normalise(text) == sample.truth)
    });
    score
}

/// Reads every sample with `read` (given the file's bytes) and scores it.
/// A file that cannot be read is scored as an error, like an image the
/// recogniser refuses; `on_image` sees each score as it is made (progress,
/// JSON lines).
pub fn evaluate<R, P>(samples: &[Sample], mut read: R, mut on_image: P) -> Vec<ImageScore>
where
    R: FnMut(&[u8]) -> Result<ImageReads, ReadError>,
    P: FnMut(&ImageScore),
{
    let mut scores = Vec::with_capacity(samples.len());
    for sample in samples {
        let score = match std::fs::read(&sample.image) {
            Ok(bytes) => {
                let started = Instant::now();
                let result = read(&bytes);
                let call = started.elapsed();
                score_image(sample, &result, call)
            }
            Err(error) => {
                let result = Err(ReadError::Decode(format!(
                    "reading {}: {error}",
                    sample.image.display()
                )));
                score_image(sample, &result, Duration::ZERO)
            }
        };
        on_image(&score);
        scores.push(score);
    }
    scores
}

/// Nearest-rank percentile (`p` in 0..=100) of values sorted ascending:
/// always a value that was measured. None for no values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Median and 95th percentile of one stage, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Latency {
    pub median_ms: f64,
    pub p95_ms: f64,
}

impl Latency {
    fn of(values: impl Iterator<Item = f64>) -> Option<Latency> {
        let mut sorted: Vec<f64> = values.collect();
        sorted.sort_by(f64::total_cmp);
        Some(Latency {
            median_ms: percentile(&sorted, 50.0)?,
            p95_ms: percentile(&sorted, 95.0)?,
        })
    }
}

/// The whole run in numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    pub images: usize,
    /// Images the recogniser refused or that could not be read.
    pub errors: usize,
    pub top1: usize,
    pub among_candidates: usize,
    pub detected_best: usize,
    pub detected_any: usize,
    /// Misses where no plate was reported at all.
    pub no_plate: usize,
    /// Over the images read without error; None when there were none.
    pub decode: Option<Latency>,
    pub detect: Option<Latency>,
    pub recognize: Option<Latency>,
    pub total: Option<Latency>,
    pub call: Option<Latency>,
    /// Edits over the misses that read some plate, most frequent first.
    pub confusions: Vec<(Edit, usize)>,
}

impl Summary {
    pub fn percent(&self, count: usize) -> f64 {
        if self.images == 0 {
            0.0
        } else {
            100.0 * count as f64 / self.images as f64
        }
    }
}

/// Adds the scores up.
pub fn summarize(scores: &[ImageScore]) -> Summary {
    let count = |f: fn(&ImageScore) -> bool| scores.iter().filter(|s| f(s)).count();
    let times: Vec<StageTimes> = scores.iter().filter_map(|s| s.times).collect();
    let stage = |f: fn(&StageTimes) -> f64| Latency::of(times.iter().map(f));
    let mut edits: BTreeMap<Edit, usize> = BTreeMap::new();
    for score in scores {
        // A miss with nothing read is counted as "no plate", not as every
        // character missing, which would drown the character confusions.
        if !score.top1 && !score.read.is_empty() {
            for edit in align(&score.truth, &score.read) {
                *edits.entry(edit).or_default() += 1;
            }
        }
    }
    let mut confusions: Vec<(Edit, usize)> = edits.into_iter().collect();
    // Most frequent first; the map's order breaks ties, so the list is stable.
    confusions.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    Summary {
        images: scores.len(),
        errors: count(|s| s.error.is_some()),
        top1: count(|s| s.top1),
        among_candidates: count(|s| s.among_candidates),
        detected_best: count(|s| s.detected_best),
        detected_any: count(|s| s.detected_any),
        no_plate: count(|s| s.error.is_none() && s.plates == 0),
        decode: stage(|t| t.decode_ms),
        detect: stage(|t| t.detect_ms),
        recognize: stage(|t| t.recognize_ms),
        total: stage(|t| t.total_ms),
        call: stage(|t| t.call_ms),
        confusions,
    }
}

/// The machine a run was made on.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
}

impl Machine {
    /// Reads /proc/cpuinfo; falls back to the thread count Rust sees and an
    /// unknown model where that file is missing (not Linux).
    pub fn detect() -> Machine {
        let fallback_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match std::fs::read_to_string("/proc/cpuinfo") {
            Ok(text) => parse_cpuinfo(&text, fallback_cores),
            Err(_) => Machine {
                cores: fallback_cores,
                cpu_model: "unknown CPU".into(),
            },
        }
    }
}

/// The processor count and model name from the text of /proc/cpuinfo.
pub fn parse_cpuinfo(text: &str, fallback_cores: usize) -> Machine {
    let mut processors = 0;
    let mut model = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "processor" => processors += 1,
            "model name" if model.is_none() => model = Some(value.trim().to_string()),
            _ => {}
        }
    }
    Machine {
        cores: if processors == 0 {
            fallback_cores
        } else {
            processors
        },
        cpu_model: model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "unknown CPU".into()),
    }
}

/// The 1-minute load average from the text of /proc/loadavg.
pub fn parse_loadavg(text: &str) -> Option<f32> {
    text.split_whitespace().next()?.parse().ok()
}

/// The machine's 1-minute load average now; None where /proc/loadavg does
/// not exist. Timings taken under load are inflated, so the report says it.
pub fn load_average() -> Option<f32> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

/// `YYYY-MM-DD HH:MM UTC` for a point in time (proleptic Gregorian).
pub fn utc_timestamp(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        of_day / 3600,
        (of_day % 3600) / 60
    )
}

/// Year, month, day of a count of days since 1970-01-01.
fn civil_date(days_since_epoch: i64) -> (i64, u32, u32) {
    // Count from 0000-03-01 so that the leap day ends each 4/100/400-year
    // cycle; a cycle of 400 years has 146097 days.
    let days = days_since_epoch + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 153 days per five months.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// What the report says about how the run was made.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub dataset: String,
    pub threads: usize,
    pub detector_max_side: u32,
    pub machine: Machine,
    pub date: String,
    /// The command line that reproduces the run.
    pub command: String,
    /// 1-minute load average before and after the run.
    pub load_before: Option<f32>,
    pub load_after: Option<f32>,
}

fn ms(latency: Option<Latency>, pick: fn(&Latency) -> f64) -> String {
    latency.map_or_else(|| "n/a".into(), |l| format!("{:.0}", pick(&l)))
}

/// The one summary table (Markdown, also printed by the CLI).
pub fn summary_table(summary: &Summary, info: &RunInfo) -> String {
    let mut out = String::new();
    out.push_str(
        "| images | top-1 exact | plate among candidates | detection recall (best plate) | detection recall (any plate) | median total ms | p95 total ms | threads | detector max side | machine | date |\n",
    );
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
    let _ = writeln!(
        out,
        "| {} | {:.1} % ({}) | {:.1} % ({}) | {:.1} % ({}) | {:.1} % ({}) | {} | {} | {} | {} | {} cores, {} | {} |",
        summary.images,
        summary.percent(summary.top1),
        summary.top1,
        summary.percent(summary.among_candidates),
        summary.among_candidates,
        summary.percent(summary.detected_best),
        summary.detected_best,
        summary.percent(summary.detected_any),
        summary.detected_any,
        ms(summary.total, |l| l.median_ms),
        ms(summary.total, |l| l.p95_ms),
        info.threads,
        info.detector_max_side,
        info.machine.cores,
        info.machine.cpu_model,
        info.date,
    );
    out
}

/// Markdown table cells must not break the table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The full report: summary, latency per stage, confusions, misses.
pub fn render_markdown(summary: &Summary, scores: &[ImageScore], info: &RunInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Dataset `{}`, run {}.\n", info.dataset, info.date);
    let _ = writeln!(out, "```sh\n{}\n```\n", info.command);
    out.push_str(&summary_table(summary, info));
    let _ = writeln!(
        out,
        "\nImages refused or unreadable: {}. Misses with no plate reported: {}. Detection recall counts a read plate box with IoU >= {} against the true box.\n",
        summary.errors, summary.no_plate, DETECTION_IOU
    );

    let load = |value: Option<f32>| value.map_or_else(|| "unknown".into(), |v| format!("{v:.2}"));
    let _ = writeln!(
        out,
        "Load average (1 minute) before the run {}, after it {}, on {} cores. The run itself raises the load by up to its thread count; a load well above 0 before it means other work shared the CPUs and the times are higher than on a quiet machine.\n",
        load(info.load_before),
        load(info.load_after),
        info.machine.cores
    );

    out.push_str("### Latency per image (ms)\n\n");
    out.push_str("| stage | median | p95 |\n|---|---:|---:|\n");
    for (name, latency) in [
        ("decode", summary.decode),
        ("detection", summary.detect),
        ("recognition", summary.recognize),
        ("total (engine)", summary.total),
        ("whole call (measured by the benchmark)", summary.call),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {} |",
            ms(latency, |l| l.median_ms),
            ms(latency, |l| l.p95_ms)
        );
    }

    out.push_str("\n### Most frequent confusions in the misses\n\n");
    if summary.confusions.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str("| edit (truth to read) | count |\n|---|---:|\n");
        for (edit, count) in summary.confusions.iter().take(TOP_CONFUSIONS) {
            let _ = writeln!(out, "| {edit} | {count} |");
        }
    }

    let misses: Vec<&ImageScore> = scores.iter().filter(|s| !s.top1).collect();
    let _ = writeln!(out, "\n### Misses ({})\n", misses.len());
    if misses.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str(
            "| image | truth | read | among candidates | plate found |\n|---|---|---|---|---|\n",
        );
        for miss in misses {
            let read = match (&miss.error, miss.read.is_empty()) {
                (Some(error), _) => format!("error: {}", cell(error)),
                (None, true) => "(no plate)".into(),
                (None, false) => format!("`{}`", miss.read),
            };
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} |",
                cell(&miss.name),
                miss.truth,
                read,
                if miss.among_candidates { "yes" } else { "no" },
                if miss.detected_any { "yes" } else { "no" },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PlateResult;

    fn rect(x: f32, y: f32, width: f32, height: f32) -> Rect {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    fn plate(text: &str, bbox: Rect, candidates: &[&str]) -> PlateResult {
        PlateResult {
            text: text.into(),
            raw_text: text.into(),
            char_confidences: vec![0.9; text.len()],
            confidence: 0.9,
            bbox,
            quad: [
                (bbox.x, bbox.y),
                (bbox.x + bbox.width, bbox.y),
                (bbox.x + bbox.width, bbox.y + bbox.height),
                (bbox.x, bbox.y + bbox.height),
            ],
            candidates: candidates.iter().map(|c| (c.to_string(), 0.5)).collect(),
            crop_jpeg: None,
        }
    }

    fn reads(plates: Vec<PlateResult>, total_ms: u64) -> ImageReads {
        ImageReads {
            width: 1280,
            height: 720,
            plates,
            timings: Timings {
                decode: Duration::from_millis(5),
                detect: Duration::from_millis(total_ms / 2),
                recognize: Duration::from_millis(total_ms / 4),
                total: Duration::from_millis(total_ms),
            },
        }
    }

    fn sample(truth: &str) -> Sample {
        Sample {
            name: format!("{truth}.jpg"),
            image: PathBuf::from(format!("{truth}.jpg")),
            truth: truth.into(),
            truth_box: rect(100.0, 100.0, 100.0, 50.0),
        }
    }

    #[test]
    fn normalise_keeps_upper_case_letters_and_digits() {
        assert_eq!(normalise("ab-12 c·D\t3"), "AB12CD3");
        assert_eq!(normalise("Ü-ß"), "");
    }

    #[test]
    fn parses_an_annotation_line() {
        let (name, truth_box, plate) =
            parse_annotation(Path::new("a.txt"), "a.jpg\t935\t362\t99\t49\tyg9x-2g\r\n\n").unwrap();
        assert_eq!(name, "a.jpg");
        assert_eq!(truth_box, rect(935.0, 362.0, 99.0, 49.0));
        assert_eq!(plate, "YG9X2G");
    }

    #[test]
    fn bad_annotation_lines_name_the_file_and_line() {
        let cases = [
            ("a.jpg 1 2 3 4 ABC", "expected 6 tab-separated fields"),
            ("a.jpg\tx\t2\t3\t4\tABC", "X must be a number"),
            ("a.jpg\t1\t-2\t3\t4\tABC", "Y must be a non-negative number"),
            (
                "a.jpg\t1\t2\t0\t4\tABC",
                "WIDTH and HEIGHT must be greater than 0",
            ),
            ("a.jpg\t1\t2\t3\t4\t--", "PLATE has no letters or digits"),
            ("a.jpg\t1\t2\t3\tABC", "found 5"),
            ("\t1\t2\t3\t4\tABC", "the image name is empty"),
            (
                "a.jpg\t1\t2\t3\t4\tABC\na.jpg\t1\t2\t3\t4\tDEF",
                "more than one annotation line",
            ),
        ];
        for (text, expected) in cases {
            let error = parse_annotation(Path::new("/data/a.txt"), text)
                .unwrap_err()
                .to_string();
            assert!(error.contains("/data/a.txt"), "{error}");
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        let error = parse_annotation(Path::new("/data/b.txt"), "\n \n")
            .unwrap_err()
            .to_string();
        assert_eq!(error, "/data/b.txt: no annotation line");
    }

    #[test]
    fn loads_a_dataset_folder_sorted_and_checks_the_images() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("b.txt"), "b.jpg\t1\t2\t3\t4\tB22\n").unwrap();
        std::fs::write(dir.path().join("a.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("a.txt"), "a.jpg\t5\t6\t7\t8\ta-11\n").unwrap();
        std::fs::write(dir.path().join("notes.md"), "ignored").unwrap();
        let samples = load_dataset(dir.path()).unwrap();
        let names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a.jpg", "b.jpg"]);
        assert_eq!(samples[0].truth, "A11");
        assert_eq!(samples[0].image, dir.path().join("a.jpg"));

        std::fs::write(dir.path().join("c.txt"), "c.jpg\t1\t2\t3\t4\tC33\n").unwrap();
        let error = load_dataset(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("c.txt") && error.contains("does not exist"),
            "{error}"
        );

        std::fs::write(dir.path().join("c.txt"), "a.jpg\t1\t2\t3\t4\tC33\n").unwrap();
        let error = load_dataset(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("c.txt") && error.contains("expected c.jpg"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_or_missing_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = load_dataset(dir.path()).unwrap_err();
        assert!(matches!(error, DatasetError::Empty { .. }), "{error}");
        let error = load_dataset(&dir.path().join("absent")).unwrap_err();
        assert!(matches!(error, DatasetError::Folder { .. }), "{error}");
    }

    #[test]
    fn iou_of_boxes() {
        let a = rect(0.0, 0.0, 10.0, 10.0);
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &rect(20.0, 0.0, 10.0, 10.0)), 0.0);
        // Half overlap: 50 / (100 + 100 - 50).
        let half = iou(&a, &rect(5.0, 0.0, 10.0, 10.0));
        assert!((half - 1.0 / 3.0).abs() < 1e-6, "{half}");
        assert_eq!(iou(&a, &rect(0.0, 0.0, 0.0, 0.0)), 0.0);
    }

    #[test]
    fn alignment_finds_substitutions_insertions_and_deletions() {
        assert_eq!(align("ABC", "ABC"), vec![]);
        assert_eq!(
            align("7AB0123", "7ABO123"),
            vec![Edit::Substitution {
                truth: '0',
                read: 'O'
            }]
        );
        assert_eq!(align("ABC", "ABXC"), vec![Edit::Insertion('X')]);
        assert_eq!(align("ABC", "AC"), vec![Edit::Deletion('B')]);
        assert_eq!(
            align("ABC", ""),
            vec![
                Edit::Deletion('A'),
                Edit::Deletion('B'),
                Edit::Deletion('C')
            ]
        );
        assert_eq!(
            align("", "XY"),
            vec![Edit::Insertion('X'), Edit::Insertion('Y')]
        );
        let mixed = align("KXT4821", "1KXT4B2");
        assert_eq!(
            mixed,
            vec![
                Edit::Insertion('1'),
                Edit::Substitution {
                    truth: '8',
                    read: 'B'
                },
                Edit::Deletion('1'),
            ]
        );
        assert_eq!(
            Edit::Substitution {
                truth: '0',
                read: 'O'
            }
            .to_string(),
            "0 read as O"
        );
    }

    #[test]
    fn scores_top1_candidates_and_detection() {
        let s = sample("ABC123");
        let on_plate = rect(110.0, 105.0, 90.0, 45.0);
        let elsewhere = rect(600.0, 400.0, 90.0, 45.0);

        let right = Ok(reads(vec![plate("ABC123", on_plate, &[])], 100));
        let score = score_image(&s, &right, Duration::from_millis(101));
        assert!(score.top1 && score.among_candidates && score.detected_best && score.detected_any);
        assert_eq!(score.read, "ABC123");
        assert_eq!(score.plates, 1);
        let times = score.times.unwrap();
        assert_eq!(times.total_ms, 100.0);
        assert_eq!(times.call_ms, 101.0);

        // The right plate second, the best one a sign elsewhere.
        let second = Ok(reads(
            vec![
                plate("OPEN24", elsewhere, &[]),
                plate("ABC12", on_plate, &["ABC-123"]),
            ],
            100,
        ));
        let score = score_image(&s, &second, Duration::ZERO);
        assert!(!score.top1 && score.among_candidates);
        assert!(!score.detected_best && score.detected_any);
        assert_eq!(score.read, "OPEN24");
        assert_eq!(score.best_iou, Some(0.0));

        let nothing = Ok(reads(vec![], 80));
        let score = score_image(&s, &nothing, Duration::ZERO);
        assert!(!score.top1 && !score.among_candidates && !score.detected_any);
        assert_eq!(score.read, "");
        assert_eq!(score.best_iou, None);

        let refused = Err(ReadError::Decode("bad".into()));
        let score = score_image(&s, &refused, Duration::ZERO);
        assert_eq!(score.error.as_deref(), Some("not a decodable image: bad"));
        assert_eq!(score.times, None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(10.0));
        assert_eq!(percentile(&values, 95.0), Some(19.0));
        assert_eq!(percentile(&values, 100.0), Some(20.0));
        assert_eq!(percentile(&values, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    fn scored(truth: &str, read: Option<&str>, total_ms: u64) -> ImageScore {
        let s = sample(truth);
        let result = match read {
            Some(text) => Ok(reads(vec![plate(text, s.truth_box, &[])], total_ms)),
            None => Ok(reads(vec![], total_ms)),
        };
        score_image(&s, &result, Duration::from_millis(total_ms))
    }

    #[test]
    fn summary_counts_and_confusions() {
        let mut scores = vec![
            scored("AB0123", Some("AB0123"), 100),
            scored("CD0456", Some("CDO456"), 120),
            scored("EF0789", Some("EFO789"), 140),
            scored("GH1234", Some("GHI234X"), 160),
            scored("JK5678", None, 180),
        ];
        scores.push(score_image(
            &sample("LM9999"),
            &Err(ReadError::Empty {
                width: 0,
                height: 0,
            }),
            Duration::ZERO,
        ));
        let summary = summarize(&scores);
        assert_eq!(summary.images, 6);
        assert_eq!(summary.top1, 1);
        assert_eq!(summary.errors, 1);
        assert_eq!(summary.no_plate, 1);
        assert_eq!(summary.detected_any, 4);
        assert!((summary.percent(summary.top1) - 100.0 / 6.0).abs() < 1e-9);
        let o_for_0 = Edit::Substitution {
            truth: '0',
            read: 'O',
        };
        assert_eq!(summary.confusions[0], (o_for_0, 2));
        assert!(summary.confusions.contains(&(
            Edit::Substitution {
                truth: '1',
                read: 'I'
            },
            1
        )));
        assert!(summary.confusions.contains(&(Edit::Insertion('X'), 1)));
        // Nothing from the miss without a plate.
        assert_eq!(summary.confusions.len(), 3);
        let total = summary.total.unwrap();
        assert_eq!((total.median_ms, total.p95_ms), (140.0, 180.0));
        assert_eq!(summary.detect.unwrap().median_ms, 70.0);
    }

    #[test]
    fn cpuinfo_gives_cores_and_model() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(
            parse_cpuinfo(text, 8),
            Machine {
                cores: 2,
                cpu_model: "AMD EPYC 7B13".into()
            }
        );
        assert_eq!(
            parse_cpuinfo("Hardware : x\n", 4),
            Machine {
                cores: 4,
                cpu_model: "unknown CPU".into()
            }
        );
    }

    #[test]
    fn loadavg_first_field() {
        assert_eq!(parse_loadavg("1.89 3.71 2.95 3/412 9999\n"), Some(1.89));
        assert_eq!(parse_loadavg(""), None);
        assert_eq!(parse_loadavg("x y"), None);
    }

    #[test]
    fn utc_timestamps() {
        let at = |secs: u64| utc_timestamp(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00 UTC");
        // 2000-02-29 12:34, a leap day of a 400-year leap year.
        assert_eq!(at(951_827_640), "2000-02-29 12:34 UTC");
        // 2026-11-29 04:19.
        assert_eq!(at(1_795_925_940), "2026-11-29 04:19 UTC");
        assert_eq!(at(1_709_251_199), "2024-02-29 23:59 UTC");
    }

    #[test]
    fn report_has_the_table_confusions_and_misses() {
        let scores = vec![
            scored("AB0123", Some("AB0123"), 100),
            scored("CD0456", Some("CDO456"), 120),
            scored("JK5678", None, 180),
        ];
        let summary = summarize(&scores);
        let info = RunInfo {
            dataset: "plates".into(),
            threads: 2,
            detector_max_side: 960,
            machine: Machine {
                cores: 2,
                cpu_model: "Test CPU".into(),
            },
            date: "2026-11-29 04:19 UTC".into(),
            command: "anpr-bench-recognizer --dataset plates".into(),
            load_before: Some(1.5),
            load_after: None,
        };
        let report = render_markdown(&summary, &scores, &info);
        assert!(
            report.contains("| 3 | 33.3 % (1) | 33.3 % (1) | 66.7 % (2) | 66.7 % (2) | 120 | 180 | 2 | 960 | 2 cores, Test CPU | 2026-11-29 04:19 UTC |"),
            "{report}"
        );
        assert!(report.contains("| 0 read as O | 1 |"), "{report}");
        assert!(
            report.contains("| CD0456.jpg | `CD0456` | `CDO456` | no | yes |"),
            "{report}"
        );
        assert!(
            report.contains("| JK5678.jpg | `JK5678` | (no plate) | no | no |"),
            "{report}"
        );
        assert!(report.contains("### Misses (2)"), "{report}");
        assert!(report.contains("anpr-bench-recognizer --dataset plates"));
        assert!(
            report.contains("before the run 1.50, after it unknown, on 2 cores"),
            "{report}"
        );
    }
}
