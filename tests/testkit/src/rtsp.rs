//! A real RTSP server for tests: GStreamer's RTSP server (through Python
//! GObject introspection, Debian packages only) serving one MPEG-TS file,
//! looped forever, like a camera that never stops. A test can stop it (the
//! camera goes away: connections are refused) and restart it on the same port.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Mount point of the stream.
pub const MOUNT: &str = "/plate";

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// `rtsp_server.py` serving one clip on a loopback port.
pub struct RtspServer {
    media: PathBuf,
    port: u16,
    child: Option<Child>,
    /// What the server printed on stderr, over all its runs.
    log: Arc<Mutex<String>>,
}

/// The Python interpreter: `$ANPR_TEST_PYTHON`, else Debian's
/// `/usr/bin/python3` (the one its `gi` module belongs to).
fn python() -> PathBuf {
    std::env::var_os("ANPR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"))
}

/// The server script, next to this crate's Cargo.toml.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rtsp_server.py")
}

const PACKAGES: &str = "apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 \
     gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad";

impl RtspServer {
    /// Serves `media` (an H.264 MPEG-TS file, e.g. a
    /// [`PlateClip`](crate::clip::PlateClip)) on a free port.
    pub fn start(media: &Path) -> Self {
        assert!(
            media.is_file(),
            "RtspServer: no media file {}",
            media.display()
        );
        let mut server = RtspServer {
            media: media.to_path_buf(),
            port: 0,
            child: None,
            log: Arc::new(Mutex::new(String::new())),
        };
        server.port = server.spawn(0);
        server
    }

    /// `rtsp://127.0.0.1:<port>/plate`.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}{MOUNT}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running (not stopped, not exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// What the server printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Kills the server: clients lose their sessions, new connections are
    /// refused.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it listens.
    pub fn restart(&mut self) {
        self.stop();
        // The port may be briefly unavailable after the kill: retry.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.try_spawn(self.port) {
                Ok(port) => {
                    assert_eq!(port, self.port, "RtspServer came back on another port");
                    break;
                }
                Err(error) if Instant::now() < deadline => {
                    eprintln!(
                        "RtspServer: restart on {} failed ({error}); retrying",
                        self.port
                    );
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(error) => panic!(
                    "RtspServer: could not restart on port {}: {error}; its log:\n{}",
                    self.port,
                    self.log()
                ),
            }
        }
        assert!(
            crate::wait_for_port(self.port, START_TIMEOUT),
            "RtspServer: restarted, but nothing listens on {}",
            self.port
        );
    }

    fn spawn(&mut self, port: u16) -> u16 {
        self.try_spawn(port).unwrap_or_else(|error| {
            panic!(
                "RtspServer: {error}; its log:\n{}\n(needs {}: {PACKAGES}; or set ANPR_TEST_PYTHON)",
                self.log(),
                python().display()
            )
        })
    }

    /// Starts the script on `port` (0: any) and returns the port it bound.
    fn try_spawn(&mut self, port: u16) -> Result<u16, String> {
        let mut child = Command::new(python())
            .arg(script())
            .arg(&self.media)
            .arg(MOUNT)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| {
                format!(
                    "spawning {} {}: {err}",
                    python().display(),
                    script().display()
                )
            })?;
        if let Some(stderr) = child.stderr.take() {
            collect(stderr, self.log.clone());
        }
        let stdout = child.stdout.take().expect("piped stdout");
        match read_port(stdout, START_TIMEOUT) {
            Some(bound) => {
                self.child = Some(child);
                Ok(bound)
            }
            None => {
                let _ = child.kill();
                let status = child.wait().ok();
                // Let the stderr reader catch up before the caller shows it.
                std::thread::sleep(Duration::from_millis(100));
                Err(format!(
                    "rtsp_server.py printed no port within {START_TIMEOUT:?} (exit: {status:?})"
                ))
            }
        }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads stdout until the `PORT <n>` line; keeps draining it afterwards so
/// the child never blocks on a full pipe.
fn read_port(stdout: ChildStdout, timeout: Duration) -> Option<u16> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(port) = line
                    .strip_prefix("PORT ")
                    .and_then(|p| p.trim().parse().ok())
                {
                    let _ = sender.send(port);
                    sent = true;
                }
            }
        }
    });
    receiver.recv_timeout(timeout).ok()
}

fn collect(stream: impl Read + Send + 'static, output: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut text) = output.lock() {
                text.push_str(&line);
                text.push('\n');
            }
        }
    });
}

/// The first video stream of an RTSP URL as `ffprobe` (RTSP over TCP) sees
/// it: codec name, width, height. `Err` says why not (refused, timed out...).
pub fn probe(url: &str, timeout: Duration) -> Result<(String, u32, u32), String> {
    let ffprobe = std::env::var_os("FFPROBE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("ffprobe"));
    let mut child = Command::new(&ffprobe)
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-select_streams",
            "v:0",
        ])
        .args([
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| {
            format!(
                "spawning {} ({err}): apt-get install ffmpeg",
                ffprobe.display()
            )
        })?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("ffprobe {url} did not finish within {timeout:?}"));
            }
        }
    }
    let output = child.wait_with_output().map_err(|err| err.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = text.trim().split(',').collect();
    match fields[..] {
        [codec, width, height] if output.status.success() => Ok((
            codec.to_string(),
            width
                .parse()
                .map_err(|_| format!("ffprobe width {width:?}"))?,
            height
                .parse()
                .map_err(|_| format!("ffprobe height {height:?}"))?,
        )),
        _ => Err(format!(
            "ffprobe {url}: {} {}{}",
            output.status,
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}
