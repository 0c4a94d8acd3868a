//! Camera leases against a real nats-server: replicas split the cameras
//! evenly, never own one camera together, respect their capacity, and take
//! over the cameras of a replica that died (at the TTL) or left (at once); a
//! replica cut off from NATS gives its cameras up before the server lets
//! another replica claim them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anpr_common::lease::{CameraLeases, LeaseOptions};
use anpr_testkit::NatsServer;
use tokio_util::sync::CancellationToken;

const TTL: Duration = Duration::from_secs(2);

struct Replica {
    name: String,
    leases: Option<CameraLeases>,
    /// Cancelling it stops the lease task without releasing: a crash.
    crash: CancellationToken,
}

impl Replica {
    async fn start(
        js: &async_nats::jetstream::Context,
        name: &str,
        capacity: usize,
        cameras: &Arc<Mutex<BTreeSet<String>>>,
        ttl: Duration,
    ) -> Replica {
        let crash = CancellationToken::new();
        let cameras = cameras.clone();
        let leases = CameraLeases::start(
            js.clone(),
            LeaseOptions {
                bucket: "test_leases",
                instance: name.to_string(),
                ttl,
                capacity,
                replicas: 1,
            },
            Arc::new(move || cameras.lock().expect("cameras lock").clone()),
            None,
            &crash,
        )
        .await
        .expect("lease bucket");
        Replica {
            name: name.to_string(),
            leases: Some(leases),
            crash,
        }
    }

    fn owned(&self) -> BTreeSet<String> {
        self.leases
            .as_ref()
            .map(|leases| leases.owned().borrow().clone())
            .unwrap_or_default()
    }
}

fn cameras(n: usize) -> Arc<Mutex<BTreeSet<String>>> {
    Arc::new(Mutex::new((1..=n).map(|i| format!("cam-{i}")).collect()))
}

/// Waits until `done` holds for the replicas' owned sets, checking on every
/// sample that no camera has two owners. Returns how long it took.
async fn wait_until(
    replicas: &[&Replica],
    timeout: Duration,
    what: &str,
    done: impl Fn(&[BTreeSet<String>]) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let owned: Vec<BTreeSet<String>> = replicas.iter().map(|r| r.owned()).collect();
        for (i, a) in owned.iter().enumerate() {
            for b in &owned[i + 1..] {
                let both: Vec<_> = a.intersection(b).collect();
                assert!(both.is_empty(), "cameras owned twice: {both:?}");
            }
        }
        if done(&owned) {
            return started.elapsed();
        }
        let names: Vec<_> = replicas.iter().map(|r| r.name.as_str()).collect();
        assert!(
            started.elapsed() < timeout,
            "{what}: not reached within {timeout:?}; owned by {names:?}: {owned:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sizes(owned: &[BTreeSet<String>]) -> Vec<usize> {
    owned.iter().map(BTreeSet::len).collect()
}

fn union(owned: &[BTreeSet<String>]) -> usize {
    owned.iter().flatten().collect::<BTreeSet<_>>().len()
}

#[tokio::test]
async fn replicas_split_cameras_and_take_over_from_a_dead_one() {
    let nats = NatsServer::start();
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let cams = cameras(6);
    let r1 = Replica::start(&js, "r1", 0, &cams, TTL).await;
    let r2 = Replica::start(&js, "r2", 0, &cams, TTL).await;
    let mut r3 = Replica::start(&js, "r3", 0, &cams, TTL).await;

    wait_until(
        &[&r1, &r2, &r3],
        Duration::from_secs(20),
        "an even split",
        |owned| union(owned) == 6 && sizes(owned) == [2, 2, 2],
    )
    .await;

    // r3 crashes: nothing released, its leases run out at the TTL.
    let orphaned = r3.owned();
    r3.crash.cancel();
    r3.leases.take();
    let took = wait_until(&[&r1, &r2], Duration::from_secs(10), "takeover", |owned| {
        union(owned) == 6
    })
    .await;
    println!("takeover of {orphaned:?} after a crash: {took:?} (lease TTL {TTL:?})");
    // Expiry (4/5 of the TTL) plus one poll: within the TTL on an idle
    // machine; the bound here leaves room for a loaded one.
    assert!(took < TTL * 2, "takeover took {took:?}");
    wait_until(&[&r1, &r2], Duration::from_secs(5), "3 + 3", |owned| {
        sizes(owned) == [3, 3]
    })
    .await;

    // A newcomer gets its share from the others, one camera at a time.
    let r4 = Replica::start(&js, "r4", 0, &cams, TTL).await;
    wait_until(
        &[&r1, &r2, &r4],
        Duration::from_secs(20),
        "rebalanced onto the newcomer",
        |owned| union(owned) == 6 && sizes(owned) == [2, 2, 2],
    )
    .await;

    // A camera removed from the configuration is let go; a new one is taken.
    {
        let mut set = cams.lock().expect("lock");
        set.remove("cam-1");
        set.insert("cam-7".to_string());
    }
    wait_until(
        &[&r1, &r2, &r4],
        Duration::from_secs(10),
        "cam-1 gone, cam-7 owned",
        |owned| {
            union(owned) == 6
                && owned.iter().all(|o| !o.contains("cam-1"))
                && owned.iter().any(|o| o.contains("cam-7"))
        },
    )
    .await;

    // A graceful leave hands over well before the TTL.
    let mut r4 = r4;
    let leaving = r4.leases.take().expect("leases");
    let started = Instant::now();
    leaving.release_all().await;
    wait_until(&[&r1, &r2], Duration::from_secs(10), "handover", |owned| {
        union(owned) == 6
    })
    .await;
    let took = started.elapsed();
    println!("handover after a graceful release: {took:?}");
    for replica in [r1, r2] {
        if let Some(leases) = replica.leases {
            leases.release_all().await;
        }
    }
}

#[tokio::test]
async fn capacity_is_respected_and_spare_cameras_wait() {
    let nats = NatsServer::start();
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let cams = cameras(5);
    let small = Replica::start(&js, "small", 1, &cams, TTL).await;
    let medium = Replica::start(&js, "medium", 2, &cams, TTL).await;
    wait_until(
        &[&small, &medium],
        Duration::from_secs(10),
        "filled to capacity",
        |owned| sizes(owned) == [1, 2],
    )
    .await;
    // Over a few polls nothing more is taken: the other two cameras wait
    // for a replica with room.
    tokio::time::sleep(TTL).await;
    assert_eq!(sizes(&[small.owned(), medium.owned()]), [1, 2]);
    let big = Replica::start(&js, "big", 0, &cams, TTL).await;
    wait_until(
        &[&small, &medium, &big],
        Duration::from_secs(10),
        "the rest taken by the replica with room",
        |owned| union(owned) == 5,
    )
    .await;
}

/// A NATS that stops answering (frozen, not closed: every request times
/// out) must not keep a replica's cameras past the fence: the server expires
/// the leases at 4/5 of the TTL, and another replica may then claim them, so
/// the cameras must be given up before that, however many there are.
#[tokio::test]
async fn a_replica_cut_off_from_nats_gives_its_cameras_up_before_they_expire() {
    // Long enough that a renewal timing out (1 s each here) is visible
    // against the expiry: renewed one after another behind the other lease
    // requests, six cameras were held 12 s.
    let ttl = Duration::from_secs(5);
    let expiry = ttl * 4 / 5;
    let nats = NatsServer::start();
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let cams = cameras(6);
    let replica = Replica::start(&js, "alone", 0, &cams, ttl).await;
    wait_until(
        &[&replica],
        Duration::from_secs(10),
        "all six held",
        |owned| union(owned) == 6,
    )
    .await;

    nats.pause();
    let given_up = wait_until(
        &[&replica],
        Duration::from_secs(30),
        "cameras given up",
        |owned| union(owned) == 0,
    )
    .await;
    nats.resume();
    println!("cameras given up {given_up:?} after NATS froze (expiry {expiry:?})");
    assert!(
        given_up < expiry,
        "the cameras were held {given_up:?} after NATS stopped answering, past the \
         leases' expiry ({expiry:?}), when another replica may own them"
    );

    // Once NATS answers again the cameras are claimed back.
    wait_until(
        &[&replica],
        Duration::from_secs(20),
        "held again",
        |owned| union(owned) == 6,
    )
    .await;
    if let Some(leases) = replica.leases {
        leases.release_all().await;
    }
}
