//! The analytic settings of one camera in the form the tracker uses, built
//! from the live configuration. Regexes are compiled once per configuration
//! change, not once per frame.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anpr_common::config_watch::ConfigState;
use anpr_common::proto::AnalyticSettings;
use regex::Regex;

/// Settings of one camera, every field resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Reads of a track ignored before Detect (default 2).
    pub skip_first_reads: u32,
    /// Minimum read confidence for Detect (default 0.7).
    pub min_confidence: f32,
    /// No read for this long, in capture time, ends a track (default 5 s).
    pub lost_timeout: Duration,
    /// Largest confusable-aware edit distance for a read to join a track
    /// (default 2).
    pub grouping_distance: f32,
    /// Plate formats, each anchored to the whole text (default none).
    pub formats: Vec<Regex>,
}

impl Default for Settings {
    /// The built-in defaults of the config service.
    fn default() -> Self {
        Settings::from_proto(&AnalyticSettings::builtin_defaults())
    }
}

impl Settings {
    /// Resolves `settings`; a field left unset takes the built-in default.
    /// A pattern that does not compile is left out with a warning (the
    /// config service refuses such patterns, so this is a safety net).
    pub fn from_proto(settings: &AnalyticSettings) -> Self {
        let resolved = AnalyticSettings::builtin_defaults().merged_with(settings);
        let patterns = resolved
            .plate_formats
            .map(|formats| formats.patterns)
            .unwrap_or_default();
        Settings {
            skip_first_reads: resolved.skip_first_reads.unwrap_or(2),
            min_confidence: resolved.min_confidence.unwrap_or(0.7),
            lost_timeout: Duration::from_millis(u64::from(
                resolved.lost_timeout_ms.unwrap_or(5_000),
            )),
            grouping_distance: resolved.grouping_distance.unwrap_or(2) as f32,
            formats: compile(&patterns),
        }
    }
}

fn compile(patterns: &[String]) -> Vec<Regex> {
    patterns
        .iter()
        .filter_map(|pattern| match Regex::new(&format!("^(?:{pattern})$")) {
            Ok(regex) => Some(regex),
            Err(error) => {
                tracing::warn!(%pattern, %error, "plate format does not compile; ignoring it");
                None
            }
        })
        .collect()
}

/// Settings per camera for one configuration state, built on first use.
/// Replaced as a whole when the configuration changes.
pub struct SettingsBook {
    state: Arc<ConfigState>,
    cache: HashMap<String, Arc<Settings>>,
    /// Cameras already reported as unknown, so the log says it once.
    unknown_logged: HashSet<String>,
}

impl SettingsBook {
    pub fn new(state: Arc<ConfigState>) -> Self {
        SettingsBook {
            state,
            cache: HashMap::new(),
            unknown_logged: HashSet::new(),
        }
    }

    /// Takes a new configuration; settings are rebuilt from it on next use.
    pub fn update(&mut self, state: Arc<ConfigState>) {
        if !Arc::ptr_eq(&self.state, &state) {
            self.state = state;
            self.cache.clear();
        }
    }

    /// The settings for `camera_id`. A camera the configuration does not know
    /// is still processed, with the defaults (logged once).
    pub fn for_camera(&mut self, camera_id: &str) -> Arc<Settings> {
        if let Some(settings) = self.cache.get(camera_id) {
            return settings.clone();
        }
        if !self.state.cameras.contains_key(camera_id)
            && self.unknown_logged.insert(camera_id.to_string())
        {
            tracing::info!(
                camera = %camera_id,
                "reads from a camera the configuration does not know; using the analytic defaults"
            );
        }
        let settings = Arc::new(Settings::from_proto(
            &self.state.effective_analytic(camera_id),
        ));
        self.cache.insert(camera_id.to_string(), settings.clone());
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anpr_common::proto::PlateFormats;

    #[test]
    fn defaults_and_overrides_resolve() {
        let defaults = Settings::default();
        assert_eq!(defaults.skip_first_reads, 2);
        assert_eq!(defaults.lost_timeout, Duration::from_secs(5));
        assert!(defaults.formats.is_empty());

        let mut state = ConfigState {
            loaded: true,
            ..ConfigState::default()
        };
        state.analytic_overrides.insert(
            "gate".into(),
            AnalyticSettings {
                skip_first_reads: Some(0),
                plate_formats: Some(PlateFormats {
                    patterns: vec!["[A-Z]{2}[0-9]{2}".into(), "(".into()],
                }),
                ..AnalyticSettings::default()
            },
        );
        let mut book = SettingsBook::new(Arc::new(state.clone()));
        let gate = book.for_camera("gate");
        assert_eq!(gate.skip_first_reads, 0);
        // The broken pattern is left out; the good one is anchored.
        assert_eq!(gate.formats.len(), 1);
        assert!(gate.formats[0].is_match("AB12"));
        assert!(!gate.formats[0].is_match("XAB12"));
        assert_eq!(book.for_camera("other").skip_first_reads, 2);

        state.analytic_overrides.clear();
        book.update(Arc::new(state));
        assert_eq!(book.for_camera("gate").skip_first_reads, 2);
    }
}
