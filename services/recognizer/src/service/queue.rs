//! The bounded queue between the frame subscription and the workers.
//!
//! Cameras keep sending while the workers are busy; a frame that waited long
//! is worth less than the one just captured, and no camera may be starved
//! because its frames happen to arrive just before another camera's. So:
//! - the workers take the oldest frame of the camera served longest ago:
//!   under overload every camera gets its turn in rotation;
//! - the queue never holds more than its capacity: a push into a full queue
//!   pushes out the oldest frame of the camera with the most frames waiting,
//!   among those the camera served most recently (possibly the frame just
//!   pushed), and the caller counts it.
//!
//! With one camera this is a drop-oldest FIFO. A FIFO alone is not enough
//! with several: cameras started together send in a fixed phase, and the
//! same cameras' frames were then always the ones pushed out, so those
//! cameras were never read at all.

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

use tokio::sync::Notify;

/// A bounded queue keyed by camera whose `push` never waits and whose `pop`
/// serves the cameras in turn.
pub struct FairQueue<K, T> {
    capacity: usize,
    state: Mutex<State<K, T>>,
    ready: Notify,
}

struct State<K, T> {
    /// The frames waiting per camera, oldest first, each with the serial of
    /// its push. No empty entries.
    waiting: HashMap<K, VecDeque<(u64, T)>>,
    /// Frames waiting in all.
    len: usize,
    /// The serial of each camera's last pop (absent: never served).
    served: HashMap<K, u64>,
    serial: u64,
    closed: bool,
}

impl<K: Eq + Hash + Clone, T> State<K, T> {
    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// When `camera` was last served; 0 for never.
    fn served(&self, camera: &K) -> u64 {
        self.served.get(camera).copied().unwrap_or(0)
    }

    fn oldest(frames: &VecDeque<(u64, T)>) -> u64 {
        frames.front().map_or(u64::MAX, |(pushed, _)| *pushed)
    }

    /// The camera whose turn is next: served longest ago, then the one whose
    /// oldest frame waited longest.
    fn next_turn(&self) -> Option<K> {
        self.waiting
            .iter()
            .min_by_key(|(camera, frames)| (self.served(camera), Self::oldest(frames)))
            .map(|(camera, _)| camera.clone())
    }

    /// The camera that gives up a frame when the queue is full: the most
    /// frames waiting, then served most recently, then the stalest frame.
    fn gives_way(&self) -> Option<K> {
        self.waiting
            .iter()
            .max_by_key(|(camera, frames)| {
                (
                    frames.len(),
                    self.served(camera),
                    Reverse(Self::oldest(frames)),
                )
            })
            .map(|(camera, _)| camera.clone())
    }

    /// Takes the oldest frame of `camera`.
    fn take(&mut self, camera: &K) -> Option<T> {
        let frames = self.waiting.get_mut(camera)?;
        let (_, item) = frames.pop_front()?;
        if frames.is_empty() {
            self.waiting.remove(camera);
        }
        self.len -= 1;
        Some(item)
    }
}

/// What [`FairQueue::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<T> {
    /// Queued; nothing was dropped.
    Queued,
    /// This item was dropped to keep the bound (see the module notes); it
    /// may be the item just pushed.
    Displaced(T),
    /// The queue is closed: the item was not queued and comes back.
    Closed(T),
}

impl<K: Eq + Hash + Clone, T> FairQueue<K, T> {
    /// A queue holding at most `capacity` items (at least one).
    pub fn new(capacity: usize) -> Self {
        FairQueue {
            capacity: capacity.max(1),
            state: Mutex::new(State {
                waiting: HashMap::new(),
                len: 0,
                served: HashMap::new(),
                serial: 0,
                closed: false,
            }),
            ready: Notify::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K, T>> {
        // A panic while holding this lock leaves the queue consistent (each
        // operation changes the maps in one step), so carry on.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `item` behind `camera`'s waiting frames, dropping what the
    /// bound requires.
    pub fn push(&self, camera: K, item: T) -> Pushed<T> {
        let outcome = {
            let mut state = self.lock();
            if state.closed {
                return Pushed::Closed(item);
            }
            let serial = state.next_serial();
            state
                .waiting
                .entry(camera)
                .or_default()
                .push_back((serial, item));
            state.len += 1;
            if state.len > self.capacity {
                match state.gives_way().and_then(|camera| state.take(&camera)) {
                    Some(dropped) => Pushed::Displaced(dropped),
                    None => Pushed::Queued,
                }
            } else {
                Pushed::Queued
            }
        };
        self.ready.notify_one();
        outcome
    }

    /// Items waiting now.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops taking items; what is queued can still be popped.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
    }

    /// The next camera's item, waiting for one; `None` once the queue is
    /// closed and empty.
    pub async fn pop(&self) -> Option<T> {
        loop {
            // Register interest before looking, so a push or close between
            // the look and the wait still wakes this caller.
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                let next = state.next_turn();
                if let Some((camera, item)) =
                    next.and_then(|camera| state.take(&camera).map(|item| (camera, item)))
                {
                    let serial = state.next_serial();
                    state.served.insert(camera, serial);
                    let more = state.len > 0;
                    drop(state);
                    // notify_one wakes one waiter per push; pass the turn on
                    // when items remain, so no worker sleeps beside a backlog.
                    if more {
                        self.ready.notify_one();
                    }
                    return Some(item);
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_camera_is_a_drop_oldest_fifo() {
        let queue = FairQueue::new(2);
        assert_eq!(queue.push("a", 1), Pushed::Queued);
        assert_eq!(queue.push("a", 2), Pushed::Queued);
        assert_eq!(queue.push("a", 3), Pushed::Displaced(1));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.pop().await, Some(2));
        assert_eq!(queue.pop().await, Some(3));
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn a_full_queue_takes_the_place_of_the_camera_with_most_waiting() {
        let queue = FairQueue::new(2);
        queue.push("a", "a1");
        queue.push("a", "a2");
        assert_eq!(queue.push("b", "b1"), Pushed::Displaced("a1"));
        assert_eq!(queue.pop().await, Some("a2"));
        assert_eq!(queue.pop().await, Some("b1"));
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_frame_of_the_camera_served_last() {
        let queue = FairQueue::new(2);
        queue.push("a", "a1");
        assert_eq!(queue.pop().await, Some("a1"));
        queue.push("b", "b1");
        assert_eq!(queue.pop().await, Some("b1"));
        // b was served last: its frame goes first when the queue is full.
        queue.push("a", "a2");
        queue.push("b", "b2");
        assert_eq!(queue.push("c", "c1"), Pushed::Displaced("b2"));
        // ... and a frame of the camera served last is itself refused.
        assert_eq!(queue.push("b", "b3"), Pushed::Displaced("b3"));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.pop().await, Some("c1"));
        assert_eq!(queue.pop().await, Some("a2"));
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn cameras_never_served_go_first_oldest_frame_first() {
        let queue = FairQueue::new(8);
        queue.push("a", 1);
        assert_eq!(queue.pop().await, Some(1));
        queue.push("a", 2);
        queue.push("c", 3);
        queue.push("b", 4);
        assert_eq!(queue.pop().await, Some(3));
        assert_eq!(queue.pop().await, Some(4));
        assert_eq!(queue.pop().await, Some(2));
    }

    /// Six cameras sending in a fixed phase to a worker that reads one frame
    /// while three arrive: every camera is read, equally often. (A drop-oldest
    /// FIFO of two read only the same two cameras here.)
    #[tokio::test]
    async fn overloaded_cameras_in_lockstep_are_served_in_turn() {
        let queue = FairQueue::new(2);
        let mut reads: HashMap<usize, usize> = HashMap::new();
        let mut dropped = 0;
        let mut sequence = 0;
        for _round in 0..60 {
            for _ in 0..3 {
                let camera = sequence % 6;
                sequence += 1;
                if let Pushed::Displaced(_) = queue.push(camera, camera) {
                    dropped += 1;
                }
            }
            let camera = queue.pop().await.expect("a frame waits");
            *reads.entry(camera).or_default() += 1;
        }
        assert!(dropped > 0);
        assert_eq!(reads.len(), 6, "{reads:?}");
        assert!(reads.values().all(|&n| n == 10), "{reads:?}");
    }

    #[tokio::test]
    async fn capacity_is_at_least_one() {
        let queue = FairQueue::new(0);
        assert_eq!(queue.capacity(), 1);
        assert_eq!(queue.push(1, 'a'), Pushed::Queued);
        assert_eq!(queue.push(2, 'b'), Pushed::Displaced('a'));
    }

    #[tokio::test]
    async fn closing_lets_workers_drain_then_stop() {
        let queue = FairQueue::new(4);
        assert_eq!(queue.push(1, 7), Pushed::Queued);
        queue.close();
        assert_eq!(queue.push(2, 8), Pushed::Closed(8));
        assert_eq!(queue.pop().await, Some(7));
        assert_eq!(queue.pop().await, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_workers_get_every_item_and_wake_on_close() {
        let queue = std::sync::Arc::new(FairQueue::new(100));
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    while let Some(item) = queue.pop().await {
                        got.push(item);
                    }
                    got
                })
            })
            .collect();
        for item in 0..50 {
            assert_eq!(queue.push(item, item), Pushed::Queued);
            tokio::task::yield_now().await;
        }
        queue.close();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.await.expect("worker ends"));
        }
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
    }
}
