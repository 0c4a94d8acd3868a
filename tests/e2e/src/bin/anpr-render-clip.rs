//! Renders the demo's camera clip: cars with known plates crossing a road,
//! H.264 in MPEG-TS for the RTSP test server (`tests/testkit/rtsp_server.py`)
//! to loop. Prints the clip's path. Clips are cached, so a second call with
//! the same plates returns at once.

use std::path::PathBuf;

use anpr_testkit::clip::{self, ClipSpec, DEFAULT_PLATES};
use anyhow::{bail, Context};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "anpr-render-clip", version)]
struct Args {
    /// Plates in the order the cars pass, comma-separated (A-Z 0-9, at most 8 each).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_PLATES.map(String::from))]
    plates: Vec<String>,
    /// Folder for the clip. Default: the test kit's clip cache.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for plate in &args.plates {
        let valid = !plate.is_empty()
            && plate.len() <= 8
            && plate
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !valid {
            bail!("--plates: {plate:?} must be 1-8 characters of A-Z and 0-9");
        }
    }
    let plates: Vec<&str> = args.plates.iter().map(String::as_str).collect();
    let spec = ClipSpec::new(&plates);
    let dir = args.out.unwrap_or_else(clip::cache_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let rendered = clip::render_plate_clip(&spec, &dir);
    println!("{}", rendered.path.display());
    Ok(())
}
