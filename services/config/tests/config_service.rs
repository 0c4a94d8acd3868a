//! The config service as operators and services meet it: the real
//! `anpr-config` binary on a real nats-server, driven over real gRPC/HTTP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anpr_common::proto::config_client::ConfigClient;
use anpr_common::proto::*;
use anpr_testkit::{free_port, NatsServer, ServiceProcess};
use tonic::transport::Channel;
use tonic::Code;

const VMS_PASSWORD: &str = "Vms-Pa55word-7f3a";
const CAMERA_PASSWORD: &str = "Cam-Secret-91bc";

/// A nats-server and an anpr-config process on free ports.
struct Harness {
    nats: NatsServer,
    config: ServiceProcess,
    grpc_port: u16,
    http_port: u16,
}

impl Harness {
    fn start() -> Self {
        let nats = NatsServer::start();
        let grpc_port = free_port();
        let http_port = free_port();
        let config = spawn_config(&nats, grpc_port, http_port);
        Harness {
            nats,
            config,
            grpc_port,
            http_port,
        }
    }

    async fn client(&self) -> ConfigClient<Channel> {
        ConfigClient::connect(format!("http://127.0.0.1:{}", self.grpc_port))
            .await
            .expect("connecting to anpr-config")
    }

    /// Restarts the config process and waits until it serves again.
    fn restart_config(&mut self) {
        assert!(
            self.config.terminate(),
            "anpr-config did not stop cleanly on SIGTERM:\n{}",
            tail(&self.config.output())
        );
        self.config = spawn_config(&self.nats, self.grpc_port, self.http_port);
    }

    fn http_get(&self, path: &str) -> (u16, String) {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.http_port)).expect("connecting to /healthz port");
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").expect("sending request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("reading response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("HTTP status line");
        (status, response)
    }
}

/// The last lines of a process's output, for failure messages.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn spawn_config(nats: &NatsServer, grpc_port: u16, http_port: u16) -> ServiceProcess {
    let grpc = format!("127.0.0.1:{grpc_port}");
    let http = format!("127.0.0.1:{http_port}");
    let process = ServiceProcess::start(
        env!("CARGO_BIN_EXE_anpr-config"),
        &["--grpc-listen", &grpc, "--http-listen", &http],
        &[
            ("NATS_URL", &nats.url()),
            // As verbose as an operator could make it: secrets must stay out
            // of even the most detailed logs.
            ("RUST_LOG", "trace,h2=debug,tower=debug,hyper=debug"),
            ("LOG_FORMAT", "json"),
        ],
    );
    process.wait_for_output("anpr-config listening", Duration::from_secs(30));
    process
}

fn nx_target(name: &str) -> VmsTarget {
    VmsTarget {
        name: name.into(),
        r#type: VmsType::NxGenericEvent as i32,
        host: "10.0.0.5".into(),
        login: "admin".into(),
        password: VMS_PASSWORD.into(),
        ..Default::default()
    }
}

fn camera(id: &str, url: &str) -> Camera {
    Camera {
        id: id.into(),
        rtsp_url: url.into(),
        ..Default::default()
    }
}

async fn create_target(client: &mut ConfigClient<Channel>, target: VmsTarget) -> VmsTarget {
    client
        .create_vms_target(CreateVmsTargetRequest {
            target: Some(target),
        })
        .await
        .expect("create target")
        .into_inner()
}

async fn create_camera(client: &mut ConfigClient<Channel>, camera: Camera) -> Camera {
    client
        .create_camera(CreateCameraRequest {
            camera: Some(camera),
        })
        .await
        .expect("create camera")
        .into_inner()
}

// Multi-threaded: the harness blocks while the client's connection must
// keep answering (e.g. the server's GOAWAY on shutdown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vms_targets_create_list_update_delete() {
    let harness = Harness::start();
    let mut client = harness.client().await;

    let created = create_target(&mut client, nx_target("nx1")).await;
    assert_eq!(created.port, Some(7001), "default port");
    assert_eq!(created.events(), EventSelection::Detect);
    assert!(created.password.is_empty(), "password is write-only");
    assert!(created.password_set);
    assert!(created.revision > 0);

    let mut second = nx_target("nx2");
    second.host = "nx.example.com".into();
    second.port = Some(7443);
    second.use_ssl = true;
    second.set_tls_trust(TlsTrust::Insecure);
    second.set_events(EventSelection::Lost);
    create_target(&mut client, second).await;

    let duplicate = client
        .create_vms_target(CreateVmsTargetRequest {
            target: Some(nx_target("nx1")),
        })
        .await
        .expect_err("duplicate name");
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    let listed = client
        .list_vms_targets(ListVmsTargetsRequest {})
        .await
        .expect("list")
        .into_inner()
        .targets;
    let names: Vec<_> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["nx1", "nx2"]);
    assert!(listed
        .iter()
        .all(|t| t.password.is_empty() && t.password_set));
    assert_eq!(listed[1].tls_trust(), TlsTrust::Insecure);
    assert_eq!(listed[1].port, Some(7443));

    // Update without a password keeps the stored one.
    let mut changed = created.clone();
    changed.set_events(EventSelection::Both);
    changed.port = Some(7002);
    let updated = client
        .update_vms_target(UpdateVmsTargetRequest {
            target: Some(changed),
            expected_revision: Some(created.revision),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.events(), EventSelection::Both);
    assert_eq!(updated.port, Some(7002));
    assert!(updated.password_set);
    assert!(updated.revision > created.revision);
    let fetched = client
        .get_vms_target(GetVmsTargetRequest { name: "nx1".into() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched.events(), EventSelection::Both);
    assert_eq!(fetched.revision, updated.revision);

    client
        .delete_vms_target(DeleteVmsTargetRequest {
            name: "nx1".into(),
            expected_revision: None,
        })
        .await
        .expect("delete");
    let gone = client
        .get_vms_target(GetVmsTargetRequest { name: "nx1".into() })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    let missing_delete = client
        .delete_vms_target(DeleteVmsTargetRequest {
            name: "nx1".into(),
            expected_revision: None,
        })
        .await
        .expect_err("already deleted");
    assert_eq!(missing_delete.code(), Code::NotFound);
    // A deleted name can be used again.
    create_target(&mut client, nx_target("nx1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_create_list_update_delete() {
    let harness = Harness::start();
    let mut client = harness.client().await;

    let mut with_credentials = camera(
        "gate-1",
        &format!("rtsp://admin:{CAMERA_PASSWORD}@192.168.7.20:554/Streaming/101"),
    );
    with_credentials.name = "Gate 1 entry".into();
    let created = create_camera(&mut client, with_credentials).await;
    assert_eq!(created.rtsp_url, "rtsp://192.168.7.20:554/Streaming/101");
    assert_eq!(created.rtsp_username, "admin");
    assert!(created.rtsp_password.is_empty());
    assert!(created.rtsp_password_set);
    assert_eq!(
        created.ip_address, "192.168.7.20",
        "derived from the URL host"
    );
    assert_eq!(created.sample_fps, Some(10.0));
    assert_eq!(created.enabled, Some(true));

    let mut channel_two = camera("gate-2", "rtsp://cam-2.site.local/stream2");
    channel_two.ip_address = "192.168.7.21".into();
    channel_two.encoder_channel = Some(1);
    create_camera(&mut client, channel_two).await;

    let listed = client
        .list_cameras(ListCamerasRequest {})
        .await
        .expect("list")
        .into_inner()
        .cameras;
    let ids: Vec<_> = listed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["gate-1", "gate-2"]);
    assert_eq!(listed[1].encoder_channel, Some(1));
    assert_eq!(listed[1].name, "gate-2", "name defaults to the id");

    let mut changed = created.clone();
    changed.ip_address = "192.168.7.99".into();
    changed.sample_fps = Some(5.0);
    let updated = client
        .update_camera(UpdateCameraRequest {
            camera: Some(changed),
            expected_revision: Some(created.revision),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(
        updated.ip_address, "192.168.7.99",
        "an explicit IP overrides the URL"
    );
    assert_eq!(updated.sample_fps, Some(5.0));
    assert!(
        updated.rtsp_password_set,
        "the stored RTSP password is kept"
    );

    // Deleting a camera also removes its analytic override.
    client
        .set_analytic_settings(SetAnalyticSettingsRequest {
            camera_id: "gate-1".into(),
            settings: Some(AnalyticSettings {
                skip_first_reads: Some(4),
                ..Default::default()
            }),
            expected_revision: None,
        })
        .await
        .expect("set override");
    client
        .delete_camera(DeleteCameraRequest {
            id: "gate-1".into(),
            expected_revision: Some(updated.revision),
        })
        .await
        .expect("delete");
    let overrides = client
        .list_analytic_overrides(ListAnalyticOverridesRequest {})
        .await
        .expect("list overrides")
        .into_inner()
        .overrides;
    assert!(overrides.is_empty(), "override left behind: {overrides:?}");
    assert_eq!(
        client
            .get_camera(GetCameraRequest {
                id: "gate-1".into()
            })
            .await
            .expect_err("deleted")
            .code(),
        Code::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytic_defaults_and_overrides() {
    let harness = Harness::start();
    let mut client = harness.client().await;

    let builtin = client
        .get_analytic_settings(GetAnalyticSettingsRequest::default())
        .await
        .expect("get defaults")
        .into_inner();
    let defaults = builtin.defaults.clone().expect("defaults");
    assert_eq!(defaults.lost_timeout_ms, Some(5000));
    assert_eq!(builtin.revision, 0, "nothing stored yet");

    let set = client
        .set_analytic_settings(SetAnalyticSettingsRequest {
            camera_id: String::new(),
            settings: Some(AnalyticSettings {
                min_confidence: Some(0.8),
                ..Default::default()
            }),
            expected_revision: Some(0),
        })
        .await
        .expect("set defaults")
        .into_inner();
    assert_eq!(
        set.effective.as_ref().and_then(|e| e.min_confidence),
        Some(0.8)
    );
    assert_eq!(
        set.effective.as_ref().and_then(|e| e.lost_timeout_ms),
        Some(5000),
        "unset fields keep the built-in default"
    );

    create_camera(&mut client, camera("lane-3", "rtsp://10.9.8.7/s")).await;
    let view = client
        .set_analytic_settings(SetAnalyticSettingsRequest {
            camera_id: "lane-3".into(),
            settings: Some(AnalyticSettings {
                skip_first_reads: Some(5),
                plate_formats: Some(PlateFormats {
                    patterns: vec!["^[A-Z]{3}[0-9]{4}$".into()],
                }),
                ..Default::default()
            }),
            expected_revision: None,
        })
        .await
        .expect("set override")
        .into_inner();
    let effective = view.effective.expect("effective");
    assert_eq!(effective.skip_first_reads, Some(5));
    assert_eq!(
        effective.min_confidence,
        Some(0.8),
        "inherited from the defaults"
    );
    assert_eq!(
        view.r#override.and_then(|o| o.min_confidence),
        None,
        "the override holds only what was set for the camera"
    );

    let reset = client
        .reset_analytic_settings(ResetAnalyticSettingsRequest {
            camera_id: "lane-3".into(),
            expected_revision: Some(view.revision),
        })
        .await
        .expect("reset")
        .into_inner();
    assert_eq!(
        reset.effective.and_then(|e| e.skip_first_reads),
        defaults.skip_first_reads
    );
}

async fn next(stream: &mut tonic::Streaming<WatchResponse>) -> watch_response::Change {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a watch message within 10 s")
        .expect("watch stream ok")
        .expect("watch stream open")
        .change
        .expect("a change")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sends_the_snapshot_then_each_change() {
    let harness = Harness::start();
    let mut client = harness.client().await;
    create_target(&mut client, nx_target("nx1")).await;
    create_camera(&mut client, camera("gate-1", "rtsp://10.1.1.1/s")).await;

    let mut stream = client
        .watch(WatchRequest {})
        .await
        .expect("watch")
        .into_inner();
    let watch_response::Change::Snapshot(snapshot) = next(&mut stream).await else {
        panic!("the first message must be the snapshot");
    };
    let mut names: Vec<String> = snapshot
        .items
        .iter()
        .filter_map(|item| match &item.item {
            Some(config_item::Item::VmsTarget(t)) => Some(format!("vms:{}", t.name)),
            Some(config_item::Item::Camera(c)) => Some(format!("camera:{}", c.id)),
            _ => None,
        })
        .collect();
    names.sort();
    assert_eq!(names, ["camera:gate-1", "vms:nx1"]);

    // A change made through another connection arrives on the stream.
    let mut other = harness.client().await;
    let created = create_target(&mut other, nx_target("nx2")).await;
    match next(&mut stream).await {
        watch_response::Change::Upserted(ConfigItem {
            item: Some(config_item::Item::VmsTarget(target)),
        }) => {
            assert_eq!(target.name, "nx2");
            assert_eq!(target.revision, created.revision);
            assert!(target.password.is_empty());
        }
        other => panic!("expected nx2 upserted, got {other:?}"),
    }
    other
        .delete_camera(DeleteCameraRequest {
            id: "gate-1".into(),
            expected_revision: None,
        })
        .await
        .expect("delete camera");
    match next(&mut stream).await {
        watch_response::Change::Deleted(key) => {
            assert_eq!(key.kind(), ConfigKind::Camera);
            assert_eq!(key.id, "gate-1");
        }
        other => panic!("expected gate-1 deleted, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_revision_is_refused() {
    let harness = Harness::start();
    let mut client = harness.client().await;
    let original = create_target(&mut client, nx_target("nx1")).await;

    // Operator A updates with the revision it read...
    let mut by_a = original.clone();
    by_a.login = "operator-a".into();
    client
        .update_vms_target(UpdateVmsTargetRequest {
            target: Some(by_a),
            expected_revision: Some(original.revision),
        })
        .await
        .expect("first update");
    // ...so operator B, who read the same revision, is refused.
    let mut by_b = original.clone();
    by_b.login = "operator-b".into();
    let refused = client
        .update_vms_target(UpdateVmsTargetRequest {
            target: Some(by_b),
            expected_revision: Some(original.revision),
        })
        .await
        .expect_err("stale update");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("changed meanwhile"),
        "{}",
        refused.message()
    );
    let stale_delete = client
        .delete_vms_target(DeleteVmsTargetRequest {
            name: "nx1".into(),
            expected_revision: Some(original.revision),
        })
        .await
        .expect_err("stale delete");
    assert_eq!(stale_delete.code(), Code::FailedPrecondition);
    let stored = client
        .get_vms_target(GetVmsTargetRequest { name: "nx1".into() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(stored.login, "operator-a", "B's write must not have landed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_survives_restarts_of_the_service_and_of_nats() {
    let mut harness = Harness::start();
    {
        let mut client = harness.client().await;
        create_target(&mut client, nx_target("nx1")).await;
        create_camera(&mut client, camera("gate-1", "rtsp://10.1.1.1/s")).await;
    }
    harness.restart_config();
    {
        let mut client = harness.client().await;
        let targets = client
            .list_vms_targets(ListVmsTargetsRequest {})
            .await
            .expect("list after config restart")
            .into_inner()
            .targets;
        assert_eq!(targets.len(), 1);
        assert!(targets[0].password_set);
    }

    // NATS itself restarts (same store): the service reconnects on its own.
    harness.nats.restart();
    let mut client = harness.client().await;
    let mut cameras = None;
    for _ in 0..100 {
        match client.list_cameras(ListCamerasRequest {}).await {
            Ok(response) => {
                cameras = Some(response.into_inner().cameras);
                break;
            }
            Err(status) => {
                assert_eq!(
                    status.code(),
                    Code::Unavailable,
                    "while NATS reconnects: {status}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let cameras = cameras.expect("config service answered again after the NATS restart");
    assert_eq!(cameras.len(), 1);
    assert_eq!(cameras[0].id, "gate-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_name_the_field() {
    let harness = Harness::start();
    let mut client = harness.client().await;

    async fn refused_target(client: &mut ConfigClient<Channel>, target: VmsTarget) -> String {
        let status = client
            .create_vms_target(CreateVmsTargetRequest {
                target: Some(target),
            })
            .await
            .expect_err("must be refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status}");
        status.message().to_string()
    }

    let mut port_zero = nx_target("nx1");
    port_zero.port = Some(0);
    assert!(refused_target(&mut client, port_zero)
        .await
        .contains("target.port"));

    let mut bad_host = nx_target("nx1");
    bad_host.host = "https://nx.example.com/".into();
    assert!(refused_target(&mut client, bad_host)
        .await
        .contains("target.host"));

    let mut empty_login = nx_target("nx1");
    empty_login.login = String::new();
    assert!(refused_target(&mut client, empty_login)
        .await
        .contains("target.login"));

    let mut no_password = nx_target("nx1");
    no_password.password = String::new();
    assert!(refused_target(&mut client, no_password)
        .await
        .contains("target.password"));

    let mut bad_pin = nx_target("nx1");
    bad_pin.use_ssl = true;
    bad_pin.set_tls_trust(TlsTrust::Pinned);
    bad_pin.pinned_cert_sha256 = "not-a-hash".into();
    assert!(refused_target(&mut client, bad_pin)
        .await
        .contains("target.pinned_cert_sha256"));

    // Several problems are reported together.
    let mut several = nx_target("bad name");
    several.port = Some(70000);
    let message = refused_target(&mut client, several).await;
    assert!(
        message.contains("target.name") && message.contains("target.port"),
        "{message}"
    );

    let camera_status = client
        .create_camera(CreateCameraRequest {
            camera: Some(camera("cam.1", "rtsp://cam.local/s")),
        })
        .await
        .expect_err("bad camera");
    assert_eq!(camera_status.code(), Code::InvalidArgument);
    assert!(camera_status.message().contains("camera.id"));
    assert!(camera_status.message().contains("camera.ip_address"));

    let unknown_camera = client
        .set_analytic_settings(SetAnalyticSettingsRequest {
            camera_id: "nope".into(),
            settings: Some(AnalyticSettings {
                skip_first_reads: Some(1),
                ..Default::default()
            }),
            expected_revision: None,
        })
        .await
        .expect_err("unknown camera");
    assert_eq!(unknown_camera.code(), Code::InvalidArgument);
    assert!(
        unknown_camera.message().contains("camera_id"),
        "{}",
        unknown_camera.message()
    );

    let bad_regex = client
        .set_analytic_settings(SetAnalyticSettingsRequest {
            camera_id: String::new(),
            settings: Some(AnalyticSettings {
                skip_first_reads: Some(11),
                plate_formats: Some(PlateFormats {
                    patterns: vec!["[A-Z".into()],
                }),
                ..Default::default()
            }),
            expected_revision: None,
        })
        .await
        .expect_err("bad regex");
    assert_eq!(bad_regex.code(), Code::InvalidArgument);
    assert!(bad_regex
        .message()
        .contains("settings.plate_formats.patterns[0]"));
    assert!(bad_regex.message().contains("settings.skip_first_reads"));

    let missing = client
        .create_vms_target(CreateVmsTargetRequest { target: None })
        .await
        .expect_err("no target");
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert!(missing.message().contains("target"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_response_log_or_metric_contains_a_password() {
    let mut harness = Harness::start();
    let mut client = harness.client().await;

    let target = create_target(&mut client, nx_target("nx1")).await;
    let mut pinned = nx_target("nx2");
    pinned.use_ssl = true;
    pinned.set_tls_trust(TlsTrust::Pinned);
    pinned.pinned_cert_sha256 = "ab".repeat(32);
    create_target(&mut client, pinned).await;
    let cam = create_camera(
        &mut client,
        camera(
            "gate-1",
            &format!("rtsp://admin:{CAMERA_PASSWORD}@10.1.1.1/s"),
        ),
    )
    .await;
    // A password change, a refused request that carries a password, a watch.
    let mut changed = target.clone();
    changed.password = format!("{VMS_PASSWORD}-new");
    let updated = client
        .update_vms_target(UpdateVmsTargetRequest {
            target: Some(changed),
            expected_revision: None,
        })
        .await
        .expect("password change")
        .into_inner();
    let mut refused = nx_target("nx3");
    refused.port = Some(0);
    let refusal = client
        .create_vms_target(CreateVmsTargetRequest {
            target: Some(refused),
        })
        .await
        .expect_err("refused");
    let mut watch = client
        .watch(WatchRequest {})
        .await
        .expect("watch")
        .into_inner();
    let snapshot = watch.message().await.expect("watch ok").expect("snapshot");
    let listed = client
        .list_vms_targets(ListVmsTargetsRequest {})
        .await
        .expect("list")
        .into_inner();
    let cameras = client
        .list_cameras(ListCamerasRequest {})
        .await
        .expect("list cameras")
        .into_inner();
    let (_, metrics) = harness.http_get("/metrics");

    let responses = format!(
        "{target:?}{cam:?}{updated:?}{refusal:?}{snapshot:?}{listed:?}{cameras:?}{}",
        refusal.message()
    );
    assert!(harness.config.terminate(), "clean stop");
    let logs = harness.config.output();
    assert!(
        logs.contains("VMS target created"),
        "logs were captured:\n{logs}"
    );
    for secret in [VMS_PASSWORD, CAMERA_PASSWORD] {
        assert!(!responses.contains(secret), "a response shows a password");
        assert!(!logs.contains(secret), "the logs show a password:\n{logs}");
        assert!(!metrics.contains(secret), "the metrics show a password");
    }
    assert!(metrics.contains("anpr_config_requests_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_and_grpc_health() {
    let harness = Harness::start();
    let (status, _) = harness.http_get("/healthz");
    assert_eq!(status, 200);
    let mut ready = 0;
    for _ in 0..50 {
        ready = harness.http_get("/readyz").0;
        if ready == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 200, "ready once NATS is connected");

    let channel = Channel::from_shared(format!("http://127.0.0.1:{}", harness.grpc_port))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "anpr.v1.Config".into(),
        })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(
        serving.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_show_the_status_the_bridge_reported() {
    use prost::Message;

    let harness = Harness::start();
    let mut client = harness.client().await;
    create_target(&mut client, nx_target("nx1")).await;
    create_target(&mut client, nx_target("nx2")).await;

    // No bridge has reported yet.
    let fresh = client
        .get_vms_target(GetVmsTargetRequest { name: "nx1".into() })
        .await
        .expect("get nx1")
        .into_inner();
    assert_eq!(fresh.status, None);

    // What the vms-bridge writes: one status entry per target.
    let nats = async_nats::connect(harness.nats.url())
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(nats);
    let bucket = js
        .get_key_value(anpr_common::subjects::VMS_STATUS_BUCKET)
        .await
        .expect("the config service created the status bucket");
    let reported = VmsTargetStatus {
        last_error: "wrong password for user admin".into(),
        last_error_at: Some(anpr_common::prost_types::Timestamp {
            seconds: 1_800_000_000,
            nanos: 0,
        }),
        queue_depth: 7,
        camera_problems: vec!["gate: no VMS camera has IP 10.1.2.3".into()],
        ..Default::default()
    };
    bucket
        .put("nx1", reported.encode_to_vec().into())
        .await
        .expect("write status");
    // An entry no bridge could have written must not break the listing.
    bucket
        .put("nx2", vec![0xff, 0xff, 0xff].into())
        .await
        .expect("write garbage status");

    let got = client
        .get_vms_target(GetVmsTargetRequest { name: "nx1".into() })
        .await
        .expect("get nx1")
        .into_inner();
    assert_eq!(got.status.as_ref(), Some(&reported));
    let listed = client
        .list_vms_targets(ListVmsTargetsRequest {})
        .await
        .expect("list")
        .into_inner()
        .targets;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].status.as_ref(), Some(&reported));
    assert_eq!(listed[1].name, "nx2");
    assert_eq!(listed[1].status, None);

    // Status is output only: an update carrying one does not store it.
    let mut update = got.clone();
    update.status = Some(VmsTargetStatus {
        queue_depth: 999,
        ..Default::default()
    });
    let updated = client
        .update_vms_target(UpdateVmsTargetRequest {
            target: Some(update),
            expected_revision: None,
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(
        updated.status, None,
        "update responses carry the stored record"
    );
    let again = client
        .get_vms_target(GetVmsTargetRequest { name: "nx1".into() })
        .await
        .expect("get nx1")
        .into_inner();
    assert_eq!(again.status.as_ref().map(|s| s.queue_depth), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_keep_mask_regions_and_show_the_status_ingest_reported() {
    use prost::Message;

    let harness = Harness::start();
    let mut client = harness.client().await;
    let overlay = MaskRegion {
        x: 0.0,
        y: 0.92,
        width: 0.45,
        height: 0.08,
    };
    let mut gate = camera("gate", "rtsp://192.0.2.10/stream1");
    gate.mask_regions = vec![overlay];
    let created = create_camera(&mut client, gate).await;
    assert_eq!(created.mask_regions, vec![overlay]);
    create_camera(&mut client, camera("yard", "rtsp://192.0.2.11/stream1")).await;

    // Masks in pixels instead of fractions are refused, naming the region.
    let mut pixels = created.clone();
    pixels.mask_regions = vec![
        overlay,
        MaskRegion {
            x: 0.0,
            y: 660.0,
            width: 400.0,
            height: 60.0,
        },
    ];
    let err = client
        .update_camera(UpdateCameraRequest {
            camera: Some(pixels),
            expected_revision: None,
        })
        .await
        .expect_err("pixel mask refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("camera.mask_regions[1]"),
        "{}",
        err.message()
    );

    // No ingest worker has reported yet.
    let fresh = client
        .get_camera(GetCameraRequest { id: "gate".into() })
        .await
        .expect("get gate")
        .into_inner();
    assert_eq!(fresh.status, None);
    assert_eq!(fresh.mask_regions, vec![overlay]);

    // What ingest writes: one status entry per camera.
    let nats = async_nats::connect(harness.nats.url())
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(nats);
    let bucket = js
        .get_key_value(anpr_common::subjects::CAMERA_STATUS_BUCKET)
        .await
        .expect("the config service created the camera status bucket");
    let reported = CameraStatus {
        connected: true,
        decoded_fps: 25.0,
        published_fps: 10.0,
        reconnects: 3,
        stream: "h264 1280x720".into(),
        ingest_instance: "ingest-0".into(),
        ..Default::default()
    };
    bucket
        .put("gate", reported.encode_to_vec().into())
        .await
        .expect("write status");
    bucket
        .put("yard", vec![0xff, 0xff, 0xff].into())
        .await
        .expect("write garbage status");

    let got = client
        .get_camera(GetCameraRequest { id: "gate".into() })
        .await
        .expect("get gate")
        .into_inner();
    assert_eq!(got.status.as_ref(), Some(&reported));
    let listed = client
        .list_cameras(ListCamerasRequest {})
        .await
        .expect("list")
        .into_inner()
        .cameras;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].status.as_ref(), Some(&reported));
    assert_eq!(listed[1].id, "yard");
    assert_eq!(listed[1].status, None, "an unreadable status shows as none");

    // Status is output only: an update carrying one does not store it.
    let mut update = got.clone();
    update.status = Some(CameraStatus {
        reconnects: 999,
        ..Default::default()
    });
    let updated = client
        .update_camera(UpdateCameraRequest {
            camera: Some(update),
            expected_revision: None,
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.status, None);
    let again = client
        .get_camera(GetCameraRequest { id: "gate".into() })
        .await
        .expect("get gate")
        .into_inner();
    assert_eq!(again.status.map(|s| s.reconnects), Some(3));
}
