//! The whole delivery path from a test: a real nats-server, the config
//! service in-process (targets and cameras are created through its gRPC API,
//! so passwords land in the secrets bucket as in production), the VMS
//! simulator, and the bridge in-process.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use anpr_common::bus::NatsArgs;
use anpr_common::prost_types::Timestamp;
use anpr_common::proto::config_client::ConfigClient;
use anpr_common::proto::*;
use anpr_common::subjects;
use anpr_config::server::{self, RunningServer, ServerOptions};
use anpr_testkit::NatsServer;
use anpr_vms_bridge::nx::client::ClientOptions;
use anpr_vms_bridge::{BridgeOptions, DeliverySettings};
use anpr_vms_sim::{SimConfig, Simulator};
use async_nats::jetstream;
use prost::Message as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub const PASSWORD: &str = "Sim-Admin-pw-5521";

/// How long a condition may take before the test gives up. Generous: the
/// tests check what happens, never how fast.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Stack {
    pub nats: NatsServer,
    pub js: jetstream::Context,
    pub config: ConfigClient<Channel>,
    config_url: String,
    config_stop: CancellationToken,
    config_server: Option<RunningServer>,
    bridge_stop: CancellationToken,
    bridge: Option<JoinHandle<()>>,
    /// Port of the bridge's /healthz, /readyz and /metrics.
    pub http_port: u16,
}

/// Settings that make retries quick in tests.
pub fn test_settings() -> DeliverySettings {
    DeliverySettings {
        ack_wait: Duration::from_secs(30),
        progress_every: Duration::from_secs(5),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(500),
        status_every: Duration::from_millis(300),
        pull_expiry: Duration::from_secs(1),
        client: ClientOptions {
            request_timeout: Duration::from_secs(2),
            device_refresh: Duration::from_secs(30),
        },
    }
}

impl Stack {
    pub async fn start() -> Stack {
        // Logs go to the test's captured output (shown for failing tests).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "anpr_vms_bridge=info".into()),
            )
            .with_test_writer()
            .try_init();
        let nats = NatsServer::start();
        let config_stop = CancellationToken::new();
        let loopback = "127.0.0.1:0".parse().expect("socket address");
        let running = server::start(
            ServerOptions {
                grpc_listen: loopback,
                http_listen: loopback,
                nats: NatsArgs::plain(nats.url()),
            },
            config_stop.clone(),
        )
        .await
        .expect("config service starts");
        let config_url = format!("http://{}", running.grpc_addr);
        let config = ConfigClient::connect(config_url.clone())
            .await
            .expect("connecting to the config service");
        let client = async_nats::connect(nats.url()).await.expect("NATS");
        let js = jetstream::new(client);
        let mut stack = Stack {
            nats,
            js,
            config,
            config_url,
            config_stop,
            config_server: Some(running),
            bridge_stop: CancellationToken::new(),
            bridge: None,
            http_port: anpr_testkit::free_port(),
        };
        stack.start_bridge().await;
        stack
    }

    pub async fn start_bridge(&mut self) {
        let stop = CancellationToken::new();
        let options = BridgeOptions {
            nats: NatsArgs::plain(self.nats.url()),
            config_url: self.config_url.clone(),
            http_listen: format!("127.0.0.1:{}", self.http_port)
                .parse()
                .expect("socket address"),
            delivery: test_settings(),
        };
        let token = stop.clone();
        self.bridge = Some(tokio::spawn(async move {
            if let Err(err) = anpr_vms_bridge::run(options, token).await {
                panic!("bridge failed: {err}");
            }
        }));
        self.bridge_stop = stop;
    }

    /// The config service's gRPC URL.
    pub fn config_url(&self) -> &str {
        &self.config_url
    }

    /// Stops the in-process bridge for good (a test that runs the binary).
    pub async fn without_inprocess_bridge(&mut self) {
        self.stop_bridge().await;
    }

    /// Starts another bridge replica on the same NATS and config service;
    /// it runs until the returned token is cancelled.
    pub fn spawn_extra_bridge(&self) -> CancellationToken {
        let stop = CancellationToken::new();
        let options = BridgeOptions {
            nats: NatsArgs::plain(self.nats.url()),
            config_url: self.config_url.clone(),
            http_listen: "127.0.0.1:0".parse().expect("socket address"),
            delivery: test_settings(),
        };
        let token = stop.clone();
        tokio::spawn(async move {
            if let Err(err) = anpr_vms_bridge::run(options, token).await {
                panic!("second bridge failed: {err}");
            }
        });
        stop
    }

    /// Stops the bridge gracefully and waits until it has.
    pub async fn stop_bridge(&mut self) {
        self.bridge_stop.cancel();
        if let Some(task) = self.bridge.take() {
            task.await.expect("bridge task ends cleanly");
        }
    }

    pub async fn add_target(
        &mut self,
        name: &str,
        sim: &Simulator,
        events: EventSelection,
        customise: impl FnOnce(&mut VmsTarget),
    ) {
        let mut target = VmsTarget {
            name: name.into(),
            r#type: VmsType::NxGenericEvent as i32,
            host: "127.0.0.1".into(),
            port: Some(u32::from(sim.port())),
            login: "admin".into(),
            password: PASSWORD.into(),
            events: events as i32,
            ..Default::default()
        };
        customise(&mut target);
        self.config
            .create_vms_target(CreateVmsTargetRequest {
                target: Some(target),
            })
            .await
            .expect("creating the VMS target");
        self.wait_for_consumer(name, events).await;
    }

    pub async fn update_target(&mut self, name: &str, change: impl FnOnce(&mut VmsTarget)) {
        let mut target = self
            .config
            .get_vms_target(GetVmsTargetRequest { name: name.into() })
            .await
            .expect("reading the target")
            .into_inner();
        change(&mut target);
        target.status = None;
        self.config
            .update_vms_target(UpdateVmsTargetRequest {
                target: Some(target),
                expected_revision: None,
            })
            .await
            .expect("updating the target");
    }

    /// Waits until the bridge's consumer for `target` exists with the
    /// filter of `events`: only then are new events delivered to it.
    pub async fn wait_for_consumer(&self, target: &str, events: EventSelection) {
        let filter = anpr_vms_bridge::consumer::filter_subject(events);
        let name = anpr_vms_bridge::consumer::durable_name(target);
        let js = self.js.clone();
        wait_for(&format!("consumer {name} with filter {filter}"), || {
            let js = js.clone();
            let name = name.clone();
            async move {
                let Ok(stream) = js.get_stream(subjects::PLATE_STREAM).await else {
                    return false;
                };
                stream
                    .consumer_info(&name)
                    .await
                    .is_ok_and(|info| info.config.filter_subject == filter)
            }
        })
        .await;
    }

    pub async fn add_camera(
        &mut self,
        id: &str,
        name: &str,
        ip: &str,
        customise: impl FnOnce(&mut Camera),
    ) {
        let mut camera = Camera {
            id: id.into(),
            name: name.into(),
            rtsp_url: format!("rtsp://{ip}:554/stream1"),
            ip_address: ip.into(),
            ..Default::default()
        };
        customise(&mut camera);
        self.config
            .create_camera(CreateCameraRequest {
                camera: Some(camera),
            })
            .await
            .expect("creating the camera");
    }

    /// Publishes a plate event like the analytic does (with `Nats-Msg-Id`).
    pub async fn publish(
        &self,
        camera: &str,
        kind: PlateEventKind,
        plate: &str,
        seq: u32,
    ) -> PlateEvent {
        let event = PlateEvent {
            event_id: uuid_like(camera, kind, seq),
            kind: kind as i32,
            track_id: format!("track-{camera}-{seq}"),
            camera_id: camera.into(),
            plate_text: plate.into(),
            confidence: 0.93,
            event_time: Some(Timestamp {
                seconds: 1_795_946_401 + i64::from(seq),
                nanos: 0,
            }),
            ..Default::default()
        };
        self.publish_event(&event).await;
        event
    }

    pub async fn publish_event(&self, event: &PlateEvent) {
        let subject = subjects::plates(&event.camera_id, event.kind()).expect("a publishable kind");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.event_id.as_str());
        self.js
            .publish_with_headers(subject, headers, event.encode_to_vec().into())
            .await
            .expect("publishing")
            .await
            .expect("stored in ANPR_PLATES");
    }

    /// The target's status as the bridge last wrote it.
    pub async fn status(&self, target: &str) -> Option<VmsTargetStatus> {
        let kv = self
            .js
            .get_key_value(subjects::VMS_STATUS_BUCKET)
            .await
            .ok()?;
        let entry = kv.get(target).await.ok()??;
        VmsTargetStatus::decode(entry).ok()
    }

    /// Waits until the target's status satisfies `check`; returns it.
    pub async fn wait_for_status(
        &self,
        target: &str,
        what: &str,
        check: impl Fn(&VmsTargetStatus) -> bool,
    ) -> VmsTargetStatus {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let status = self.status(target).await;
            if let Some(status) = &status {
                if check(status) {
                    return status.clone();
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "status of {target} never showed {what}; last: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every dead letter stored so far.
    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        let Ok(mut stream) = self.js.get_stream(subjects::DEAD_LETTER_STREAM).await else {
            return Vec::new();
        };
        let Ok(info) = stream.info().await else {
            return Vec::new();
        };
        let (first, last, count) = (
            info.state.first_sequence,
            info.state.last_sequence,
            info.state.messages,
        );
        let mut letters = Vec::new();
        if count == 0 {
            return letters;
        }
        for seq in first..=last {
            if let Ok(raw) = stream.get_raw_message(seq).await {
                if let Ok(letter) = DeadLetter::decode(raw.payload) {
                    letters.push(letter);
                }
            }
        }
        letters
    }
}

impl Stack {
    /// The value of the metric line starting with `prefix` on /metrics.
    pub async fn metric(&self, prefix: &str) -> Option<f64> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.http_port))
            .await
            .ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await
            .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        response
            .lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
    }

    /// Deletes a target through the config API.
    pub async fn delete_target(&mut self, name: &str) {
        self.config
            .delete_vms_target(DeleteVmsTargetRequest {
                name: name.into(),
                expected_revision: None,
            })
            .await
            .expect("deleting the target");
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.bridge_stop.cancel();
        self.config_stop.cancel();
    }
}

/// A stable UUID-shaped id per (camera, kind, seq).
pub fn uuid_like(camera: &str, kind: PlateEventKind, seq: u32) -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in camera.bytes().chain([kind as u8]) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3);
    }
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (hash >> 32) as u32,
        (hash >> 16) as u16,
        (hash & 0xfff) as u16,
        kind as u16,
        u64::from(seq)
    )
}

/// Polls `condition` until it holds, failing the test after [`PATIENCE`].
pub async fn wait_for<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the simulator recorded at least `count` events; returns them.
pub async fn wait_for_events(sim: &Simulator, count: usize) -> Vec<anpr_vms_sim::RecordedEvent> {
    wait_for(&format!("{count} events at the simulator"), || async {
        sim.events().len() >= count
    })
    .await;
    sim.events()
}

/// A simulator on a free loopback port whose admin has [`PASSWORD`].
pub async fn simulator(customise: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut config = SimConfig {
        users: vec![anpr_vms_sim::SimUser::new("admin", PASSWORD)],
        ..SimConfig::default()
    };
    customise(&mut config);
    Simulator::start("127.0.0.1:0".parse().expect("socket address"), config)
        .await
        .expect("simulator starts")
}
