//! A folder of JPEGs played as a camera, in file-name order, at the camera's
//! sample rate (or as fast as possible with `rate=fast`). The JPEGs are
//! published as they are when they fit the bus.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{BoxFuture, FrameSource, JpegUnit, SourceError, SourceItem};
use crate::camera_url::Rate;
use crate::decode::DecoderSetup;

pub struct JpegDirSource {
    files: Vec<PathBuf>,
    next: usize,
    looped: bool,
    interval: Option<Duration>,
    due: Option<Instant>,
}

/// The JPEG files of a folder (by extension, case-insensitive), sorted by name.
pub fn list_jpegs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .and_then(|ext| ext.to_str())
                    .is_some_and(|ext| {
                        ext.eq_ignore_ascii_case("jpg") || ext.eq_ignore_ascii_case("jpeg")
                    })
        })
        .collect();
    files.sort();
    Ok(files)
}

impl JpegDirSource {
    pub async fn open(
        dir: &Path,
        looped: bool,
        rate: Rate,
        sample_fps: f32,
    ) -> Result<Self, SourceError> {
        let owned = dir.to_path_buf();
        let files = tokio::task::spawn_blocking(move || list_jpegs(&owned))
            .await
            .map_err(|err| SourceError::File(format!("listing {}: {err}", dir.display())))?
            .map_err(|err| SourceError::File(format!("listing {}: {err}", dir.display())))?;
        if files.is_empty() {
            return Err(SourceError::NoVideo(format!(
                "{} holds no .jpg or .jpeg files",
                dir.display()
            )));
        }
        let interval = match rate {
            Rate::Fast => None,
            Rate::Native if sample_fps.is_finite() && sample_fps > 0.0 => {
                Some(Duration::from_secs_f64(1.0 / f64::from(sample_fps)))
            }
            Rate::Native | Rate::Live { .. } => Some(Duration::from_millis(100)),
        };
        Ok(JpegDirSource {
            files,
            next: 0,
            looped,
            interval,
            due: None,
        })
    }

    async fn next_item(&mut self) -> Result<Option<SourceItem>, SourceError> {
        if self.next >= self.files.len() {
            if !self.looped {
                return Ok(None);
            }
            self.next = 0;
        }
        if let Some(interval) = self.interval {
            let now = Instant::now();
            let due = self.due.unwrap_or(now);
            tokio::time::sleep_until(due).await;
            // From the due time, not from now: the average rate stays exact;
            // after a long stall, start afresh rather than burst.
            let next = due + interval;
            self.due = Some(if next < now { now + interval } else { next });
        }
        let path = &self.files[self.next];
        self.next += 1;
        let data = tokio::fs::read(path)
            .await
            .map_err(|err| SourceError::File(format!("reading {}: {err}", path.display())))?;
        Ok(Some(SourceItem::Jpeg(JpegUnit {
            data,
            capture_time: SystemTime::now(),
        })))
    }
}

impl FrameSource for JpegDirSource {
    fn take_decoder(&mut self) -> Option<DecoderSetup> {
        None
    }

    fn is_live(&self) -> bool {
        false
    }

    fn next(&mut self) -> BoxFuture<'_, Result<Option<SourceItem>, SourceError>> {
        Box::pin(self.next_item())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jpegs_come_in_name_order_and_loop() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, byte) in [
            ("b.jpg", 2u8),
            ("a.JPG", 1),
            ("c.jpeg", 3),
            ("notes.txt", 9),
        ] {
            std::fs::write(dir.path().join(name), [byte]).expect("write");
        }
        let mut source = JpegDirSource::open(dir.path(), true, Rate::Fast, 10.0)
            .await
            .expect("opens");
        let mut seen = Vec::new();
        for _ in 0..5 {
            match source.next().await.expect("reads") {
                Some(SourceItem::Jpeg(unit)) => seen.push(unit.data[0]),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seen, [1, 2, 3, 1, 2]);

        let mut once = JpegDirSource::open(dir.path(), false, Rate::Fast, 10.0)
            .await
            .expect("opens");
        for _ in 0..3 {
            assert!(once.next().await.expect("reads").is_some());
        }
        assert!(once.next().await.expect("reads").is_none());

        let empty = tempfile::tempdir().expect("temp dir");
        assert!(matches!(
            JpegDirSource::open(empty.path(), false, Rate::Fast, 10.0).await,
            Err(SourceError::NoVideo(_))
        ));
    }
}
