use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A `nats-server -js` of the test's own, on a free loopback port.
pub struct NatsServer {
    port: u16,
    store: TempDir,
    child: Option<Child>,
}

/// The nats-server binary: `$NATS_SERVER_BIN`, else the first of PATH and
/// Debian's `/usr/sbin`.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("nats-server not found on PATH or in /usr/sbin: apt-get install nats-server, or set NATS_SERVER_BIN")
        })
}

impl NatsServer {
    /// Starts a server with JetStream on a port the OS chose.
    pub fn start() -> Self {
        let store = tempfile::tempdir().expect("temporary JetStream directory");
        let ports_dir = store.path().join("ports");
        std::fs::create_dir_all(&ports_dir).expect("ports directory");
        let child = spawn(store.path(), "-1", Some(&ports_dir));
        let port = read_port(&ports_dir, child.id());
        let mut server = NatsServer {
            port,
            store,
            child: Some(child),
        };
        server.wait_ready();
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server; its store stays for [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing is
    /// answered, as with a node that hangs or a network that drops packets.
    /// Requests time out instead of failing fast.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [`pause`](Self::pause)d server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let Some(child) = &self.child else {
            panic!("nats-server is not running");
        };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {signal} nats-server: {status}");
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) {
        self.stop();
        let child = spawn(self.store.path(), &self.port.to_string(), None);
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        if !crate::wait_for_port(self.port, Duration::from_secs(15)) {
            let log =
                std::fs::read_to_string(self.store.path().join("nats.log")).unwrap_or_default();
            panic!(
                "nats-server did not listen on {} within 15 s; its log:\n{log}",
                self.port
            );
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `nats-server` command that logs to `log` and has no stdio: the caller
/// adds the rest of the arguments.
pub(crate) fn command(log: &Path) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("-l")
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// The last `lines` lines of a server's log file, for failure messages.
pub(crate) fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log)
        .unwrap_or_else(|err| format!("(cannot read {}: {err})", log.display()));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn spawn(store: &Path, port: &str, ports_dir: Option<&Path>) -> Child {
    let mut command = command(&store.join("nats.log"));
    command
        .args(["-a", "127.0.0.1", "-p", port, "-js", "-sd"])
        .arg(store.join("jetstream"));
    if let Some(dir) = ports_dir {
        command.arg("--ports_file_dir").arg(dir);
    }
    command.spawn().expect("spawning nats-server")
}

/// Reads the client port nats-server wrote to `<dir>/nats-server_<pid>.ports`.
fn read_port(dir: &Path, pid: u32) -> u16 {
    let file = dir.join(format!("nats-server_{pid}.ports"));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            // {"nats":["nats://127.0.0.1:PORT"],...}
            let port = text
                .split("nats://127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .and_then(|digits| digits.parse().ok());
            if let Some(port) = port {
                return port;
            }
        }
        assert!(
            Instant::now() < deadline,
            "nats-server wrote no ports file at {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
