//! A live copy of the configuration, kept by following the config service's
//! `Watch` stream. Services read [`ConfigState`] snapshots from a
//! [`ConfigWatch`]; a change made with `anprctl` reaches them within one
//! round trip, without a restart.
//!
//! The stream is re-opened after any failure (config service restarted, NATS
//! gone, network cut) with a capped back-off; every re-open starts with a full
//! snapshot, which replaces the state, so nothing missed while disconnected
//! survives as stale data.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::proto::config_client::ConfigClient;
use crate::proto::{
    config_item, watch_response, AnalyticSettings, Camera, ConfigItem, ConfigKind, VmsTarget,
    WatchRequest,
};

/// First and longest wait between attempts to re-open the stream.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The whole configuration as last received. Passwords are never part of it
/// (the config API does not return them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigState {
    /// Whether a snapshot has been received at all.
    pub loaded: bool,
    pub vms_targets: BTreeMap<String, VmsTarget>,
    pub cameras: BTreeMap<String, Camera>,
    /// The stored global defaults (only the fields an operator set).
    pub analytic_defaults: AnalyticSettings,
    /// Per-camera overrides (only the overridden fields).
    pub analytic_overrides: BTreeMap<String, AnalyticSettings>,
}

impl ConfigState {
    /// The analytic settings in force for `camera_id`: built-in defaults,
    /// then the stored defaults, then the camera's override. Every field is set.
    pub fn effective_analytic(&self, camera_id: &str) -> AnalyticSettings {
        let defaults = AnalyticSettings::builtin_defaults().merged_with(&self.analytic_defaults);
        match self.analytic_overrides.get(camera_id) {
            Some(camera) => defaults.merged_with(camera),
            None => defaults,
        }
    }

    /// Applies one message of the `Watch` stream.
    pub fn apply(&mut self, change: watch_response::Change) {
        match change {
            watch_response::Change::Snapshot(snapshot) => {
                *self = ConfigState {
                    loaded: true,
                    ..ConfigState::default()
                };
                for item in snapshot.items {
                    self.upsert(item);
                }
            }
            watch_response::Change::Upserted(item) => self.upsert(item),
            watch_response::Change::Deleted(key) => match key.kind() {
                ConfigKind::VmsTarget => {
                    self.vms_targets.remove(&key.id);
                }
                ConfigKind::Camera => {
                    self.cameras.remove(&key.id);
                }
                ConfigKind::Analytic if key.id.is_empty() => {
                    self.analytic_defaults = AnalyticSettings::default();
                }
                ConfigKind::Analytic => {
                    self.analytic_overrides.remove(&key.id);
                }
                ConfigKind::Unspecified => {}
            },
        }
    }

    fn upsert(&mut self, item: ConfigItem) {
        match item.item {
            Some(config_item::Item::VmsTarget(target)) => {
                self.vms_targets.insert(target.name.clone(), target);
            }
            Some(config_item::Item::Camera(camera)) => {
                self.cameras.insert(camera.id.clone(), camera);
            }
            Some(config_item::Item::Analytic(entry)) => {
                let settings = entry.settings.unwrap_or_default();
                if entry.camera_id.is_empty() {
                    self.analytic_defaults = settings;
                } else {
                    self.analytic_overrides.insert(entry.camera_id, settings);
                }
            }
            // A kind this build does not know yet (newer config service).
            None => {}
        }
    }
}

/// Follows the config service and always holds the latest [`ConfigState`].
#[derive(Debug, Clone)]
pub struct ConfigWatch {
    state: watch::Receiver<Arc<ConfigState>>,
}

impl ConfigWatch {
    /// Starts following the config service at `config_url` (for example
    /// `http://anpr-config:50051`) until `shutdown`.
    pub fn spawn(
        config_url: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(config_url.to_string())
            .map_err(|err| {
                tracing::error!(url = %config_url, error = %err, "invalid config service URL");
                err
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_keepalive(Some(Duration::from_secs(30)));
        let client = ConfigClient::new(endpoint.connect_lazy());
        let (sender, state) = watch::channel(Arc::new(ConfigState::default()));
        tokio::spawn(follow(client, sender, shutdown));
        Ok(ConfigWatch { state })
    }

    /// A watch fed by hand instead of by the config service: tests drive a
    /// service's reaction to configuration changes through the sender.
    pub fn manual(initial: ConfigState) -> (watch::Sender<Arc<ConfigState>>, Self) {
        let (sender, state) = watch::channel(Arc::new(initial));
        (sender, ConfigWatch { state })
    }

    /// The latest state (empty and not `loaded` before the first snapshot).
    pub fn current(&self) -> Arc<ConfigState> {
        self.state.borrow().clone()
    }

    /// Waits until the first snapshot has arrived and returns it. Returns
    /// `None` if the follower stopped (shutdown) before that.
    pub async fn loaded(&mut self) -> Option<Arc<ConfigState>> {
        let state = self.state.wait_for(|state| state.loaded).await.ok()?;
        Some(state.clone())
    }

    /// Waits for the next change and returns the new state; `None` once the
    /// follower has stopped.
    pub async fn changed(&mut self) -> Option<Arc<ConfigState>> {
        self.state.changed().await.ok()?;
        Some(self.state.borrow_and_update().clone())
    }
}

async fn follow(
    mut client: ConfigClient<Channel>,
    sender: watch::Sender<Arc<ConfigState>>,
    shutdown: CancellationToken,
) {
    let mut delay = RETRY_FIRST;
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = follow_once(&mut client, &sender, &mut delay) => outcome,
        };
        match outcome {
            Ok(()) => tracing::warn!("config watch stream ended; re-opening"),
            Err(status) => tracing::warn!(
                code = ?status.code(),
                message = %status.message(),
                retry_in_ms = delay.as_millis() as u64,
                "config watch stream failed; re-opening"
            ),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(RETRY_MAX);
    }
}

/// Runs one `Watch` stream to its end. Resets `delay` once the stream has
/// delivered its snapshot, so a long-lived stream that breaks is re-opened fast.
async fn follow_once(
    client: &mut ConfigClient<Channel>,
    sender: &watch::Sender<Arc<ConfigState>>,
    delay: &mut Duration,
) -> Result<(), tonic::Status> {
    let mut stream = client.watch(WatchRequest {}).await?.into_inner();
    while let Some(message) = stream.message().await? {
        let Some(change) = message.change else {
            continue;
        };
        if matches!(change, watch_response::Change::Snapshot(_)) {
            *delay = RETRY_FIRST;
            tracing::info!("config snapshot received");
        }
        sender.send_modify(|state| Arc::make_mut(state).apply(change));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{AnalyticOverride, ConfigKey, PlateFormats, Snapshot};

    fn analytic(camera_id: &str, settings: AnalyticSettings) -> ConfigItem {
        ConfigItem {
            item: Some(config_item::Item::Analytic(AnalyticOverride {
                camera_id: camera_id.into(),
                settings: Some(settings),
                revision: 1,
            })),
        }
    }

    #[test]
    fn snapshot_replaces_and_changes_apply() {
        let mut state = ConfigState::default();
        state.cameras.insert("stale".into(), Camera::default());
        state.apply(watch_response::Change::Snapshot(Snapshot {
            items: vec![
                ConfigItem {
                    item: Some(config_item::Item::Camera(Camera {
                        id: "gate".into(),
                        ..Default::default()
                    })),
                },
                analytic(
                    "",
                    AnalyticSettings {
                        skip_first_reads: Some(4),
                        ..Default::default()
                    },
                ),
                analytic(
                    "gate",
                    AnalyticSettings {
                        min_confidence: Some(0.9),
                        plate_formats: Some(PlateFormats {
                            patterns: vec!["^[A-Z]{3}[0-9]{3}$".into()],
                        }),
                        ..Default::default()
                    },
                ),
            ],
        }));
        assert!(state.loaded);
        assert_eq!(state.cameras.keys().collect::<Vec<_>>(), ["gate"]);

        let gate = state.effective_analytic("gate");
        assert_eq!(gate.skip_first_reads, Some(4));
        assert_eq!(gate.min_confidence, Some(0.9));
        assert_eq!(gate.lost_timeout_ms, Some(5_000));
        assert_eq!(gate.plate_formats.unwrap().patterns.len(), 1);
        let other = state.effective_analytic("other");
        assert_eq!(other.min_confidence, Some(0.7));
        assert_eq!(other.skip_first_reads, Some(4));

        state.apply(watch_response::Change::Deleted(ConfigKey {
            kind: ConfigKind::Analytic as i32,
            id: String::new(),
            revision: 2,
        }));
        assert_eq!(state.effective_analytic("other").skip_first_reads, Some(2));
        state.apply(watch_response::Change::Deleted(ConfigKey {
            kind: ConfigKind::Camera as i32,
            id: "gate".into(),
            revision: 3,
        }));
        assert!(state.cameras.is_empty());
    }
}
