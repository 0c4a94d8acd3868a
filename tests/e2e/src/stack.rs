//! One running pipeline: nats-server (spawned), anpr-config, anpr-analytic
//! and anpr-vms-bridge (in this process, from their libraries, each with its
//! own NATS connection as in production) and any number of VMS simulators.

use std::net::SocketAddr;
use std::time::Duration;

use anpr_common::bus::NatsArgs;
use anpr_common::proto::config_client::ConfigClient;
use anpr_common::proto::{
    AnalyticSettings, Camera, CreateCameraRequest, CreateVmsTargetRequest, EventSelection,
    FrameReads, SetAnalyticSettingsRequest, VmsTarget, VmsType,
};
use anpr_common::subjects;
use anpr_testkit::NatsServer;
use anyhow::Context;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// Login and password of the simulators' default user.
pub const SIM_LOGIN: &str = "admin";
pub const SIM_PASSWORD: &str = "admin";

fn loopback_any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A running pipeline; everything stops when it is dropped.
pub struct Stack {
    pub nats: NatsServer,
    pub config_url: String,
    pub analytic_http: SocketAddr,
    pub client: async_nats::Client,
    shutdown: CancellationToken,
}

impl Stack {
    /// Starts NATS, the config service, the analytic and the bridge.
    pub async fn start() -> anyhow::Result<Stack> {
        let nats = NatsServer::start();
        let shutdown = CancellationToken::new();
        let nats_args = NatsArgs::plain(nats.url());

        let config = anpr_config::server::start(
            anpr_config::server::ServerOptions {
                grpc_listen: loopback_any_port(),
                http_listen: loopback_any_port(),
                nats: nats_args.clone(),
            },
            shutdown.clone(),
        )
        .await
        .context("starting anpr-config")?;
        let config_url = format!("http://{}", config.grpc_addr);

        let mut analytic = anpr_analytic::service::Options::new(nats_args.clone(), &config_url);
        analytic.http_listen = loopback_any_port();
        let analytic = anpr_analytic::service::start(analytic, shutdown.clone())
            .await
            .context("starting anpr-analytic")?;
        let analytic_http = analytic.http_addr;

        let bridge = anpr_vms_bridge::BridgeOptions {
            nats: nats_args.clone(),
            config_url: config_url.clone(),
            http_listen: loopback_any_port(),
            delivery: anpr_vms_bridge::DeliverySettings::default(),
        };
        let bridge_shutdown = shutdown.clone();
        tokio::spawn(async move {
            if let Err(err) = anpr_vms_bridge::run(bridge, bridge_shutdown).await {
                tracing::error!(error = %err, "anpr-vms-bridge stopped");
            }
        });

        let client = async_nats::connect(nats.url())
            .await
            .context("connecting the test client to NATS")?;
        let stack = Stack {
            nats,
            config_url,
            analytic_http,
            client,
            shutdown,
        };
        stack.wait_ready(analytic_http).await?;
        Ok(stack)
    }

    async fn wait_ready(&self, http: SocketAddr) -> anyhow::Result<()> {
        for _ in 0..300 {
            if readyz(http).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the analytic did not become ready at {http}")
    }

    /// A gRPC client of the config service.
    pub async fn config(&self) -> anyhow::Result<ConfigClient<Channel>> {
        ConfigClient::connect(self.config_url.clone())
            .await
            .context("connecting to anpr-config")
    }

    /// Registers a VMS target on a simulator listening at `port`.
    pub async fn add_target(
        &self,
        name: &str,
        port: u16,
        events: EventSelection,
    ) -> anyhow::Result<VmsTarget> {
        let mut target = VmsTarget {
            name: name.into(),
            host: "127.0.0.1".into(),
            port: Some(u32::from(port)),
            login: SIM_LOGIN.into(),
            password: SIM_PASSWORD.into(),
            ..Default::default()
        };
        target.set_type(VmsType::NxGenericEvent);
        target.set_events(events);
        Ok(self
            .config()
            .await?
            .create_vms_target(CreateVmsTargetRequest {
                target: Some(target),
            })
            .await
            .context("creating the VMS target")?
            .into_inner())
    }

    /// Waits until the bridge has its durable consumer for `target`: new
    /// consumers start with the events published after them.
    pub async fn wait_for_delivery_to(&self, target: &str) -> anyhow::Result<()> {
        let js = async_nats::jetstream::new(self.client.clone());
        let name = anpr_vms_bridge::consumer::durable_name(target);
        for _ in 0..600 {
            if let Ok(stream) = js.get_stream(subjects::PLATE_STREAM).await {
                if stream.consumer_info(&name).await.is_ok() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the bridge made no consumer {name} for target {target}")
    }

    /// Registers a camera known to the VMS by `ip`.
    pub async fn add_camera(&self, id: &str, name: &str, ip: &str) -> anyhow::Result<Camera> {
        let camera = self
            .config()
            .await?
            .create_camera(CreateCameraRequest {
                camera: Some(Camera {
                    id: id.into(),
                    name: name.into(),
                    rtsp_url: format!("rtsp://{ip}/stream1"),
                    ..Default::default()
                }),
            })
            .await
            .context("creating the camera")?
            .into_inner();
        self.wait_for_analytic_lease(id).await?;
        Ok(camera)
    }

    /// Waits until an analytic replica holds the camera's lease: reads
    /// published before that are not the analytic's to handle.
    pub async fn wait_for_analytic_lease(&self, camera: &str) -> anyhow::Result<()> {
        let js = async_nats::jetstream::new(self.client.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Ok(kv) = js.get_key_value(subjects::ANALYTIC_LEASE_BUCKET).await {
                if let Ok(Some(_)) = kv.get(format!("camera.{camera}")).await {
                    return Ok(());
                }
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("no analytic replica took camera {camera} within 20 s");
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Sets the global analytic defaults.
    pub async fn set_analytic(&self, settings: AnalyticSettings) -> anyhow::Result<()> {
        self.config()
            .await?
            .set_analytic_settings(SetAnalyticSettingsRequest {
                camera_id: String::new(),
                settings: Some(settings),
                expected_revision: None,
            })
            .await
            .context("setting analytic defaults")?;
        Ok(())
    }

    /// Publishes one frame's reads as the recognizer would.
    pub async fn publish_reads(&self, reads: &FrameReads) -> anyhow::Result<()> {
        let camera = reads
            .frame
            .as_ref()
            .map(|frame| frame.camera_id.as_str())
            .unwrap_or_default();
        self.client
            .publish(subjects::reads(camera), reads.encode_to_vec().into())
            .await
            .context("publishing reads")?;
        Ok(())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Whether `GET /readyz` at `addr` answers 200.
pub async fn readyz(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    if stream.read_to_end(&mut answer).await.is_err() {
        return false;
    }
    answer.starts_with(b"HTTP/1.1 200")
}
