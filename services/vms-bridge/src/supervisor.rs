//! Starts, restarts and stops one worker per enabled VMS target as the
//! configuration changes, without a restart of the service.
//!
//! A target is restarted when any of its settings or its revision changes
//! (the revision moves when the password is replaced, which is then re-read).
//! Removing or disabling a target also deletes its durable consumer and its
//! status: re-enabling it later starts with new events, like adding it.

use std::collections::BTreeMap;
use std::sync::Arc;

use anpr_common::config_watch::{ConfigState, ConfigWatch};
use anpr_common::proto::{VmsTarget, VmsType};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::consumer;
use crate::delivery::{run_target, Shared};

struct Running {
    target: VmsTarget,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The targets that should run, by name, without their reported status
/// (an output field, which must not restart anything).
pub fn wanted_targets(state: &ConfigState) -> BTreeMap<String, VmsTarget> {
    state
        .vms_targets
        .values()
        .filter(|target| target.enabled.unwrap_or(true))
        .filter(|target| target.r#type() == VmsType::NxGenericEvent)
        .map(|target| {
            let mut target = target.clone();
            target.status = None;
            (target.name.clone(), target)
        })
        .collect()
}

/// Follows the configuration until `shutdown`, then stops every worker.
pub async fn supervise(shared: Arc<Shared>, mut config: ConfigWatch, shutdown: CancellationToken) {
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    let mut state = tokio::select! {
        _ = shutdown.cancelled() => return,
        state = config.loaded() => match state { Some(state) => state, None => return },
    };
    loop {
        reconcile(&shared, &state, &mut running, &shutdown);
        state = tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = config.changed() => match changed { Some(state) => state, None => break },
        };
    }
    for (_, worker) in std::mem::take(&mut running) {
        worker.stop.cancel();
        let _ = worker.task.await;
    }
}

fn reconcile(
    shared: &Arc<Shared>,
    state: &ConfigState,
    running: &mut BTreeMap<String, Running>,
    shutdown: &CancellationToken,
) {
    let wanted = wanted_targets(state);
    let stale: Vec<String> = running
        .iter()
        .filter(|(name, worker)| wanted.get(*name) != Some(&worker.target))
        .map(|(name, _)| name.clone())
        .collect();
    for name in stale {
        let Some(worker) = running.remove(&name) else {
            continue;
        };
        let removed = !wanted.contains_key(&name);
        tracing::info!(target_name = %name, removed, "stopping VMS target worker");
        worker.stop.cancel();
        let shared = shared.clone();
        // Stopped in the background: a worker finishes its in-flight post
        // first, and that must not hold up the other targets.
        tokio::spawn(async move {
            let _ = worker.task.await;
            let still_unwanted = !wanted_targets(&shared.config.current()).contains_key(&name);
            if removed && still_unwanted {
                if let Err(err) = consumer::delete(&shared.plates, &name).await {
                    tracing::warn!(target_name = %name, error = %err, "deleting the consumer of a removed target failed");
                }
                if let Err(err) = shared.status_kv.delete(&name).await {
                    tracing::debug!(target_name = %name, error = %err, "deleting the status of a removed target failed");
                }
            }
        });
    }
    for (name, target) in wanted {
        if running.contains_key(&name) {
            continue;
        }
        tracing::info!(target_name = %name, "starting VMS target worker");
        let stop = shutdown.child_token();
        let task = tokio::spawn(run_target(shared.clone(), target.clone(), stop.clone()));
        running.insert(name, Running { target, stop, task });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anpr_common::proto::VmsTargetStatus;

    #[test]
    fn only_enabled_nx_targets_run_and_status_is_ignored() {
        let mut state = ConfigState::default();
        let target = |name: &str, enabled: Option<bool>| VmsTarget {
            name: name.into(),
            r#type: VmsType::NxGenericEvent as i32,
            enabled,
            status: Some(VmsTargetStatus {
                delivered: 3,
                ..Default::default()
            }),
            ..Default::default()
        };
        state.vms_targets.insert("a".into(), target("a", None));
        state
            .vms_targets
            .insert("b".into(), target("b", Some(false)));
        state
            .vms_targets
            .insert("c".into(), target("c", Some(true)));
        state.vms_targets.insert(
            "d".into(),
            VmsTarget {
                r#type: VmsType::Unspecified as i32,
                ..target("d", None)
            },
        );
        let wanted = wanted_targets(&state);
        assert_eq!(wanted.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert!(wanted.values().all(|t| t.status.is_none()));
    }
}
