//! The bounded queue between the frame subscription and the workers.
//!
//! Cameras keep sending while the workers are busy; a frame that waited long
//! is worth less than the one just captured. So the queue never grows past
//! its capacity: a push into a full queue pushes out the oldest waiting item,
//! and the caller counts it.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// A bounded FIFO whose `push` never waits: when full, the oldest item goes.
pub struct DropOldestQueue<T> {
    capacity: usize,
    state: Mutex<State<T>>,
    ready: Notify,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// What [`DropOldestQueue::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<T> {
    /// Queued; nothing was dropped.
    Queued,
    /// Queued, and this older item was pushed out to make room.
    Displaced(T),
    /// The queue is closed: the item was not queued and comes back.
    Closed(T),
}

impl<T> DropOldestQueue<T> {
    /// A queue holding at most `capacity` items (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        DropOldestQueue {
            capacity,
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity),
                closed: false,
            }),
            ready: Notify::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // A panic while holding this lock leaves the queue itself consistent
        // (every operation is a single VecDeque call), so carry on.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds `item` at the back, dropping the oldest item if full.
    pub fn push(&self, item: T) -> Pushed<T> {
        let outcome = {
            let mut state = self.lock();
            if state.closed {
                return Pushed::Closed(item);
            }
            let displaced = if state.items.len() >= self.capacity {
                state.items.pop_front()
            } else {
                None
            };
            state.items.push_back(item);
            match displaced {
                Some(old) => Pushed::Displaced(old),
                None => Pushed::Queued,
            }
        };
        self.ready.notify_one();
        outcome
    }

    /// Items waiting now.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops taking items; what is queued can still be popped.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
    }

    /// The oldest item, waiting for one; `None` once the queue is closed and
    /// empty.
    pub async fn pop(&self) -> Option<T> {
        loop {
            // Register interest before looking, so a push or close between
            // the look and the wait still wakes this caller.
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if let Some(item) = state.items.pop_front() {
                    let more = !state.items.is_empty();
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
    async fn a_full_queue_drops_its_oldest_item() {
        let queue = DropOldestQueue::new(2);
        assert_eq!(queue.push(1), Pushed::Queued);
        assert_eq!(queue.push(2), Pushed::Queued);
        assert_eq!(queue.push(3), Pushed::Displaced(1));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.pop().await, Some(2));
        assert_eq!(queue.pop().await, Some(3));
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn capacity_is_at_least_one() {
        let queue = DropOldestQueue::new(0);
        assert_eq!(queue.capacity(), 1);
        assert_eq!(queue.push('a'), Pushed::Queued);
        assert_eq!(queue.push('b'), Pushed::Displaced('a'));
    }

    #[tokio::test]
    async fn closing_lets_workers_drain_then_stop() {
        let queue = DropOldestQueue::new(4);
        assert_eq!(queue.push(7), Pushed::Queued);
        queue.close();
        assert_eq!(queue.push(8), Pushed::Closed(8));
        assert_eq!(queue.pop().await, Some(7));
        assert_eq!(queue.pop().await, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_workers_get_every_item_and_wake_on_close() {
        let queue = std::sync::Arc::new(DropOldestQueue::new(100));
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
            assert_eq!(queue.push(item), Pushed::Queued);
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
