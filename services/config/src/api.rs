//! The gRPC API: requests are validated, stored, and errors mapped to status
//! codes here, at the edge.

use std::pin::Pin;

use anpr_common::proto::config_server::Config;
use anpr_common::proto::*;
use futures::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::metrics::{Metrics, RequestLabels};
use crate::store::{ConfigStore, StoreError};
use crate::validate::{self, Invalid, Mode};

/// Maps a storage error to the status an API client gets.
impl From<StoreError> for Status {
    fn from(err: StoreError) -> Self {
        let message = err.to_string();
        match err {
            StoreError::NotFound { .. } => Status::not_found(message),
            StoreError::AlreadyExists { .. } => Status::already_exists(message),
            StoreError::Stale { .. } => Status::failed_precondition(message),
            StoreError::Invalid(_) => Status::invalid_argument(message),
            StoreError::Corrupt { .. } => Status::data_loss(message),
            StoreError::Backend { .. } => Status::unavailable(message),
        }
    }
}

fn invalid(err: Invalid) -> Status {
    Status::invalid_argument(format!("invalid request: {err}"))
}

fn missing(field: &str) -> Status {
    Status::invalid_argument(format!("invalid request: {field}: is required"))
}

pub struct ConfigApi {
    store: ConfigStore,
    metrics: Metrics,
    shutdown: CancellationToken,
}

impl ConfigApi {
    pub fn new(store: ConfigStore, metrics: Metrics, shutdown: CancellationToken) -> Self {
        ConfigApi {
            store,
            metrics,
            shutdown,
        }
    }

    /// Counts the call and logs refusals, then passes the result on.
    fn finish<T>(
        &self,
        method: &'static str,
        result: Result<T, Status>,
    ) -> Result<Response<T>, Status> {
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        };
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                method,
                code: format!("{code:?}"),
            })
            .inc();
        match result {
            Ok(value) => Ok(Response::new(value)),
            Err(status) => {
                if matches!(
                    code,
                    tonic::Code::Unavailable | tonic::Code::DataLoss | tonic::Code::Internal
                ) {
                    tracing::error!(method, code = ?code, message = status.message(), "config request failed");
                } else {
                    tracing::info!(method, code = ?code, message = status.message(), "config request refused");
                }
                Err(status)
            }
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Config for ConfigApi {
    async fn create_vms_target(
        &self,
        request: Request<CreateVmsTargetRequest>,
    ) -> Result<Response<VmsTarget>, Status> {
        let result = async {
            let target = request
                .into_inner()
                .target
                .ok_or_else(|| missing("target"))?;
            let normalized = validate::vms_target(target, Mode::Create).map_err(invalid)?;
            let stored = self
                .store
                .create(normalized.record, normalized.password)
                .await?;
            tracing::info!(name = %stored.name, revision = stored.revision, "VMS target created");
            Ok(stored)
        }
        .await;
        self.finish("CreateVmsTarget", result)
    }

    async fn get_vms_target(
        &self,
        request: Request<GetVmsTargetRequest>,
    ) -> Result<Response<VmsTarget>, Status> {
        let result = match self
            .store
            .get::<VmsTarget>(&request.into_inner().name)
            .await
        {
            Ok(mut target) => {
                target.status = self.store.vms_status(&target.name).await;
                Ok(target)
            }
            Err(err) => Err(Status::from(err)),
        };
        self.finish("GetVmsTarget", result)
    }

    async fn list_vms_targets(
        &self,
        _request: Request<ListVmsTargetsRequest>,
    ) -> Result<Response<ListVmsTargetsResponse>, Status> {
        let result = match self.store.list::<VmsTarget>().await {
            Ok(mut targets) => {
                for target in &mut targets {
                    target.status = self.store.vms_status(&target.name).await;
                }
                Ok(ListVmsTargetsResponse { targets })
            }
            Err(err) => Err(Status::from(err)),
        };
        self.finish("ListVmsTargets", result)
    }

    async fn update_vms_target(
        &self,
        request: Request<UpdateVmsTargetRequest>,
    ) -> Result<Response<VmsTarget>, Status> {
        let result = async {
            let request = request.into_inner();
            let target = request.target.ok_or_else(|| missing("target"))?;
            let normalized = validate::vms_target(target, Mode::Update).map_err(invalid)?;
            let stored = self
                .store
                .update(
                    normalized.record,
                    normalized.password,
                    request.expected_revision,
                )
                .await?;
            tracing::info!(name = %stored.name, revision = stored.revision, "VMS target updated");
            Ok(stored)
        }
        .await;
        self.finish("UpdateVmsTarget", result)
    }

    async fn delete_vms_target(
        &self,
        request: Request<DeleteVmsTargetRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let request = request.into_inner();
        let result = self
            .store
            .delete::<VmsTarget>(&request.name, request.expected_revision)
            .await
            .map(|()| {
                tracing::info!(name = %request.name, "VMS target deleted");
                DeleteResponse {}
            })
            .map_err(Status::from);
        self.finish("DeleteVmsTarget", result)
    }

    async fn create_camera(
        &self,
        request: Request<CreateCameraRequest>,
    ) -> Result<Response<Camera>, Status> {
        let result = async {
            let camera = request
                .into_inner()
                .camera
                .ok_or_else(|| missing("camera"))?;
            let normalized = validate::camera(camera, Mode::Create).map_err(invalid)?;
            let stored = self
                .store
                .create(normalized.record, normalized.password)
                .await?;
            tracing::info!(id = %stored.id, revision = stored.revision, "camera created");
            Ok(stored)
        }
        .await;
        self.finish("CreateCamera", result)
    }

    async fn get_camera(
        &self,
        request: Request<GetCameraRequest>,
    ) -> Result<Response<Camera>, Status> {
        let result = match self.store.get::<Camera>(&request.into_inner().id).await {
            Ok(mut camera) => {
                camera.status = self.store.camera_status(&camera.id).await;
                Ok(camera)
            }
            Err(err) => Err(Status::from(err)),
        };
        self.finish("GetCamera", result)
    }

    async fn list_cameras(
        &self,
        _request: Request<ListCamerasRequest>,
    ) -> Result<Response<ListCamerasResponse>, Status> {
        let result = match self.store.list::<Camera>().await {
            Ok(mut cameras) => {
                for camera in &mut cameras {
                    camera.status = self.store.camera_status(&camera.id).await;
                }
                Ok(ListCamerasResponse { cameras })
            }
            Err(err) => Err(Status::from(err)),
        };
        self.finish("ListCameras", result)
    }

    async fn update_camera(
        &self,
        request: Request<UpdateCameraRequest>,
    ) -> Result<Response<Camera>, Status> {
        let result = async {
            let request = request.into_inner();
            let camera = request.camera.ok_or_else(|| missing("camera"))?;
            let normalized = validate::camera(camera, Mode::Update).map_err(invalid)?;
            let stored = self
                .store
                .update(
                    normalized.record,
                    normalized.password,
                    request.expected_revision,
                )
                .await?;
            tracing::info!(id = %stored.id, revision = stored.revision, "camera updated");
            Ok(stored)
        }
        .await;
        self.finish("UpdateCamera", result)
    }

    async fn delete_camera(
        &self,
        request: Request<DeleteCameraRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let request = request.into_inner();
        let result = self
            .store
            .delete_camera(&request.id, request.expected_revision)
            .await
            .map(|()| {
                tracing::info!(id = %request.id, "camera deleted");
                DeleteResponse {}
            })
            .map_err(Status::from);
        self.finish("DeleteCamera", result)
    }

    async fn get_analytic_settings(
        &self,
        request: Request<GetAnalyticSettingsRequest>,
    ) -> Result<Response<AnalyticSettingsView>, Status> {
        let result = self
            .store
            .analytic_view(&request.into_inner().camera_id)
            .await
            .map_err(Status::from);
        self.finish("GetAnalyticSettings", result)
    }

    async fn set_analytic_settings(
        &self,
        request: Request<SetAnalyticSettingsRequest>,
    ) -> Result<Response<AnalyticSettingsView>, Status> {
        let request = request.into_inner();
        let result = async {
            let settings = request.settings.ok_or_else(|| missing("settings"))?;
            let view = self
                .store
                .set_analytic(&request.camera_id, settings, request.expected_revision)
                .await?;
            tracing::info!(camera_id = %request.camera_id, revision = view.revision, "analytic settings set");
            Ok(view)
        }
        .await;
        self.finish("SetAnalyticSettings", result)
    }

    async fn reset_analytic_settings(
        &self,
        request: Request<ResetAnalyticSettingsRequest>,
    ) -> Result<Response<AnalyticSettingsView>, Status> {
        let request = request.into_inner();
        let result = self
            .store
            .reset_analytic(&request.camera_id, request.expected_revision)
            .await
            .map_err(Status::from);
        if result.is_ok() {
            tracing::info!(camera_id = %request.camera_id, "analytic settings reset");
        }
        self.finish("ResetAnalyticSettings", result)
    }

    async fn list_analytic_overrides(
        &self,
        _request: Request<ListAnalyticOverridesRequest>,
    ) -> Result<Response<ListAnalyticOverridesResponse>, Status> {
        let result = self
            .store
            .analytic_overrides()
            .await
            .map(|overrides| ListAnalyticOverridesResponse { overrides })
            .map_err(Status::from);
        self.finish("ListAnalyticOverrides", result)
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let result = self.store.watch().await.map_err(Status::from);
        let mut watch = match result {
            Ok(watch) => watch,
            Err(status) => return self.finish("Watch", Err(status)),
        };
        // A small buffer: a client that stops reading holds up only its own
        // stream, and the KV feed waits for it rather than growing memory.
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let metrics = self.metrics.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            metrics.watch_streams.inc();
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tx.closed() => break,
                    next = watch.next() => next,
                };
                let message = match next {
                    None => break,
                    Some(Ok(message)) => Ok(message),
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "config watch feed failed");
                        Err(Status::from(err))
                    }
                };
                let failed = message.is_err();
                if tx.send(message).await.is_err() || failed {
                    break;
                }
                metrics.watch_changes.inc();
            }
            metrics.watch_streams.dec();
        });
        self.finish(
            "Watch",
            Ok(Box::pin(ReceiverStream::new(rx)) as WatchStream),
        )
    }
}
