//! A real stack for the ingest tests: nats-server (spawned), the config
//! service and anpr-ingest (in this process, from their libraries, each with
//! its own NATS connection), plus helpers to render test video with
//! Debian's ffmpeg and to read what ingest published.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use anpr_common::bus::NatsArgs;
use anpr_common::proto::config_client::ConfigClient;
use anpr_common::proto::{
    Camera, CameraStatus, CreateCameraRequest, Frame, GetCameraRequest, UpdateCameraRequest,
};
use anpr_common::subjects;
use anpr_testkit::NatsServer;
use futures::StreamExt as _;
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

fn loopback_any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Installs an OpenTelemetry layer and the W3C propagator once per test
/// binary, as `anpr_common::telemetry::init` does in the service, so that
/// frames carry a `traceparent`.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let tracer = provider.tracer("ingest-test");
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,anpr_ingest=info".into()),
            ))
            .with(tracing_subscriber::fmt::layer().with_test_writer())
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .try_init();
    });
}

/// NATS, the config service and ingest; everything stops when dropped.
pub struct Stack {
    pub nats: NatsServer,
    pub client: async_nats::Client,
    pub config_url: String,
    pub ingest_http: SocketAddr,
    pub status: async_nats::jetstream::kv::Store,
    shutdown: CancellationToken,
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(|_| {}).await
    }

    /// Starts with ingest options changed by `adjust` (a source opener of
    /// the test's own, a shorter watchdog).
    pub async fn start_with(adjust: impl FnOnce(&mut anpr_ingest::Options)) -> Stack {
        init_tracing();
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
        .expect("starting anpr-config");
        let config_url = format!("http://{}", config.grpc_addr);

        let mut options = anpr_ingest::Options::new(nats_args, &config_url);
        options.http_listen = loopback_any_port();
        options.instance = "ingest-test".into();
        // Quicker status updates make the tests quicker; nothing depends on it.
        options.status_interval = Duration::from_millis(300);
        adjust(&mut options);
        let ingest = anpr_ingest::start(options, shutdown.clone())
            .await
            .expect("starting anpr-ingest");
        let ingest_http = ingest.http_addr;
        tokio::spawn(async move {
            if let Err(error) = ingest.wait().await {
                eprintln!("anpr-ingest failed: {error}");
            }
        });

        let client = async_nats::connect(nats.url())
            .await
            .expect("test client connects to NATS");
        let js = async_nats::jetstream::new(client.clone());
        let status = js
            .get_key_value(subjects::CAMERA_STATUS_BUCKET)
            .await
            .expect("the camera status bucket exists (made by anpr-config)");
        let stack = Stack {
            nats,
            client,
            config_url,
            ingest_http,
            status,
            shutdown,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http_get(ingest_http, "/readyz").await.starts_with("ready") {
            assert!(Instant::now() < deadline, "anpr-ingest never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stack
    }

    pub async fn config(&self) -> ConfigClient<Channel> {
        ConfigClient::connect(self.config_url.clone())
            .await
            .expect("connecting to anpr-config")
    }

    pub async fn add_camera(&self, camera: Camera) -> Camera {
        self.config()
            .await
            .create_camera(CreateCameraRequest {
                camera: Some(camera),
            })
            .await
            .expect("creating the camera")
            .into_inner()
    }

    /// Changes a camera through the config service.
    pub async fn update_camera(&self, id: &str, change: impl FnOnce(&mut Camera)) -> Camera {
        let mut config = self.config().await;
        let mut camera = config
            .get_camera(GetCameraRequest { id: id.into() })
            .await
            .expect("reading the camera")
            .into_inner();
        camera.status = None;
        change(&mut camera);
        config
            .update_camera(UpdateCameraRequest {
                camera: Some(camera),
                expected_revision: None,
            })
            .await
            .expect("updating the camera")
            .into_inner()
    }

    /// A subscription to one camera's frames (or every camera's with ">").
    pub async fn frames(&self, camera: &str) -> async_nats::Subscriber {
        let subscriber = self
            .client
            .subscribe(subjects::frames(camera))
            .await
            .expect("subscribing to frames");
        // The subscription must be on the server before frames are published.
        self.client.flush().await.expect("flush");
        subscriber
    }

    pub async fn status_of(&self, camera: &str) -> Option<CameraStatus> {
        let entry = self.status.get(camera).await.expect("reading the status")?;
        Some(CameraStatus::decode(entry).expect("status is a CameraStatus"))
    }

    /// Waits until the camera's status satisfies `check`; panics with the
    /// last status seen otherwise.
    pub async fn wait_status(
        &self,
        camera: &str,
        what: &str,
        check: impl Fn(&CameraStatus) -> bool,
    ) -> CameraStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        loop {
            if let Some(status) = self.status_of(camera).await {
                if check(&status) {
                    return status;
                }
                last = Some(status);
            }
            assert!(
                Instant::now() < deadline,
                "camera {camera}: no status with {what}; last: {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        http_get(self.ingest_http, "/metrics").await
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The value of one metric series in Prometheus text, e.g.
/// `anpr_ingest_frames_published_total{camera="a"}`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// A plain HTTP/1.0 GET on loopback; returns the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

/// One received frame with its headers.
pub struct Received {
    pub frame: Frame,
    pub traceparent: Option<String>,
    pub subject: String,
}

pub fn decode(message: async_nats::Message) -> Received {
    Received {
        frame: Frame::decode(message.payload).expect("payload is a Frame"),
        traceparent: message
            .headers
            .as_ref()
            .and_then(anpr_common::trace_context::traceparent)
            .map(str::to_string),
        subject: message.subject.to_string(),
    }
}

/// Frames until none came for `quiet` (or `limit` frames, or 90 s).
pub async fn collect_until_quiet(
    subscriber: &mut async_nats::Subscriber,
    quiet: Duration,
    limit: usize,
) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut frames = Vec::new();
    while frames.len() < limit && Instant::now() < deadline {
        match tokio::time::timeout(quiet, subscriber.next()).await {
            Ok(Some(message)) => frames.push(decode(message)),
            Ok(None) | Err(_) => break,
        }
    }
    frames
}

/// Waits for `count` frames, each within 30 s of the previous one.
pub async fn take_frames(subscriber: &mut async_nats::Subscriber, count: usize) -> Vec<Received> {
    let frames = collect_until_quiet(subscriber, Duration::from_secs(30), count).await;
    assert_eq!(frames.len(), count, "expected {count} frames");
    frames
}

/// Renders a test clip with Debian's ffmpeg: a grey picture with a white box
/// (x 96-223, y 80-159) holding black text below its top rows, H.264 without
/// B-frames, one key frame a second, as `.mp4` or `.ts` by `name`.
pub fn render_clip(dir: &Path, name: &str, seconds: u32, fps: u32) -> PathBuf {
    assert!(
        Path::new(FONT).is_file(),
        "font {FONT} missing: apt-get install fonts-dejavu-core"
    );
    let path = dir.join(name);
    let filter = format!(
        "drawbox=x=96:y=80:w=128:h=80:color=white:t=fill,\
         drawtext=fontfile={FONT}:text=AB12:fontsize=28:fontcolor=black:x=112:y=120"
    );
    let output = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("color=c=0x404040:s=320x240:r={fps}:d={seconds}"))
        .args(["-vf", &filter])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "0", "-g"])
        .arg(fps.to_string())
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("running ffmpeg (apt-get install ffmpeg)");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    path
}

/// A camera reading a local file.
pub fn file_camera(id: &str, path: &Path, query: &str, ip: &str, fps: f32) -> Camera {
    Camera {
        id: id.into(),
        rtsp_url: format!("file://{}{query}", path.display()),
        ip_address: ip.into(),
        sample_fps: Some(fps),
        ..Default::default()
    }
}

/// The mean RGB of a `size` x `size` patch at (x, y) of a JPEG.
pub fn patch_rgb(jpeg: &[u8], x: usize, y: usize, size: usize) -> [f64; 3] {
    let image = turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB).expect("valid JPEG");
    let mut sum = [0f64; 3];
    for row in y..y + size {
        for col in x..x + size {
            let at = row * image.pitch + col * 3;
            for (channel, total) in sum.iter_mut().enumerate() {
                *total += f64::from(image.pixels[at + channel]);
            }
        }
    }
    sum.map(|total| total / (size * size) as f64)
}
