use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One of the project's binaries running as a child process. Its stdout and
/// stderr are collected (and kept across restarts) so a test can wait for a
/// line or scan everything it printed.
pub struct ServiceProcess {
    program: std::path::PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    child: Option<Child>,
    output: Arc<Mutex<String>>,
}

impl ServiceProcess {
    /// Starts `program` with `args` and extra environment `envs`.
    pub fn start(program: impl AsRef<Path>, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut process = ServiceProcess {
            program: program.as_ref().to_path_buf(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            child: None,
            output: Arc::new(Mutex::new(String::new())),
        };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("spawning {}: {err}", self.program.display()));
        if let Some(stdout) = child.stdout.take() {
            collect(stdout, self.output.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            collect(stderr, self.output.clone());
        }
        self.child = Some(child);
    }

    /// Everything the process printed so far, over all its runs.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .map(|text| text.clone())
            .unwrap_or_default()
    }

    /// Waits until the output contains `needle`; panics with the output if not.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.output().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{} did not print {needle:?} within {timeout:?}; it printed:\n{}",
            self.program.display(),
            self.output()
        );
    }

    /// Sends SIGTERM and waits for the exit; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same command again, keeping the collected output.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
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
