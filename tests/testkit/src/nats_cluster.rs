use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::nats::{command, log_tail};

/// How long a start or a restart may take until JetStream is usable.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Log lines of each node shown when a cluster does not come up.
const LOG_TAIL_LINES: usize = 30;

/// A cluster of `nats-server`s with JetStream, each on free loopback ports
/// and with a store of its own, for tests that kill and restart one node.
///
/// Nodes are numbered from 0; node `i` is named `n{i+1}` (`n1`, `n2`, ...),
/// the name `/jsz` and stream info report as the leader or a replica.
pub struct NatsCluster {
    dir: TempDir,
    nodes: Vec<Node>,
}

struct Node {
    name: String,
    port: u16,
    cluster_port: u16,
    monitor_port: u16,
    child: Option<Child>,
}

impl NatsCluster {
    /// Starts `nodes` servers that route to each other (cluster `anpr-test`)
    /// and waits until every one listens and reports a JetStream meta leader.
    ///
    /// Free ports are picked up front, so a node may find one taken by then
    /// (another node's outgoing route uses an ephemeral port); the cluster is
    /// then started again on other ports, up to three times.
    pub fn start(nodes: usize) -> Self {
        let mut attempt = 1;
        loop {
            match std::panic::catch_unwind(|| Self::start_once(nodes)) {
                Ok(cluster) => return cluster,
                Err(failure) if attempt >= 3 => std::panic::resume_unwind(failure),
                Err(_) => {
                    eprintln!(
                        "NATS cluster did not start (attempt {attempt}); again on other ports"
                    );
                    attempt += 1;
                }
            }
        }
    }

    fn start_once(nodes: usize) -> Self {
        assert!(nodes > 0, "a NATS cluster needs at least one node");
        let dir = tempfile::tempdir().expect("temporary NATS cluster directory");
        let ports = distinct_free_ports(nodes * 3);
        let nodes: Vec<Node> = ports
            .chunks_exact(3)
            .enumerate()
            .map(|(i, ports)| Node {
                name: format!("n{}", i + 1),
                port: ports[0],
                cluster_port: ports[1],
                monitor_port: ports[2],
                child: None,
            })
            .collect();
        let mut cluster = NatsCluster { dir, nodes };
        for i in 0..cluster.nodes.len() {
            cluster.write_config(i);
        }
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i);
        }
        cluster.wait_ready();
        cluster
    }

    /// Every node's client URL, comma separated:
    /// `nats://127.0.0.1:<p1>,nats://127.0.0.1:<p2>,...` (the `NATS_URL` form).
    ///
    /// async-nats 0.51 does not split such a string itself (`connect` parses it
    /// as one URL and fails); pass [`urls`](Self::urls) to it instead.
    pub fn url(&self) -> String {
        self.urls().join(",")
    }

    /// Every node's client URL, in node order.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.node_url(i)).collect()
    }

    /// `nats://127.0.0.1:<port>` of node `i`.
    pub fn node_url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.node(i).port)
    }

    /// The client port of node `i`.
    pub fn node_port(&self, i: usize) -> u16 {
        self.node(i).port
    }

    /// The server name of node `i` (`n{i+1}`).
    pub fn node_name(&self, i: usize) -> &str {
        &self.node(i).name
    }

    /// Whether node `i` runs (it was not stopped, or was restarted since).
    pub fn is_running(&self, i: usize) -> bool {
        self.node(i).child.is_some()
    }

    /// The number of nodes, running or stopped.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a cluster has at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The JetStream meta leader's name as the first running node sees it,
    /// if it sees one.
    pub fn meta_leader(&self) -> Option<String> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .find_map(|node| jsz_meta_leader(node.monitor_port))
    }

    /// Kills node `i` at once (SIGKILL, no shutdown); its store stays for
    /// [`restart_node`](Self::restart_node). Does not wait for the others to
    /// elect new leaders: see [`wait_for_meta_leader`](Self::wait_for_meta_leader).
    pub fn stop_node(&mut self, i: usize) {
        if let Some(mut child) = self.node_mut(i).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again on the same ports with the same store, and waits
    /// until it listens and every running node reports a meta leader.
    pub fn restart_node(&mut self, i: usize) {
        self.stop_node(i);
        self.spawn(i);
        self.wait_ready();
    }

    /// Waits until every running node reports the same JetStream meta leader,
    /// and that leader is a running node (after a stop, the survivors report
    /// the killed leader until they notice it is gone).
    pub fn wait_for_meta_leader(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let seen = self.meta_leaders();
            let running: HashSet<&str> = self
                .nodes
                .iter()
                .filter(|node| node.child.is_some())
                .map(|node| node.name.as_str())
                .collect();
            let agreed = match seen.first() {
                Some((_, Some(first))) => seen
                    .iter()
                    .all(|(_, leader)| leader.as_deref() == Some(first.as_str())),
                _ => false,
            };
            if agreed
                && seen
                    .iter()
                    .all(|(_, leader)| leader.as_deref().is_some_and(|l| running.contains(l)))
            {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "the running nodes did not agree on a JetStream meta leader within {} s \
                     (node: leader seen) {seen:?}",
                    READY_TIMEOUT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Each running node's name and the meta leader its `/jsz` reports.
    fn meta_leaders(&self) -> Vec<(String, Option<String>)> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| (node.name.clone(), jsz_meta_leader(node.monitor_port)))
            .collect()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        for i in 0..self.nodes.len() {
            if self.nodes[i].child.is_none() {
                continue;
            }
            let port = self.nodes[i].port;
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break;
                }
                let exited = self.nodes[i]
                    .child
                    .as_mut()
                    .and_then(|child| child.try_wait().ok().flatten());
                if let Some(status) = exited {
                    self.fail(&format!(
                        "nats-server {} exited ({status}) before listening on {port}",
                        self.nodes[i].name
                    ));
                }
                if Instant::now() >= deadline {
                    self.fail(&format!(
                        "nats-server {} did not listen on {port} within {} s",
                        self.nodes[i].name,
                        READY_TIMEOUT.as_secs()
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.wait_for_meta_leader();
    }

    /// Panics with `message` and the tail of every node's log.
    fn fail(&self, message: &str) -> ! {
        let mut logs = String::new();
        for node in &self.nodes {
            let log = self.log_path(node);
            logs.push_str(&format!(
                "\n--- {} ({}) {} ---\n{}\n",
                node.name,
                if node.child.is_some() {
                    "started"
                } else {
                    "stopped by the test"
                },
                log.display(),
                log_tail(&log, LOG_TAIL_LINES)
            ));
        }
        panic!("{message}; node logs:{logs}");
    }

    fn node(&self, i: usize) -> &Node {
        self.nodes.get(i).unwrap_or_else(|| {
            panic!(
                "node {i} does not exist: the cluster has {} nodes",
                self.nodes.len()
            )
        })
    }

    fn node_mut(&mut self, i: usize) -> &mut Node {
        let len = self.nodes.len();
        self.nodes
            .get_mut(i)
            .unwrap_or_else(|| panic!("node {i} does not exist: the cluster has {len} nodes"))
    }

    fn node_dir(&self, node: &Node) -> PathBuf {
        self.dir.path().join(&node.name)
    }

    fn log_path(&self, node: &Node) -> PathBuf {
        self.node_dir(node).join("nats.log")
    }

    fn config_path(&self, node: &Node) -> PathBuf {
        self.node_dir(node).join("nats.conf")
    }

    fn write_config(&self, i: usize) {
        let node = &self.nodes[i];
        let dir = self.node_dir(node);
        std::fs::create_dir_all(&dir).expect("NATS node directory");
        let routes: Vec<String> = self
            .nodes
            .iter()
            .filter(|other| other.name != node.name)
            .map(|other| format!("\"nats-route://127.0.0.1:{}\"", other.cluster_port))
            .collect();
        let config = format!(
            "server_name: {name}\n\
             listen: \"127.0.0.1:{port}\"\n\
             http: \"127.0.0.1:{monitor}\"\n\
             jetstream {{\n  store_dir: {store}\n}}\n\
             cluster {{\n  name: anpr-test\n  listen: \"127.0.0.1:{cluster}\"\n  routes: [{routes}]\n}}\n",
            name = node.name,
            port = node.port,
            monitor = node.monitor_port,
            store = quoted(&dir.join("jetstream")),
            cluster = node.cluster_port,
            routes = routes.join(", "),
        );
        std::fs::write(self.config_path(node), config).expect("writing NATS node config");
    }

    fn spawn(&mut self, i: usize) {
        let node = &self.nodes[i];
        let child = command(&self.log_path(node))
            .arg("-c")
            .arg(self.config_path(node))
            .spawn()
            .expect("spawning nats-server");
        self.nodes[i].child = Some(child);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i);
        }
    }
}

/// `count` loopback ports that were free a moment ago, all different.
fn distinct_free_ports(count: usize) -> Vec<u16> {
    let mut ports = Vec::with_capacity(count);
    while ports.len() < count {
        let port = crate::free_port();
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

/// A path as a double-quoted string of the NATS config format.
fn quoted(path: &Path) -> String {
    let text = path.to_string_lossy();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The meta leader that the node with monitoring port `port` reports in
/// `GET /jsz`, if it answers and knows one.
fn jsz_meta_leader(port: u16) -> Option<String> {
    meta_leader_in(&http_get(port, "/jsz")?)
}

/// Reads `"meta_cluster":{..."leader":"n2"...}` out of a `/jsz` body.
fn meta_leader_in(body: &str) -> Option<String> {
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let (_, meta) = compact.split_once("\"meta_cluster\":{")?;
    // Only the meta cluster's own fields, before its replica list.
    let own = &meta[..meta.find(['{', '}', '[']).unwrap_or(meta.len())];
    let (_, rest) = own.split_once("\"leader\":\"")?;
    let leader = &rest[..rest.find('"')?];
    (!leader.is_empty()).then(|| leader.to_string())
}

/// The body of a plain HTTP/1.0 GET to `127.0.0.1:port`, if it answers 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?;
    (status == "200").then(|| body.to_string())
}

#[cfg(test)]
mod tests {
    use super::meta_leader_in;

    #[test]
    fn the_meta_leader_is_read_from_jsz() {
        let body = r#"{"server_id":"X","config":{"store_dir":"/tmp"},
            "meta_cluster": {"name": "anpr-test", "leader": "n2", "peer": "p",
            "replicas": [{"name": "n1", "current": true}], "cluster_size": 3}}"#;
        assert_eq!(meta_leader_in(body).as_deref(), Some("n2"));
    }

    #[test]
    fn no_leader_is_none() {
        let without = r#"{"meta_cluster":{"name":"anpr-test","peer":"p",
            "replicas":[{"name":"n1","leader":"x"}],"cluster_size":3}}"#;
        assert_eq!(meta_leader_in(without), None);
        let empty = r#"{"meta_cluster":{"name":"anpr-test","leader":"","cluster_size":3}}"#;
        assert_eq!(meta_leader_in(empty), None);
        assert_eq!(meta_leader_in(r#"{"config":{}}"#), None);
    }
}
