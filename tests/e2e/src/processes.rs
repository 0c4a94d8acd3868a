//! Every service as its own release process, as in production: what the
//! end-to-end test of the whole pipeline (`tests/full_pipeline.rs`) and the
//! pipeline benchmark (`anpr-bench-pipeline`) share. Starting the services
//! and waiting until they serve, configuring them with `anprctl` as an
//! operator would, asking them over plain HTTP, and stopping them: politely
//! with [`Services::stop`], or at once when [`Services`] is dropped (also on
//! an error or a panic), so no child outlives its caller.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anpr_testkit::{free_port, ServiceProcess};
use anyhow::{bail, Context as _};

use crate::binaries::find_bin_in;

/// The services of one pipeline, in the order they were started.
pub struct Services {
    bin_dir: PathBuf,
    list: Vec<(String, ServiceProcess)>,
    /// When set, waits give up as soon as it is true (Ctrl-C).
    abort: Option<&'static AtomicBool>,
}

impl Services {
    /// No service yet; binaries are taken from `bin_dir`.
    pub fn new(bin_dir: impl Into<PathBuf>) -> Services {
        Services {
            bin_dir: bin_dir.into(),
            list: Vec::new(),
            abort: None,
        }
    }

    /// Makes every wait fail at once ("interrupted") when `flag` becomes
    /// true, e.g. from a Ctrl-C handler.
    pub fn abort_when(&mut self, flag: &'static AtomicBool) {
        self.abort = Some(flag);
    }

    fn check_abort(&self) -> anyhow::Result<()> {
        if self.abort.is_some_and(|flag| flag.load(Ordering::SeqCst)) {
            bail!("interrupted");
        }
        Ok(())
    }

    /// The folder the binaries come from.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Starts the binary `name` with `args` and extra environment `env`.
    pub fn start(
        &mut self,
        name: &str,
        args: &[String],
        env: &[(&str, String)],
    ) -> anyhow::Result<()> {
        self.start_as(name, name, args, env)
    }

    /// Starts the binary `binary`, known here as `name` (one of several
    /// replicas of a service).
    pub fn start_as(
        &mut self,
        name: &str,
        binary: &str,
        args: &[String],
        env: &[(&str, String)],
    ) -> anyhow::Result<()> {
        let program = find_bin_in(&self.bin_dir, binary)?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let process = no_panic(&format!("starting {name}"), || {
            ServiceProcess::start(&program, &args, &env)
        })?;
        self.list.push((name.to_string(), process));
        Ok(())
    }

    /// Starts `name` with `--http-listen 127.0.0.1:<free port>` after `args`
    /// and waits until that port accepts connections; returns the port.
    pub fn start_with_http(
        &mut self,
        name: &str,
        args: &[String],
        env: &[(&str, String)],
    ) -> anyhow::Result<u16> {
        self.start_with_http_as(name, name, args, env)
    }

    /// [`start_with_http`](Self::start_with_http) for the binary `binary`
    /// known here as `name`.
    pub fn start_with_http_as(
        &mut self,
        name: &str,
        binary: &str,
        args: &[String],
        env: &[(&str, String)],
    ) -> anyhow::Result<u16> {
        let http = free_port();
        let mut all = args.to_vec();
        all.extend(["--http-listen".to_string(), format!("127.0.0.1:{http}")]);
        self.start_as(name, binary, &all, env)?;
        self.wait_listening(name, http, Duration::from_secs(60))?;
        Ok(http)
    }

    /// Starts `anpr-config` on free ports; returns its gRPC URL.
    pub fn start_config(&mut self, env: &[(&str, String)]) -> anyhow::Result<String> {
        let grpc = free_port();
        let http = free_port();
        self.start(
            "anpr-config",
            &[
                "--grpc-listen".into(),
                format!("127.0.0.1:{grpc}"),
                "--http-listen".into(),
                format!("127.0.0.1:{http}"),
            ],
            env,
        )?;
        self.wait_listening("anpr-config", grpc, Duration::from_secs(60))?;
        Ok(format!("http://127.0.0.1:{grpc}"))
    }

    /// Starts `anpr-vms-sim` (its fixture cameras, one user `admin` with
    /// `password`, the 6.1 API) on a free port; returns the port.
    pub fn start_vms_sim(&mut self, password: &str) -> anyhow::Result<u16> {
        self.start(
            "anpr-vms-sim",
            &[
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--profile".into(),
                "6.1".into(),
                "--login".into(),
                "admin".into(),
            ],
            &[
                ("ANPR_VMS_SIM_PASSWORD", password.to_string()),
                ("RUST_LOG", "info".to_string()),
            ],
        )?;
        self.wait_output(
            "anpr-vms-sim",
            "anpr-vms-sim listening on",
            Duration::from_secs(30),
        )?;
        listening_port(&self.get("anpr-vms-sim")?.output())
    }

    /// The service started as `name`.
    pub fn get(&self, name: &str) -> anyhow::Result<&ServiceProcess> {
        self.list
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, process)| process)
            .with_context(|| format!("no service {name} was started"))
    }

    /// Kills the service started as `name` at once (SIGKILL: a crash, no
    /// shutdown work); returns what it printed.
    pub fn kill(&mut self, name: &str) -> anyhow::Result<String> {
        let index = self
            .list
            .iter()
            .position(|(n, _)| n == name)
            .with_context(|| format!("no service {name} was started"))?;
        let (_, mut process) = self.list.remove(index);
        process.kill();
        Ok(process.output())
    }

    /// Names of the services, in start order.
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// Waits until something accepts connections on `port`.
    pub fn wait_listening(&self, name: &str, port: u16, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.check_abort()?;
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "{name} does not listen on {port} after {timeout:?}; it printed:\n{}",
            self.get(name)?.output()
        )
    }

    /// Waits until `name` printed `needle`.
    pub fn wait_output(&self, name: &str, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        let process = self.get(name)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.check_abort()?;
            if process.output().contains(needle) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "{name} did not print {needle:?} within {timeout:?}; it printed:\n{}",
            process.output()
        )
    }

    /// The last `lines` lines each service printed, for a failure report.
    pub fn tails(&self, lines: usize) -> String {
        let mut report = String::new();
        for (name, service) in &self.list {
            let output = service.output();
            let all: Vec<&str> = output.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            report.push_str(&format!(
                "\n===== {name} (last {} lines)\n{}\n",
                tail.len(),
                tail.join("\n")
            ));
        }
        report
    }

    /// Writes everything each service printed to `<dir>/<name>.log`, when
    /// the environment names a folder in `ANPR_E2E_LOG_DIR` (the tails of a
    /// failure report rarely reach back to the cause); returns the folder.
    pub fn save_outputs(&self) -> Option<PathBuf> {
        let dir = PathBuf::from(std::env::var_os("ANPR_E2E_LOG_DIR")?);
        if let Err(error) = std::fs::create_dir_all(&dir) {
            eprintln!("cannot create {}: {error}", dir.display());
            return None;
        }
        for (name, service) in &self.list {
            let path = dir.join(format!("{name}.log"));
            if let Err(error) = std::fs::write(&path, service.output()) {
                eprintln!("cannot write {}: {error}", path.display());
            }
        }
        Some(dir)
    }

    /// Stops the services in reverse order of start with SIGTERM; returns
    /// the names of those that did not exit cleanly.
    pub fn stop(&mut self) -> Vec<String> {
        let mut unclean = Vec::new();
        while let Some((name, mut service)) = self.list.pop() {
            if !service.terminate() {
                unclean.push(name);
            }
        }
        unclean
    }
}

impl Drop for Services {
    /// Kills what is still running, the last started first.
    fn drop(&mut self) {
        while let Some((_, mut service)) = self.list.pop() {
            service.kill();
        }
    }
}

/// Runs `f`, turning a panic (the test kit's way of failing) into an error.
pub fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> anyhow::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".to_string());
        anyhow::anyhow!("{what}: {message}")
    })
}

/// The port in the simulator's "anpr-vms-sim listening on 127.0.0.1:PORT ..." line.
pub fn listening_port(output: &str) -> anyhow::Result<u16> {
    output
        .lines()
        .find_map(|line| line.split("anpr-vms-sim listening on ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .with_context(|| format!("no port in the simulator's output:\n{output}"))
}

/// Runs `anprctl` from `bin_dir` against the config service; its stdout, or
/// an error with everything it printed.
pub fn anprctl(
    bin_dir: &Path,
    config_url: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<String> {
    let program = find_bin_in(bin_dir, "anprctl")?;
    let mut child = Command::new(&program)
        .args(args)
        .env("ANPR_CONFIG_URL", config_url)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {}", program.display()))?;
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().context("anprctl has no stdin")?;
        writeln!(pipe, "{text}").context("writing to anprctl")?;
    }
    let output = child.wait_with_output().context("waiting for anprctl")?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        bail!(
            "anprctl {} failed ({}):\n{stdout}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// Registers the VMS simulator on `127.0.0.1:port` as target `name`
/// (login `admin`, Detect and Lost) with `anprctl vms add`, the password on
/// standard input, as an operator would.
pub fn add_simulator_target(
    bin_dir: &Path,
    config_url: &str,
    name: &str,
    port: u16,
    password: &str,
) -> anyhow::Result<()> {
    let port = port.to_string();
    anprctl(
        bin_dir,
        config_url,
        &[
            "vms",
            "add",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--login",
            "admin",
            "--events",
            "both",
            "--password-stdin",
        ],
        Some(password),
    )
    .map(|_| ())
}

/// A plain HTTP/1.1 GET on 127.0.0.1; the body as text when the answer is 200.
pub fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .with_context(|| format!("reading the answer to GET {path}"))?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP response to GET {path}: {response}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {head}\n{body}");
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(dechunk(body));
    }
    Ok(body.to_string())
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulators_port_is_found_in_its_output() {
        let output = "x\nanpr-vms-sim listening on 127.0.0.1:41234 profile 6.1 cert-sha256 ab\n";
        assert_eq!(listening_port(output).ok(), Some(41234));
        assert!(listening_port("nothing").is_err());
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }

    #[test]
    fn a_panic_becomes_an_error() {
        let result: anyhow::Result<()> = no_panic("doing it", || panic!("it broke"));
        let message = result.map_err(|err| err.to_string()).err();
        assert_eq!(message.as_deref(), Some("doing it: it broke"));
    }
}
