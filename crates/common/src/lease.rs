//! Ownership of cameras by leases in a NATS key-value bucket, so that each
//! camera is handled by exactly one replica of a service at a time and a dead
//! replica's cameras move to the others.
//!
//! The bucket (one per service, e.g. [`INGEST_LEASE_BUCKET`]) holds:
//! - `camera.<id>`: the instance holding the camera;
//! - `member.<instance>`: a live replica, with its capacity (`0`: no limit).
//!
//! Every entry expires after the bucket's max age unless renewed. A replica
//! claims a free camera with a create (compare-and-set on "no such key"),
//! renews what it holds with updates that expect the revision it last wrote
//! (a replica that lost a lease finds out on its next renewal and stops), and
//! releases its leases at shutdown by deleting them with the same check.
//! Expiry is the server's clock, so replicas need no synchronised clocks.
//!
//! Fair share: with `n` cameras and `m` live members, a replica claims free
//! cameras while it holds fewer than `ceil(n / m)` (and fewer than its
//! capacity); one that holds two or more than another member with spare
//! capacity releases one camera per poll, so the spread evens out when a
//! replica joins. A replica that cannot renew for three quarters of the
//! expiry gives its cameras up by itself (fencing), before the server lets
//! another replica claim them.
//!
//! [`INGEST_LEASE_BUCKET`]: crate::subjects::INGEST_LEASE_BUCKET

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::jetstream::kv::{CreateErrorKind, Operation, Store, UpdateErrorKind};
use bytes::Bytes;
use futures::StreamExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::{self, BucketSpec};

/// Default lease TTL: how long the cameras of a replica that died stay
/// without an owner, at most.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// Longest time between two reads of the bucket.
const MAX_POLL: Duration = Duration::from_secs(1);
/// How often the wanted cameras are compared with the last poll's.
const CANDIDATE_CHECK: Duration = Duration::from_millis(100);

/// Bucket entries read at the same time when the bucket is polled.
const VIEW_READS_IN_FLIGHT: usize = 32;

const CAMERA_PREFIX: &str = "camera.";
const MEMBER_PREFIX: &str = "member.";

/// How a replica takes part in the leases.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// The bucket, one per service.
    pub bucket: &'static str,
    /// This replica's unique name (a pod name, or host name plus a random
    /// suffix); a KV key token.
    pub instance: String,
    /// Longest time a dead replica's cameras stay without an owner (default
    /// 10 s). Sets the bucket's max age when this replica creates it.
    pub ttl: Duration,
    /// Most cameras this replica takes (0: no limit).
    pub capacity: usize,
    /// Replicas of the bucket's stream when this replica creates it.
    pub replicas: usize,
}

/// The intervals that follow from a TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Max age of the bucket's entries: a lease not renewed for this long is gone.
    pub expiry: Duration,
    /// How often held leases and the membership are renewed.
    pub renew_every: Duration,
    /// How often the bucket is read for free cameras and the spread.
    pub poll_every: Duration,
    /// A lease not confirmed for this long is given up by its holder.
    pub fence_after: Duration,
}

impl Timing {
    /// Expiry at four fifths of the TTL and a poll every tenth (at most
    /// every second), so that a camera whose holder died is claimed again
    /// within the TTL, and one released at shutdown within about a second.
    pub fn for_ttl(ttl: Duration) -> Self {
        let ttl = ttl.max(Duration::from_secs(1));
        Self::for_expiry(ttl * 4 / 5, (ttl / 10).min(MAX_POLL))
    }

    fn for_expiry(expiry: Duration, poll_every: Duration) -> Self {
        Timing {
            expiry,
            renew_every: expiry / 4,
            poll_every: poll_every.max(Duration::from_millis(100)),
            fence_after: expiry * 3 / 4,
        }
    }
}

/// What the bucket says: live members with their capacities, and who holds
/// each camera.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub members: BTreeMap<String, usize>,
    pub holders: BTreeMap<String, String>,
}

/// What a replica should do after reading the bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Free cameras to try to claim, best first.
    pub claim: Vec<String>,
    /// Held cameras to let go.
    pub release: Vec<String>,
}

/// Decides claims and releases for `me`, holding `held`, among the cameras
/// in `candidates`. Pure: the same inputs give the same plan.
pub fn plan(
    me: &str,
    capacity: usize,
    held: &BTreeSet<String>,
    candidates: &BTreeSet<String>,
    view: &View,
) -> Plan {
    let mut plan = Plan::default();
    // Cameras deleted or disabled in the configuration.
    plan.release.extend(held.difference(candidates).cloned());
    let mut keep: Vec<&String> = held.intersection(candidates).collect();
    // Ordered by this replica's preference, so that the cameras released and
    // claimed are stable from one poll to the next.
    keep.sort_by_key(|camera| preference(me, camera));

    let limit = |cap: usize| if cap == 0 { usize::MAX } else { cap };
    if keep.len() > limit(capacity) {
        for camera in keep.drain(limit(capacity)..) {
            plan.release.push(camera.clone());
        }
    }

    let mut counts: BTreeMap<&str, usize> = view
        .members
        .keys()
        .filter(|member| member.as_str() != me)
        .map(|member| (member.as_str(), 0))
        .collect();
    for (camera, holder) in &view.holders {
        if candidates.contains(camera) {
            if let Some(count) = counts.get_mut(holder.as_str()) {
                *count += 1;
            }
        }
    }
    let mut free: Vec<&String> = candidates
        .iter()
        .filter(|camera| !held.contains(*camera) && !view.holders.contains_key(*camera))
        .collect();
    free.sort_by_key(|camera| preference(me, camera));

    // Once every camera has an owner, one surplus camera at a time moves to
    // a member that has two fewer and room for it; the difference shrinks
    // every poll until it is at most one. Nothing is claimed in the same
    // poll, so that the released camera goes to the other member.
    if free.is_empty() {
        let least_loaded_with_room = counts
            .iter()
            .filter(|(member, count)| {
                let cap = view.members.get(**member).copied().unwrap_or(0);
                **count < limit(cap)
            })
            .map(|(_, count)| *count)
            .min();
        if let Some(least) = least_loaded_with_room {
            if least + 1 < keep.len() {
                if let Some(camera) = keep.pop() {
                    plan.release.push(camera.clone());
                }
                return plan;
            }
        }
    }

    let members = counts.len() + 1;
    let fair = candidates.len().div_ceil(members);
    let room = fair.min(limit(capacity)).saturating_sub(keep.len());
    plan.claim = free.into_iter().take(room).cloned().collect();
    plan
}

/// Different replicas prefer different cameras (rendezvous hashing), so
/// that replicas starting together rarely race for the same ones.
fn preference(me: &str, camera: &str) -> u64 {
    fnv1a_64(format!("{me}\u{0}{camera}").as_bytes())
}

/// A held lease.
#[derive(Debug, Clone, Copy)]
struct Held {
    revision: u64,
    /// When the request that wrote `revision` was sent: the server's expiry
    /// runs from a moment after this.
    confirmed: Instant,
    /// Given up: out of the owned set, key deleted on the next poll (so the
    /// user of the camera has stopped before another replica may start).
    releasing: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error("stopped before the lease bucket {bucket} could be opened")]
    Cancelled { bucket: &'static str },
}

/// A set of camera ids, read on every poll.
pub type CameraSet = Arc<dyn Fn() -> BTreeSet<String> + Send + Sync>;

/// Cameras this replica owns, kept up to date by a background task.
pub struct CameraLeases {
    owned: watch::Receiver<BTreeSet<String>>,
    others: Arc<AtomicUsize>,
    kv: Store,
    instance: String,
    stop: CancellationToken,
    task: JoinHandle<Option<Holder>>,
}

impl CameraLeases {
    /// Opens (or creates) the bucket, retrying until `shutdown`, then keeps
    /// claiming and renewing in the background. `candidates` is called on
    /// every poll for the cameras that should have an owner; `in_use`, if
    /// given, for the cameras still being worked on here: a lease given up
    /// is kept (and renewed) until its camera has left that set, so that
    /// the next holder never starts while this replica still reads it.
    pub async fn start(
        js: jetstream::Context,
        options: LeaseOptions,
        candidates: CameraSet,
        in_use: Option<CameraSet>,
        shutdown: &CancellationToken,
    ) -> Result<Self, LeaseError> {
        let requested = Timing::for_ttl(options.ttl);
        let mut delay = Duration::from_millis(250);
        let kv = loop {
            let opened = bus::open_kv_bucket(
                &js,
                BucketSpec {
                    bucket: options.bucket,
                    description: "ANPR camera leases: which replica handles which camera",
                    history: 1,
                    max_age: Some(requested.expiry),
                    replicas: options.replicas,
                },
            )
            .await;
            match opened {
                Ok(kv) => break kv,
                Err(error @ bus::BusError::Stream { .. }) if is_config_error(&error) => {
                    return Err(error.into())
                }
                Err(error) => {
                    tracing::warn!(%error, bucket = options.bucket, retry_in_ms = delay.as_millis() as u64, "lease bucket not available yet")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Err(LeaseError::Cancelled { bucket: options.bucket }),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        };
        // The bucket's max age rules, whoever created it.
        let expiry = kv
            .status()
            .await
            .ok()
            .map(|status| status.info.config.max_age)
            .filter(|age| !age.is_zero())
            .unwrap_or(requested.expiry);
        let timing = if expiry == requested.expiry {
            requested
        } else {
            tracing::warn!(
                bucket = options.bucket,
                bucket_max_age_ms = expiry.as_millis() as u64,
                wanted_ms = requested.expiry.as_millis() as u64,
                "the lease bucket exists with another max age; following the bucket"
            );
            Timing::for_expiry(expiry, (expiry / 8).min(MAX_POLL))
        };
        let (owned_tx, owned) = watch::channel(BTreeSet::new());
        let stop = shutdown.child_token();
        let others = Arc::new(AtomicUsize::new(0));
        let (kv_handle, instance) = (kv.clone(), options.instance.clone());
        let mut holder = Holder {
            in_use,
            others: others.clone(),
            next_renew: Instant::now(),
            kv,
            options,
            timing,
            held: BTreeMap::new(),
            member_revision: None,
            owned: owned_tx,
        };
        // The first poll before returning: a single replica starts out
        // holding its cameras, and the caller's first look at `owned` is
        // meaningful.
        holder.step(&*candidates).await;
        let task = tokio::spawn(holder.run(candidates, stop.clone()));
        Ok(CameraLeases {
            owned,
            others,
            kv: kv_handle,
            instance,
            stop,
            task,
        })
    }

    /// The cameras owned now; changes are signalled on the receiver.
    pub fn owned(&self) -> watch::Receiver<BTreeSet<String>> {
        self.owned.clone()
    }

    /// Stops claiming and renewing, then deletes every lease held and the
    /// membership, so other replicas take the cameras at once. Call it after
    /// the cameras' work has stopped.
    pub async fn release_all(self) {
        self.leave().await.release_cameras().await;
    }

    /// Stops claiming and renewing and leaves the membership, keeping the
    /// camera leases for now: replicas that leave together then see each
    /// other gone ([`Leaving::other_members`]).
    pub async fn leave(self) -> Leaving {
        self.stop.cancel();
        let holder = self.task.await.ok().flatten();
        if let Some(holder) = &holder {
            holder.leave_membership().await;
        }
        Leaving {
            holder,
            kv: self.kv,
            instance: self.instance,
            others: self.others,
        }
    }
}

/// A replica on its way out: no longer a member, its camera leases still
/// held until [`release_cameras`](Self::release_cameras).
pub struct Leaving {
    holder: Option<Holder>,
    kv: Store,
    instance: String,
    others: Arc<AtomicUsize>,
}

impl Leaving {
    /// Other live replicas: read from the bucket now, or as of the latest
    /// poll when the bucket cannot be read.
    pub async fn other_members(&self) -> usize {
        let read = async {
            let mut keys = self.kv.keys().await.ok()?;
            let mut others = 0;
            while let Some(key) = keys.next().await {
                let key = key.ok()?;
                if key
                    .strip_prefix(MEMBER_PREFIX)
                    .is_some_and(|member| member != self.instance)
                {
                    others += 1;
                }
            }
            Some(others)
        };
        match tokio::time::timeout(Duration::from_secs(2), read).await {
            Ok(Some(others)) => others,
            _ => self.others.load(Ordering::Relaxed),
        }
    }

    /// Deletes every camera lease held, so other replicas take the cameras
    /// at once.
    pub async fn release_cameras(self) {
        if let Some(holder) = self.holder {
            holder.release_everything().await;
        }
    }
}

fn is_config_error(error: &bus::BusError) -> bool {
    // A bucket that exists with settings the server refuses to change is
    // not going to fix itself by retrying; anything else (no leader yet,
    // timeouts) might.
    error.to_string().contains("already in use")
}

struct Holder {
    kv: Store,
    in_use: Option<CameraSet>,
    others: Arc<AtomicUsize>,
    next_renew: Instant,
    options: LeaseOptions,
    timing: Timing,
    held: BTreeMap<String, Held>,
    member_revision: Option<u64>,
    owned: watch::Sender<BTreeSet<String>>,
}

impl Holder {
    async fn run(mut self, candidates: CameraSet, stop: CancellationToken) -> Option<Holder> {
        let mut last_wanted = candidates();
        loop {
            // The next poll comes at the interval, or sooner when the set of
            // cameras changed (a camera added is claimed at once).
            let next_poll = tokio::time::Instant::now() + self.timing.poll_every;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return Some(self),
                    _ = tokio::time::sleep_until(next_poll) => break,
                    _ = tokio::time::sleep(CANDIDATE_CHECK) => {
                        let wanted = candidates();
                        if wanted != last_wanted {
                            last_wanted = wanted;
                            break;
                        }
                    }
                }
            }
            // A poll stuck on a NATS that does not answer (a node lost, a
            // leader being elected) must not keep a lease past its fence
            // deadline: the camera's user would go on while the server lets
            // another replica claim it. The poll is cut short there and the
            // stale leases given up. (A claim cut short may leave a key that
            // nobody renews; it expires within the TTL.)
            match self.fence_deadline() {
                Some(deadline) => {
                    let deadline = tokio::time::Instant::from_std(deadline);
                    if tokio::time::timeout_at(deadline, self.step(&*candidates))
                        .await
                        .is_err()
                    {
                        self.fence();
                        self.publish_owned();
                    }
                }
                None => self.step(&*candidates).await,
            }
        }
    }

    /// When the first held lease is due to be given up unless renewed.
    fn fence_deadline(&self) -> Option<Instant> {
        self.held
            .values()
            .map(|lease| lease.confirmed + self.timing.fence_after)
            .min()
    }

    /// One step: renew when due and give up what could not be renewed in
    /// time, then [`poll`](Self::poll), cut short when the next renewal is
    /// due: renewals come first, or a poll slowed by a struggling NATS (every
    /// request running to its timeout) would let the held leases lapse.
    async fn step(&mut self, candidates: &(dyn Fn() -> BTreeSet<String> + Send + Sync)) {
        if Instant::now() >= self.next_renew {
            self.renew().await;
            self.next_renew = Instant::now() + self.timing.renew_every;
        }
        self.fence();
        let renew_at = tokio::time::Instant::from_std(self.next_renew);
        if tokio::time::timeout_at(renew_at, self.poll(candidates))
            .await
            .is_err()
        {
            tracing::debug!(instance = %self.options.instance, "bucket poll cut short to renew on time");
        }
        self.publish_owned();
    }

    /// Finishes releases, then reads the bucket and claims or releases by
    /// the [`plan`].
    async fn poll(&mut self, candidates: &(dyn Fn() -> BTreeSet<String> + Send + Sync)) {
        self.finish_releases().await;
        let wanted = candidates();
        let Some(view) = self.read_view().await else {
            return;
        };
        let others = view
            .members
            .keys()
            .filter(|member| **member != self.options.instance)
            .count();
        self.others.store(others, Ordering::Relaxed);
        let held = self.kept();
        let plan = plan(
            &self.options.instance,
            self.options.capacity,
            &held,
            &wanted,
            &view,
        );
        for camera in plan.release {
            if let Some(lease) = self.held.get_mut(&camera) {
                tracing::info!(%camera, instance = %self.options.instance, "releasing camera lease");
                lease.releasing = true;
            }
        }
        self.claim(plan.claim).await;
    }

    fn op_timeout(&self) -> Duration {
        self.timing.renew_every.max(Duration::from_millis(500))
    }

    async fn renew(&mut self) {
        let timeout = self.op_timeout();
        let kv = &self.kv;
        let instance = &self.options.instance;
        let membership = async {
            let capacity = Bytes::from(self.options.capacity.to_string());
            let member = format!("{MEMBER_PREFIX}{instance}");
            if let Some(revision) = self.member_revision {
                match tokio::time::timeout(timeout, kv.update(&member, capacity.clone(), revision))
                    .await
                {
                    Ok(Ok(revision)) => return Some(revision),
                    // Expired (or the bucket was purged): join again below.
                    Ok(Err(error)) if error.kind() == UpdateErrorKind::WrongLastRevision => {}
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "renewing the membership failed");
                        return Some(revision);
                    }
                    Err(_) => return Some(revision),
                }
            }
            match tokio::time::timeout(timeout, kv.put(&member, capacity)).await {
                Ok(Ok(revision)) => Some(revision),
                _ => None,
            }
        };
        // The membership and every lease at once: one at a time, a NATS that
        // does not answer would make the last lease wait for every other's
        // timeout first.
        let renewals = self.held.iter().map(|(camera, lease)| {
            let key = format!("{CAMERA_PREFIX}{camera}");
            let value = Bytes::from(instance.clone());
            let revision = lease.revision;
            async move {
                let sent = Instant::now();
                let outcome = tokio::time::timeout(timeout, kv.update(&key, value, revision)).await;
                (camera.clone(), sent, outcome)
            }
        });
        let (member_revision, outcomes) =
            futures::future::join(membership, futures::future::join_all(renewals)).await;
        self.member_revision = member_revision;
        for (camera, sent, outcome) in outcomes {
            match outcome {
                Ok(Ok(revision)) => {
                    if let Some(lease) = self.held.get_mut(&camera) {
                        lease.revision = revision;
                        lease.confirmed = sent;
                    }
                }
                Ok(Err(error)) if error.kind() == UpdateErrorKind::WrongLastRevision => {
                    tracing::warn!(%camera, instance = %self.options.instance, "camera lease lost (expired or taken over)");
                    self.held.remove(&camera);
                }
                Ok(Err(error)) => {
                    tracing::debug!(%camera, %error, "renewing a camera lease failed");
                }
                Err(_) => tracing::debug!(%camera, "renewing a camera lease timed out"),
            }
        }
    }

    /// Gives up leases not confirmed in time: the server may already let
    /// another replica claim them.
    fn fence(&mut self) {
        let limit = self.timing.fence_after;
        let instance = self.options.instance.clone();
        self.held.retain(|camera, lease| {
            let fresh = lease.confirmed.elapsed() < limit;
            if !fresh {
                tracing::warn!(%camera, %instance, "camera lease not renewed in time; giving the camera up");
            }
            fresh
        });
    }

    async fn finish_releases(&mut self) {
        let busy = self
            .in_use
            .as_ref()
            .map(|in_use| in_use())
            .unwrap_or_default();
        let releasing: Vec<(String, u64)> = self
            .held
            .iter()
            .filter(|(camera, lease)| lease.releasing && !busy.contains(*camera))
            .map(|(camera, lease)| (camera.clone(), lease.revision))
            .collect();
        let deletes = releasing
            .iter()
            .map(|(camera, revision)| self.delete(camera, *revision));
        futures::future::join_all(deletes).await;
        for (camera, _) in releasing {
            self.held.remove(&camera);
        }
    }

    async fn delete(&self, camera: &str, revision: u64) {
        let key = format!("{CAMERA_PREFIX}{camera}");
        match tokio::time::timeout(
            self.op_timeout(),
            self.kv.delete_expect_revision(&key, Some(revision)),
        )
        .await
        {
            Ok(Ok(())) => {}
            // Not deleted: it expires at the TTL instead.
            Ok(Err(error)) => tracing::debug!(%camera, %error, "deleting a camera lease failed"),
            Err(_) => tracing::debug!(%camera, "deleting a camera lease timed out"),
        }
    }

    /// Claims free cameras, all at once.
    async fn claim(&mut self, cameras: Vec<String>) {
        let timeout = self.op_timeout();
        let kv = &self.kv;
        let instance = &self.options.instance;
        let claims = cameras.into_iter().map(|camera| async move {
            let key = format!("{CAMERA_PREFIX}{camera}");
            let sent = Instant::now();
            let value = Bytes::from(instance.clone());
            let outcome = tokio::time::timeout(timeout, kv.create(&key, value)).await;
            (camera, sent, outcome)
        });
        for (camera, sent, outcome) in futures::future::join_all(claims).await {
            match outcome {
                Ok(Ok(revision)) => {
                    tracing::info!(%camera, instance = %self.options.instance, "claimed camera lease");
                    self.held.insert(
                        camera,
                        Held {
                            revision,
                            confirmed: sent,
                            releasing: false,
                        },
                    );
                }
                Ok(Err(error)) if error.kind() == CreateErrorKind::AlreadyExists => {}
                Ok(Err(error)) => tracing::debug!(%camera, %error, "claiming a camera failed"),
                Err(_) => tracing::debug!(%camera, "claiming a camera timed out"),
            }
        }
    }

    /// Reads every live entry; `None` when the bucket cannot be read now.
    async fn read_view(&self) -> Option<View> {
        let timeout = self.op_timeout();
        let read = async {
            let mut keys = self.kv.keys().await.ok()?;
            let mut names = Vec::new();
            while let Some(key) = keys.next().await {
                names.push(key.ok()?);
            }
            // The entries a few dozen at a time: one round trip each, and a
            // bucket with hundreds of cameras must still be read within a
            // renewal interval.
            let entries: Vec<_> = futures::stream::iter(names)
                .map(|key| async move {
                    let entry = self.kv.entry(key.clone()).await;
                    (key, entry)
                })
                .buffer_unordered(VIEW_READS_IN_FLIGHT)
                .collect()
                .await;
            let mut view = View::default();
            for (key, entry) in entries {
                let Ok(Some(entry)) = entry else {
                    continue;
                };
                if entry.operation != Operation::Put {
                    continue;
                }
                let value = String::from_utf8_lossy(&entry.value).into_owned();
                if let Some(camera) = key.strip_prefix(CAMERA_PREFIX) {
                    view.holders.insert(camera.to_string(), value);
                } else if let Some(member) = key.strip_prefix(MEMBER_PREFIX) {
                    view.members
                        .insert(member.to_string(), value.trim().parse().unwrap_or(0));
                }
            }
            Some(view)
        };
        tokio::time::timeout(timeout * 2, read).await.ok().flatten()
    }

    /// The cameras held and not being released: what this replica owns.
    fn kept(&self) -> BTreeSet<String> {
        self.held
            .iter()
            .filter(|(_, lease)| !lease.releasing)
            .map(|(camera, _)| camera.clone())
            .collect()
    }

    fn publish_owned(&self) {
        let owned = self.kept();
        self.owned.send_if_modified(|current| {
            if *current == owned {
                false
            } else {
                *current = owned;
                true
            }
        });
    }

    async fn leave_membership(&self) {
        if let Some(revision) = self.member_revision {
            let member = format!("{MEMBER_PREFIX}{}", self.options.instance);
            let _ = tokio::time::timeout(
                self.op_timeout(),
                self.kv.delete_expect_revision(&member, Some(revision)),
            )
            .await;
        }
    }

    async fn release_everything(mut self) {
        self.held
            .values_mut()
            .for_each(|lease| lease.releasing = true);
        self.publish_owned();
        let count = self.held.len();
        self.finish_releases().await;
        tracing::info!(
            released = count,
            instance = %self.options.instance,
            "camera leases released"
        );
    }
}

/// FNV-1a, 64 bits: fixed by its definition, so every replica and every
/// build ranks cameras alike (std's hasher is seeded per process).
fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// A unique instance name: the host name (the pod name on Kubernetes) and a
/// random suffix, so that a restarted process never mistakes its
/// predecessor's leases for its own. Only KV-key-safe characters remain.
pub fn default_instance() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "anpr".to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let suffix = fnv1a_64(format!("{nanos}-{}", std::process::id()).as_bytes()) & 0xff_ffff;
    sanitize_instance(&format!("{host}-{suffix:06x}"))
}

/// Replaces characters that cannot appear in a KV key token.
pub fn sanitize_instance(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn view(members: &[(&str, usize)], holders: &[(&str, &str)]) -> View {
        View {
            members: members.iter().map(|(m, c)| (m.to_string(), *c)).collect(),
            holders: holders
                .iter()
                .map(|(c, h)| (c.to_string(), h.to_string()))
                .collect(),
        }
    }

    #[test]
    fn fnv1a_matches_reference_values() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn timing_puts_takeover_inside_the_ttl() {
        let timing = Timing::for_ttl(Duration::from_secs(10));
        assert_eq!(timing.expiry, Duration::from_secs(8));
        assert_eq!(timing.poll_every, Duration::from_secs(1));
        assert_eq!(
            Timing::for_ttl(Duration::from_secs(60)).poll_every,
            Duration::from_secs(1)
        );
        assert!(timing.expiry + timing.poll_every < Duration::from_secs(10));
        assert!(timing.fence_after < timing.expiry);
        assert!(timing.renew_every * 2 < timing.fence_after);
    }

    #[test]
    fn a_lone_replica_claims_everything_up_to_its_capacity() {
        let cams = set(&["a", "b", "c", "d"]);
        let p = plan("r1", 0, &set(&[]), &cams, &view(&[("r1", 0)], &[]));
        assert_eq!(p.claim.len(), 4);
        let p = plan("r1", 3, &set(&[]), &cams, &view(&[("r1", 3)], &[]));
        assert_eq!(p.claim.len(), 3);
        assert!(p.release.is_empty());
    }

    #[test]
    fn replicas_claim_their_fair_share_only() {
        let cams = set(&["a", "b", "c", "d", "e", "f"]);
        let members = [("r1", 0), ("r2", 0), ("r3", 0)];
        let p = plan("r1", 0, &set(&[]), &cams, &view(&members, &[]));
        assert_eq!(p.claim.len(), 2);
        // Cameras held by others are never claimed.
        let p = plan(
            "r1",
            0,
            &set(&[]),
            &cams,
            &view(&members, &[("a", "r2"), ("b", "r2"), ("c", "r3")]),
        );
        assert_eq!(p.claim.len(), 2);
        assert!(p
            .claim
            .iter()
            .all(|c| ["d", "e", "f"].contains(&c.as_str())));
    }

    #[test]
    fn surplus_moves_one_camera_at_a_time_to_a_newcomer() {
        let cams = set(&["a", "b", "c", "d", "e", "f"]);
        let held = set(&["a", "b", "c"]);
        let v = view(
            &[("r1", 0), ("r2", 0), ("r3", 0)],
            &[
                ("a", "r1"),
                ("b", "r1"),
                ("c", "r1"),
                ("d", "r2"),
                ("e", "r2"),
                ("f", "r2"),
            ],
        );
        let p = plan("r1", 0, &held, &cams, &v);
        assert_eq!(p.release.len(), 1);
        assert!(p.claim.is_empty());
        // While a camera has no owner, nothing moves: the member with room
        // claims it first.
        let v = view(
            &[("r1", 0), ("r2", 0), ("r3", 0)],
            &[
                ("a", "r1"),
                ("b", "r1"),
                ("c", "r1"),
                ("d", "r2"),
                ("e", "r2"),
            ],
        );
        let p = plan("r1", 0, &held, &cams, &v);
        assert_eq!(p, Plan::default());
        let p3 = plan("r3", 0, &set(&[]), &cams, &v);
        assert_eq!(p3.claim, ["f"]);
        // Balanced within one: nothing moves.
        let v = view(
            &[("r1", 0), ("r2", 0), ("r3", 0)],
            &[
                ("a", "r1"),
                ("b", "r1"),
                ("c", "r2"),
                ("d", "r2"),
                ("e", "r3"),
            ],
        );
        let p = plan(
            "r1",
            0,
            &set(&["a", "b"]),
            &set(&["a", "b", "c", "d", "e"]),
            &v,
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn no_release_to_a_member_without_room() {
        let cams = set(&["a", "b", "c", "d"]);
        let v = view(
            &[("r1", 0), ("r2", 1)],
            &[("a", "r1"), ("b", "r1"), ("c", "r1"), ("d", "r2")],
        );
        let p = plan("r1", 0, &set(&["a", "b", "c"]), &cams, &v);
        assert!(p.release.is_empty(), "{p:?}");
    }

    #[test]
    fn removed_cameras_and_capacity_overflow_are_released() {
        let p = plan(
            "r1",
            1,
            &set(&["a", "b", "gone"]),
            &set(&["a", "b"]),
            &view(&[("r1", 1)], &[("a", "r1"), ("b", "r1"), ("gone", "r1")]),
        );
        assert_eq!(p.release.len(), 2);
        assert!(p.release.contains(&"gone".to_string()));
        assert!(p.claim.is_empty());
    }

    #[test]
    fn a_dead_members_expired_cameras_are_claimed() {
        // r3 died: its member key and its leases expired together.
        let cams = set(&["a", "b", "c", "d", "e", "f"]);
        let v = view(
            &[("r1", 0), ("r2", 0)],
            &[("a", "r1"), ("b", "r1"), ("c", "r2"), ("d", "r2")],
        );
        let p = plan("r1", 0, &set(&["a", "b"]), &cams, &v);
        assert_eq!(p.claim.len(), 1);
        let p2 = plan("r2", 0, &set(&["c", "d"]), &cams, &v);
        assert_eq!(p2.claim.len(), 1);
    }

    #[test]
    fn instance_names_are_key_safe() {
        assert_eq!(sanitize_instance("pod.ns:1"), "pod_ns_1");
        let name = default_instance();
        assert!(name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
