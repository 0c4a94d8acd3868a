//! Runs the real `anprctl` binary against a real config service on a real
//! NATS server, the way an operator would.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anpr_common::bus::NatsArgs;
use anpr_common::proto::{PlateEvent, PlateEventKind};
use anpr_config::server::{self, RunningServer, ServerOptions};
use anpr_testkit::NatsServer;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

const NX1_PASSWORD: &str = "nx1-Stdin-pw-4711";
const NX2_PASSWORD: &str = "nx2-Env-pw-0815";

/// NATS, the config service in a runtime of the test's own, and its address.
struct Stack {
    nats: NatsServer,
    runtime: tokio::runtime::Runtime,
    shutdown: CancellationToken,
    server: Option<RunningServer>,
    config_url: String,
}

impl Stack {
    fn start() -> Self {
        let nats = NatsServer::start();
        let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
        let shutdown = CancellationToken::new();
        let loopback = "127.0.0.1:0".parse().expect("socket address");
        let options = ServerOptions {
            grpc_listen: loopback,
            http_listen: loopback,
            nats: NatsArgs::plain(nats.url()),
        };
        let server = runtime
            .block_on(server::start(options, shutdown.clone()))
            .expect("config service starts");
        let config_url = format!("http://{}", server.grpc_addr);
        Stack {
            nats,
            runtime,
            shutdown,
            server: Some(server),
            config_url,
        }
    }

    /// Runs `anprctl --config-url <service> <args>` to completion, with
    /// `stdin` piped in and `envs` added to a cleaned environment.
    fn anprctl(&self, args: &[&str], stdin: Option<&str>, envs: &[(&str, &str)]) -> Run {
        let mut child = base_command()
            .arg("--config-url")
            .arg(&self.config_url)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning anprctl");
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).expect("writing stdin");
        }
        let output = child.wait_with_output().expect("anprctl finishes");
        Run::new(args, output)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let stopped = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), server.wait()).await
            });
            if !std::thread::panicking() {
                assert!(
                    matches!(stopped, Ok(Ok(()))),
                    "config service did not stop cleanly"
                );
            }
        }
    }
}

/// The binary with an environment that does not leak in from the developer's
/// shell: no password, service address or NATS settings but the test's own.
fn base_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_anprctl"));
    for name in [
        "ANPR_VMS_PASSWORD",
        "ANPR_CONFIG_URL",
        "NATS_URL",
        "NATS_CREDS",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_TOKEN",
        "NATS_TLS_CA",
        "NATS_TLS_CERT",
        "NATS_TLS_KEY",
    ] {
        command.env_remove(name);
    }
    command
}

/// One finished run of the binary.
struct Run {
    command: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn new(args: &[&str], output: Output) -> Self {
        let run = Run {
            command: args.join(" "),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        // Whatever a command prints, and however it ends, never a password.
        for secret in [NX1_PASSWORD, NX2_PASSWORD] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "`anprctl {}` printed a password:\n{}{}",
                run.command,
                run.stdout,
                run.stderr
            );
        }
        run
    }

    fn success(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "`anprctl {}` failed:\nstdout:\n{}\nstderr:\n{}",
            self.command,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Cells of a rendered table line (cells are separated by at least two
/// spaces and contain at most single ones).
fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .map(str::to_string)
        .collect()
}

/// The table's rows keyed by their first cell, after checking the header.
fn table_rows(stdout: &str, header: &[&str]) -> Vec<Vec<String>> {
    let mut lines = stdout.lines();
    let first = lines.next().expect("a header line");
    assert_eq!(cells(first), header, "header of:\n{stdout}");
    lines.map(cells).collect()
}

fn row<'a>(rows: &'a [Vec<String>], key: &str) -> Option<&'a Vec<String>> {
    rows.iter()
        .find(|row| row.first().map(String::as_str) == Some(key))
}

const VMS_HEADER: [&str; 10] = [
    "NAME",
    "IP ADDRESS",
    "TCP PORT",
    "USE SSL",
    "METHOD",
    "WHAT",
    "VMS TYPE",
    "ENABLED",
    "QUEUE",
    "STATUS",
];

#[test]
fn operator_manages_the_configuration_and_watches_plates() {
    let stack = Stack::start();

    // --- VMS targets: one password from stdin, one from the environment.
    let added = stack
        .anprctl(
            &[
                "vms",
                "add",
                "nx1",
                "--host",
                "10.0.0.5",
                "--login",
                "admin",
                "--password-stdin",
            ],
            Some(&format!("{NX1_PASSWORD}\n")),
            &[],
        )
        .success();
    assert!(added.stdout.contains("password:"), "{}", added.stdout);
    stack
        .anprctl(
            &[
                "vms",
                "add",
                "nx2",
                "--host",
                "nx.example.com",
                "--port",
                "7443",
                "--ssl",
                "--tls-trust",
                "insecure",
                "--events",
                "lost",
                "--login",
                "op",
            ],
            None,
            &[("ANPR_VMS_PASSWORD", NX2_PASSWORD)],
        )
        .success();

    let list = stack.anprctl(&["vms", "list"], None, &[]).success();
    let rows = table_rows(&list.stdout, &VMS_HEADER);
    assert_eq!(rows.len(), 2, "{}", list.stdout);
    assert_eq!(
        row(&rows, "nx1").expect("nx1 listed"),
        &[
            "nx1",
            "10.0.0.5",
            "7001",
            "no",
            "auto",
            "Detect",
            "VMS Generic Event",
            "yes",
            "-",
            "-"
        ]
    );
    assert_eq!(
        row(&rows, "nx2").expect("nx2 listed"),
        &[
            "nx2",
            "nx.example.com",
            "7443",
            "yes (insecure)",
            "auto",
            "Lost",
            "VMS Generic Event",
            "yes",
            "-",
            "-"
        ]
    );

    let shown = stack.anprctl(&["vms", "show", "nx1"], None, &[]).success();
    assert!(
        shown
            .stdout
            .lines()
            .any(|line| line.split_whitespace().eq(["password:", "set"])),
        "{}",
        shown.stdout
    );

    // A password in the environment does not leak into an update that did
    // not ask for it; the update changes only what it names.
    stack
        .anprctl(
            &["vms", "update", "nx1", "--events", "both"],
            None,
            &[("ANPR_VMS_PASSWORD", NX2_PASSWORD)],
        )
        .success();
    let list = stack.anprctl(&["vms", "list"], None, &[]).success();
    let rows = table_rows(&list.stdout, &VMS_HEADER);
    assert_eq!(
        row(&rows, "nx1").expect("nx1 listed"),
        &[
            "nx1",
            "10.0.0.5",
            "7001",
            "no",
            "auto",
            "Detect+Lost",
            "VMS Generic Event",
            "yes",
            "-",
            "-"
        ]
    );

    // JSON: one object per target.
    let json = stack
        .anprctl(&["--output", "json", "vms", "list"], None, &[])
        .success();
    let names: Vec<String> = json
        .stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON object");
            assert_eq!(value["password_set"], true, "{line}");
            value["name"].as_str().expect("name").to_string()
        })
        .collect();
    assert_eq!(names.len(), 2, "{}", json.stdout);
    assert!(names.contains(&"nx1".to_string()) && names.contains(&"nx2".to_string()));

    // Refusals: exit code 1 and one line naming the problem.
    let refused = stack.anprctl(
        &[
            "vms", "add", "nx3", "--host", "10.0.0.6", "--port", "0", "--login", "a",
        ],
        None,
        &[("ANPR_VMS_PASSWORD", NX2_PASSWORD)],
    );
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(refused.stderr.starts_with("error: "), "{}", refused.stderr);
    assert!(refused.stderr.contains("port"), "{}", refused.stderr);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);

    let missing = stack.anprctl(
        &["vms", "add", "nx3", "--host", "10.0.0.6", "--login", "a"],
        None,
        &[],
    );
    assert_eq!(missing.code, Some(1));
    assert_eq!(
        missing.stderr,
        "error: a VMS password is needed: pipe it with --password-stdin or set ANPR_VMS_PASSWORD\n"
    );

    let unknown = stack.anprctl(&["vms", "show", "nx9"], None, &[]);
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown.stderr.contains("no such VMS target"),
        "{}",
        unknown.stderr
    );

    let usage = stack.anprctl(&["vms", "add", "nx3"], None, &[]);
    assert_eq!(usage.code, Some(2), "clap usage error: {}", usage.stderr);

    // --- Cameras: the IP address comes from the URL.
    stack
        .anprctl(
            &[
                "camera",
                "add",
                "gate-1",
                "--url",
                "rtsp://10.1.2.3/stream",
                "--mask",
                "0,0.92,0.45,0.08",
            ],
            None,
            &[],
        )
        .success();
    let refused = stack.anprctl(
        &["camera", "update", "gate-1", "--mask", "0,660,400,60"],
        None,
        &[],
    );
    assert_ne!(refused.code, Some(0), "a mask in pixels is refused");
    assert!(
        refused.stderr.contains("camera.mask_regions[0]"),
        "{}",
        refused.stderr
    );
    let shown = stack
        .anprctl(&["camera", "show", "gate-1"], None, &[])
        .success();
    assert!(
        shown
            .stdout
            .lines()
            .any(|line| cells(line) == ["masks:", "0,0.92,0.45,0.08"]),
        "{}",
        shown.stdout
    );
    let cameras = stack.anprctl(&["camera", "list"], None, &[]).success();
    let rows = table_rows(
        &cameras.stdout,
        &[
            "ID",
            "NAME",
            "IP ADDRESS",
            "URL",
            "FPS",
            "VMS MAPPING",
            "ENABLED",
            "STREAM",
            "IN/OUT FPS",
            "DROPPED",
            "RECONNECTS",
        ],
    );
    assert_eq!(
        row(&rows, "gate-1").expect("gate-1 listed"),
        &[
            "gate-1",
            "gate-1",
            "10.1.2.3",
            "rtsp://10.1.2.3/stream",
            "10",
            "by IP",
            "yes",
            "-",
            "-",
            "-",
            "-"
        ]
    );

    // --- Analytic defaults.
    stack
        .anprctl(&["analytic", "set", "--skip-first", "3"], None, &[])
        .success();
    let analytic = stack.anprctl(&["analytic", "show"], None, &[]).success();
    assert!(
        analytic
            .stdout
            .lines()
            .any(|line| cells(line) == ["skip_first_reads", "3", "default"]),
        "{}",
        analytic.stdout
    );
    let camera_view = stack
        .anprctl(
            &[
                "analytic",
                "set",
                "--camera",
                "gate-1",
                "--min-confidence",
                "0.8",
            ],
            None,
            &[],
        )
        .success();
    let camera_rows: Vec<Vec<String>> = camera_view.stdout.lines().map(cells).collect();
    assert!(
        camera_rows.contains(&vec![
            "min_confidence".into(),
            "0.8".into(),
            "camera".into()
        ]),
        "{}",
        camera_view.stdout
    );
    assert!(
        camera_rows.contains(&vec![
            "skip_first_reads".into(),
            "3".into(),
            "default".into()
        ]),
        "{}",
        camera_view.stdout
    );

    // --- Removal.
    let removed = stack.anprctl(&["vms", "rm", "nx2"], None, &[]).success();
    assert!(removed.stdout.contains("nx2"), "{}", removed.stdout);
    let list = stack.anprctl(&["vms", "list"], None, &[]).success();
    let rows = table_rows(&list.stdout, &VMS_HEADER);
    assert!(row(&rows, "nx2").is_none(), "{}", list.stdout);
    assert!(row(&rows, "nx1").is_some(), "{}", list.stdout);

    // --- Plate events.
    tail_prints_published_events(&stack);
}

fn plate_event(camera: &str, plate: &str) -> PlateEvent {
    let mut event = PlateEvent {
        event_id: "0d4f5d2c-7a8e-4d7a-9c1e-4b3b1f5e2a10".into(),
        track_id: "9a1c2b3d-0000-4000-8000-000000000001".into(),
        camera_id: camera.into(),
        camera_ip: "10.1.2.3".into(),
        plate_text: plate.into(),
        raw_text: plate.into(),
        confidence: 0.93,
        read_count: 5,
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_878_245,
            nanos: 123_000_000,
        }),
        ..Default::default()
    };
    event.set_kind(PlateEventKind::Detect);
    event
}

fn tail_prints_published_events(stack: &Stack) {
    let mut child = base_command()
        .args([
            "--nats-url",
            &stack.nats.url(),
            "plates",
            "tail",
            "--camera",
            "gate-1",
            "--kind",
            "detect",
            "--count",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning anprctl plates tail");

    // Stderr is read on a thread, line by line, so the test can wait for the
    // "listening" line without blocking on a pipe.
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr_lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stderr_lines
        .iter()
        .any(|line: &String| line.starts_with("listening on"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => stderr_lines.push(line),
            Err(err) => {
                let _ = child.kill();
                panic!("plates tail did not start listening ({err}): {stderr_lines:?}");
            }
        }
    }

    let client = stack
        .runtime
        .block_on(async_nats::connect(stack.nats.url()))
        .expect("test connects to NATS");
    let wanted = plate_event("gate-1", "ABC1234").encode_to_vec();
    let other_camera = plate_event("gate-2", "XYZ9876").encode_to_vec();
    // Not a protobuf message: a field with an invalid wire type.
    let garbage = vec![0x0f, 0xff, 0xff];
    stack.runtime.block_on(async {
        client
            .publish("anpr.v1.plates.gate-1.detect", garbage.into())
            .await
            .expect("publish");
        client.flush().await.expect("flush");
    });
    // The tail subscribed before saying it listens; publishing more than once
    // only guards against a slow start.
    let status = loop {
        if let Some(status) = child.try_wait().expect("polling plates tail") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("plates tail printed no event within 20 s; stderr: {stderr_lines:?}");
        }
        stack.runtime.block_on(async {
            client
                .publish("anpr.v1.plates.gate-2.detect", other_camera.clone().into())
                .await
                .expect("publish");
            client
                .publish("anpr.v1.plates.gate-1.detect", wanted.clone().into())
                .await
                .expect("publish");
            client.flush().await.expect("flush");
        });
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout piped")
        .read_to_string(&mut stdout)
        .expect("reading stdout");
    reader.join().expect("stderr reader");
    stderr_lines.extend(lines_rx.try_iter());

    assert!(status.success(), "plates tail failed: {stderr_lines:?}");
    assert_eq!(
        stdout,
        "2026-11-28T15:04:05.123Z  DETECT  gate-1        ABC1234     0.93  track=9a1c2b3d  reads=5\n"
    );
    assert!(
        stderr_lines
            .iter()
            .any(|line| line.starts_with("warning: anpr.v1.plates.gate-1.detect: ")),
        "no warning for the undecodable message: {stderr_lines:?}"
    );
}
