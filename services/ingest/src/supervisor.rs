//! Starts, restarts and stops one worker per enabled camera this replica
//! holds the lease of, as the configuration and the leases change, without a
//! restart of the process.
//!
//! A worker is restarted when anything it depends on changes (see
//! [`CameraSpec`]). Deleting or disabling a camera stops its worker and
//! removes its status and metrics; a camera whose lease moved to another
//! replica stops here and keeps its status, which the new holder writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anpr_common::config_watch::{ConfigState, ConfigWatch};
use futures::StreamExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::worker::{self, CameraSpec, Shared};

struct Running {
    spec: CameraSpec,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The cameras that should be read by some replica: the enabled ones.
pub fn enabled_cameras(state: &ConfigState) -> BTreeSet<String> {
    state
        .cameras
        .values()
        .filter(|camera| camera.enabled.unwrap_or(true))
        .map(|camera| camera.id.clone())
        .collect()
}

/// The cameras this replica should run, by id: enabled and leased here.
pub fn wanted_cameras(
    state: &ConfigState,
    owned: &BTreeSet<String>,
) -> BTreeMap<String, CameraSpec> {
    state
        .cameras
        .values()
        .filter(|camera| camera.enabled.unwrap_or(true))
        .filter(|camera| owned.contains(&camera.id))
        .map(|camera| (camera.id.clone(), CameraSpec::from_camera(camera)))
        .collect()
}

/// Follows the configuration and the leases until `shutdown`, then stops
/// every worker.
pub async fn supervise(
    shared: Arc<Shared>,
    mut config: ConfigWatch,
    mut owned: watch::Receiver<BTreeSet<String>>,
    shutdown: CancellationToken,
) {
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    let mut state = tokio::select! {
        _ = shutdown.cancelled() => return,
        state = config.loaded() => match state { Some(state) => state, None => return },
    };
    remove_stale_statuses(&shared, &state).await;
    loop {
        let leased = owned.borrow_and_update().clone();
        reconcile(&shared, &config, &leased, &state, &mut running, &shutdown);
        shared
            .metrics
            .workers
            .set(i64::try_from(running.len()).unwrap_or(i64::MAX));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = config.changed() => match changed { Some(next) => state = next, None => break },
            changed = owned.changed() => if changed.is_err() { break },
        }
    }
    for (_, worker) in std::mem::take(&mut running) {
        worker.stop.cancel();
        let _ = worker.task.await;
    }
    shared.metrics.workers.set(0);
}

/// Statuses left by cameras deleted or disabled while no ingest ran.
async fn remove_stale_statuses(shared: &Shared, state: &ConfigState) {
    let enabled = enabled_cameras(state);
    let mut keys = match shared.status_kv.keys().await {
        Ok(keys) => keys,
        Err(error) => {
            tracing::debug!(%error, "listing camera statuses failed");
            return;
        }
    };
    let mut stale = Vec::new();
    while let Some(key) = keys.next().await {
        match key {
            Ok(key) if !enabled.contains(&key) => stale.push(key),
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "listing camera statuses failed");
                return;
            }
        }
    }
    for key in stale {
        if let Err(error) = shared.status_kv.delete(&key).await {
            tracing::debug!(camera = %key, %error, "removing a stale camera status failed");
        }
    }
}

fn reconcile(
    shared: &Arc<Shared>,
    config: &ConfigWatch,
    owned: &BTreeSet<String>,
    state: &ConfigState,
    running: &mut BTreeMap<String, Running>,
    shutdown: &CancellationToken,
) {
    let wanted = wanted_cameras(state, owned);
    let stale: Vec<String> = running
        .iter()
        .filter(|(id, worker)| wanted.get(*id) != Some(&worker.spec))
        .map(|(id, _)| id.clone())
        .collect();
    for id in stale {
        let Some(worker) = running.remove(&id) else {
            continue;
        };
        let removed = !wanted.contains_key(&id);
        tracing::info!(camera = %id, removed, "stopping camera worker");
        worker.stop.cancel();
        if removed {
            let shared = shared.clone();
            let config = config.clone();
            // In the background: a worker finishing its last frames must not
            // hold up the other cameras.
            tokio::spawn(async move {
                let _ = worker.task.await;
                shared.metrics.camera(&id).remove();
                // The status goes with the camera; a camera that moved to
                // another replica keeps it (the new holder writes it).
                if !enabled_cameras(&config.current()).contains(&id) {
                    if let Err(error) = shared.status_kv.delete(&id).await {
                        tracing::debug!(camera = %id, %error, "removing the status of a removed camera failed");
                    }
                }
            });
        } else if let Some(spec) = wanted.get(&id).cloned() {
            // A restart: the new worker starts once the old one let go of
            // the camera (one RTSP session at a time, one status writer).
            let shared = shared.clone();
            let stop = shutdown.child_token();
            let previous = worker.task;
            let task = {
                let (stop, spec) = (stop.clone(), spec.clone());
                tokio::spawn(async move {
                    let _ = previous.await;
                    if !stop.is_cancelled() {
                        worker::run(shared, spec, stop).await;
                    }
                })
            };
            tracing::info!(camera = %id, "restarting camera worker with new settings");
            running.insert(id.clone(), Running { spec, stop, task });
        }
    }
    for (id, spec) in wanted {
        if running.contains_key(&id) {
            continue;
        }
        tracing::info!(camera = %id, "starting camera worker");
        let stop = shutdown.child_token();
        let task = tokio::spawn(worker::run(shared.clone(), spec.clone(), stop.clone()));
        running.insert(id, Running { spec, stop, task });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anpr_common::proto::Camera;

    #[test]
    fn only_enabled_cameras_leased_here_run() {
        let mut state = ConfigState::default();
        for (id, enabled) in [("a", None), ("b", Some(false)), ("c", Some(true))] {
            state.cameras.insert(
                id.into(),
                Camera {
                    id: id.into(),
                    enabled,
                    ..Default::default()
                },
            );
        }
        assert_eq!(
            enabled_cameras(&state).into_iter().collect::<Vec<_>>(),
            ["a", "c"]
        );
        let leased: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let wanted = wanted_cameras(&state, &leased);
        assert_eq!(wanted.keys().collect::<Vec<_>>(), ["a"]);
    }
}
