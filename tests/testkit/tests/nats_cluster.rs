//! The test kit's NATS cluster: three real nodes, one killed and restarted
//! while a client publishes to a stream replicated on all three.

use std::time::{Duration, Instant};

use anpr_testkit::NatsCluster;
use async_nats::jetstream::{self, consumer::pull, context::PublishErrorKind};
use futures::StreamExt;

const STREAM: &str = "CLUSTER_TEST";
const SUBJECT: &str = "cluster.test.events";
/// Tries of one publish: a stream leader election takes a few seconds.
const PUBLISH_ATTEMPTS: u32 = 40;
const PUBLISH_RETRY_DELAY: Duration = Duration::from_millis(250);
/// How long a step may wait for the cluster to settle (reconnect, catch up).
const SETTLE: Duration = Duration::from_secs(20);

fn payload(i: usize) -> String {
    format!("message {i:03}")
}

/// Publishes message `i` until JetStream acknowledges it, and returns its
/// stream sequence and the attempts it took. Every attempt carries the same
/// `Nats-Msg-Id`, so one whose ack was lost is not stored twice.
async fn publish(js: &jetstream::Context, i: usize) -> (u64, u32) {
    let mut errors = Vec::new();
    for attempt in 1..=PUBLISH_ATTEMPTS {
        let message = jetstream::message::PublishMessage::build()
            .payload(payload(i).into())
            .message_id(format!("cluster-test-{i}"));
        let result = match js.send_publish(SUBJECT, message).await {
            Ok(ack) => ack.await,
            Err(err) => Err(err),
        };
        match result {
            Ok(ack) => return (ack.sequence, attempt),
            Err(err) => {
                assert!(
                    !matches!(err.kind(), PublishErrorKind::MaxPayloadExceeded),
                    "{err}"
                );
                errors.push(err.to_string());
            }
        }
        tokio::time::sleep(PUBLISH_RETRY_DELAY).await;
    }
    panic!("message {i} was not acknowledged after {PUBLISH_ATTEMPTS} attempts: {errors:?}");
}

/// Publishes messages `range` in order, asserting that message `i` is stored
/// at sequence `i + 1`; returns how many publishes needed a retry.
async fn publish_all(js: &jetstream::Context, range: std::ops::Range<usize>) -> usize {
    let mut retried = 0;
    for i in range {
        let (sequence, attempts) = publish(js, i).await;
        assert_eq!(sequence, i as u64 + 1, "message {i} stored out of place");
        if attempts > 1 {
            retried += 1;
        }
    }
    retried
}

/// Every payload of the stream, read with an ordered consumer from the start.
async fn read_all(js: &jetstream::Context, count: usize) -> Result<Vec<String>, String> {
    let mut stream = js
        .get_stream(STREAM)
        .await
        .map_err(|err| format!("stream lookup: {err}"))?;
    let stored = stream
        .info()
        .await
        .map_err(|err| format!("stream info: {err}"))?
        .state
        .messages;
    if stored != count as u64 {
        return Err(format!("the stream holds {stored} messages, not {count}"));
    }
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: SUBJECT.to_string(),
            ..Default::default()
        })
        .await
        .map_err(|err| format!("ordered consumer: {err}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|err| format!("consumer messages: {err}"))?;
    let mut payloads = Vec::with_capacity(count);
    while payloads.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .map_err(|_| format!("no message after {} of {count}", payloads.len()))?
            .ok_or("the consumer ended")?
            .map_err(|err| format!("consumer: {err}"))?;
        payloads.push(String::from_utf8_lossy(&message.payload).into_owned());
    }
    Ok(payloads)
}

/// [`read_all`], retried while the cluster settles.
async fn read_all_settled(js: &jetstream::Context, count: usize) -> Vec<String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        match read_all(js, count).await {
            Ok(payloads) => return payloads,
            Err(err) if Instant::now() < deadline => {
                eprintln!("reading the stream back: {err}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(err) => panic!("reading the stream back failed: {err}"),
        }
    }
}

/// Waits until the stream's RAFT group counts `node` as an up-to-date member.
async fn wait_until_current(js: &jetstream::Context, node: &str) {
    let deadline = Instant::now() + SETTLE;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(info) = js.get_stream(STREAM).await.map(|s| s.cached_info().clone()) {
            if let Some(cluster) = &info.cluster {
                let leads = cluster.leader.as_deref() == Some(node);
                let current = cluster
                    .replicas
                    .iter()
                    .any(|peer| peer.name == node && peer.current && !peer.offline);
                if leads || current {
                    return;
                }
                last = format!("{cluster:?}");
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{node} did not catch up with the stream within {SETTLE:?}: {last}");
}

async fn wait_for_reconnect_away_from(client: &async_nats::Client, port: u16) {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        if client.connection_state() == async_nats::connection::State::Connected
            && client.server_info().port != port
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the client did not reconnect to another node within {SETTLE:?} (state {}, server port {})",
        client.connection_state(),
        client.server_info().port
    );
}

#[test]
fn the_cluster_urls_name_every_node() {
    let cluster = NatsCluster::start(3);
    assert_eq!(cluster.len(), 3);
    let urls = cluster.urls();
    assert_eq!(cluster.url(), urls.join(","));
    for (i, url) in urls.iter().enumerate() {
        assert_eq!(url, &cluster.node_url(i));
        assert_eq!(url, &format!("nats://127.0.0.1:{}", cluster.node_port(i)));
        assert_eq!(cluster.node_name(i), format!("n{}", i + 1));
        assert!(cluster.is_running(i));
    }
    let leader = cluster.meta_leader().expect("a meta leader");
    assert!(["n1", "n2", "n3"].contains(&leader.as_str()), "{leader}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_stream_keeps_every_message_while_a_node_is_killed_and_restarted() {
    let started = Instant::now();
    let mut cluster = NatsCluster::start(3);

    // The `NATS_URL` form, split: async-nats 0.51 takes a list of URLs but
    // fails on one comma-separated string ("invalid port number"). In order,
    // so the client is on node 0, and the stop below forces a reconnect to
    // another node.
    let url = cluster.url();
    let servers: Vec<&str> = url.split(',').collect();
    assert_eq!(servers.len(), 3);
    let client = async_nats::ConnectOptions::new()
        .retain_servers_order()
        .connection_timeout(Duration::from_secs(2))
        .connect(servers)
        .await
        .expect("connecting to the cluster");
    assert_eq!(client.server_info().port, cluster.node_port(0));
    assert_eq!(client.server_info().server_name, cluster.node_name(0));
    let mut js = jetstream::new(client.clone());
    js.set_timeout(Duration::from_secs(2));

    let stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: STREAM.to_string(),
            subjects: vec![SUBJECT.to_string()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .expect("creating the replicated stream");
    let replicas = stream.cached_info().config.num_replicas;
    assert_eq!(replicas, 3);

    let retried = publish_all(&js, 0..50).await;
    eprintln!("50 messages published on 3 nodes ({retried} retried)");

    let leader_before = cluster.meta_leader();
    cluster.stop_node(0);
    assert!(!cluster.is_running(0));
    wait_for_reconnect_away_from(&client, cluster.node_port(0)).await;
    tokio::task::block_in_place(|| cluster.wait_for_meta_leader());
    let leader_after = cluster.meta_leader().expect("a meta leader on two nodes");
    assert_ne!(leader_after, cluster.node_name(0));
    eprintln!("meta leader {leader_before:?} -> {leader_after}");
    eprintln!(
        "node n1 killed; the client is now on port {} ({:?})",
        client.server_info().port,
        started.elapsed()
    );

    let retried = publish_all(&js, 50..100).await;
    eprintln!(
        "50 messages published on 2 nodes ({retried} retried, {:?})",
        started.elapsed()
    );
    let expected: Vec<String> = (0..100).map(payload).collect();
    assert_eq!(
        read_all_settled(&js, 100).await,
        expected,
        "read back with node n1 stopped"
    );

    tokio::task::block_in_place(|| cluster.restart_node(0));
    assert!(cluster.is_running(0));
    wait_until_current(&js, cluster.node_name(0)).await;
    eprintln!("node n1 restarted and current ({:?})", started.elapsed());

    // Read through the restarted node itself.
    let node0 = async_nats::connect(cluster.node_url(0))
        .await
        .expect("connecting to the restarted node");
    assert_eq!(node0.server_info().server_name, cluster.node_name(0));
    let mut js0 = jetstream::new(node0);
    js0.set_timeout(Duration::from_secs(2));
    assert_eq!(
        read_all_settled(&js0, 100).await,
        expected,
        "read back through the restarted node"
    );
    assert_eq!(
        read_all_settled(&js, 100).await,
        expected,
        "read back by the first client after the restart"
    );
    eprintln!("done in {:?}", started.elapsed());
}
