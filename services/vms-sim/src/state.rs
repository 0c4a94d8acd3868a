//! The simulator's mutable state, shared by every connection: configuration
//! that tests may change at run time, bearer sessions and recorded events.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};

use crate::config::{Fault, SimCamera, SimConfig, SimUser};
use crate::digest::NonceIssuer;
use crate::events::RecordedEvent;

/// One bearer session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Login exactly as configured.
    pub login: String,
    pub created: Instant,
    pub lifetime: Duration,
}

impl Session {
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.created)
    }

    pub fn remaining(&self, now: Instant) -> Duration {
        self.lifetime.saturating_sub(self.age(now))
    }

    pub fn expired(&self, now: Instant) -> bool {
        self.age(now) >= self.lifetime
    }
}

/// State shared by all connections of one simulator.
pub struct Shared {
    config: Mutex<SimConfig>,
    fault: Mutex<Fault>,
    sessions: Mutex<HashMap<String, Session>>,
    events: Mutex<Vec<RecordedEvent>>,
    runtime_id: Mutex<String>,
    /// Failed logins per lower-case login, for the brute-force lockout.
    login_failures: Mutex<HashMap<String, u32>>,
    /// Failed logins after which `/login/sessions` answers 403; `None` = never.
    lockout_after: Mutex<Option<u32>>,
    pub nonces: NonceIssuer,
}

/// Locks a mutex, carrying on after a panic elsewhere: every critical section
/// here leaves the data consistent, so the poison flag carries no meaning.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(config: SimConfig) -> Self {
        Shared {
            config: Mutex::new(config),
            fault: Mutex::new(Fault::None),
            sessions: Mutex::new(HashMap::new()),
            events: Mutex::new(Vec::new()),
            runtime_id: Mutex::new(uuid::Uuid::new_v4().to_string()),
            login_failures: Mutex::new(HashMap::new()),
            lockout_after: Mutex::new(None),
            nonces: NonceIssuer::new(),
        }
    }

    /// A snapshot of the configuration.
    pub fn config(&self) -> SimConfig {
        lock(&self.config).clone()
    }

    pub fn cameras(&self) -> Vec<SimCamera> {
        lock(&self.config).cameras.clone()
    }

    pub fn set_cameras(&self, cameras: Vec<SimCamera>) {
        lock(&self.config).cameras = cameras;
    }

    /// The user with this login (case-insensitive, like the server).
    pub fn user(&self, login: &str) -> Option<SimUser> {
        lock(&self.config)
            .users
            .iter()
            .find(|u| u.login.eq_ignore_ascii_case(login))
            .cloned()
    }

    pub fn set_user(&self, user: SimUser) {
        let mut config = lock(&self.config);
        match config
            .users
            .iter_mut()
            .find(|u| u.login.eq_ignore_ascii_case(&user.login))
        {
            Some(existing) => *existing = user,
            None => config.users.push(user),
        }
    }

    pub fn fault(&self) -> Fault {
        *lock(&self.fault)
    }

    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.fault) = fault;
    }

    /// Opens a session and returns its token.
    pub fn create_session(&self, login: &str, lifetime: Duration) -> String {
        let mut rng = rand::rng();
        let token = format!(
            "vms-{}-{}",
            hex::encode(rand::random::<[u8; 16]>()),
            Alphanumeric.sample_string(&mut rng, 8)
        );
        lock(&self.sessions).insert(
            token.clone(),
            Session {
                login: login.to_string(),
                created: Instant::now(),
                lifetime,
            },
        );
        token
    }

    /// The live session of a token; expired sessions are forgotten.
    pub fn session(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let mut sessions = lock(&self.sessions);
        match sessions.get(token) {
            Some(s) if s.expired(now) => {
                sessions.remove(token);
                None
            }
            Some(s) => Some(s.clone()),
            None => None,
        }
    }

    pub fn end_session(&self, token: &str) -> bool {
        lock(&self.sessions).remove(token).is_some()
    }

    /// Forgets every session, like a server restart.
    pub fn invalidate_tokens(&self) {
        lock(&self.sessions).clear();
    }

    /// A restart also changes the runtime id.
    pub fn new_runtime_id(&self) {
        *lock(&self.runtime_id) = uuid::Uuid::new_v4().to_string();
    }

    pub fn runtime_id(&self) -> String {
        lock(&self.runtime_id).clone()
    }

    pub fn set_login_lockout(&self, after: Option<u32>) {
        *lock(&self.lockout_after) = after;
        lock(&self.login_failures).clear();
    }

    /// Whether logins for `login` are currently refused as too many attempts.
    pub fn locked_out(&self, login: &str) -> bool {
        let Some(limit) = *lock(&self.lockout_after) else {
            return false;
        };
        lock(&self.login_failures)
            .get(&login.to_lowercase())
            .is_some_and(|n| *n >= limit)
    }

    /// Counts a failed login, or forgets the failures after a success.
    pub fn note_login(&self, login: &str, success: bool) {
        let mut failures = lock(&self.login_failures);
        if success {
            failures.remove(&login.to_lowercase());
        } else {
            *failures.entry(login.to_lowercase()).or_insert(0) += 1;
        }
    }

    pub fn record(&self, event: RecordedEvent) {
        lock(&self.events).push(event);
    }

    pub fn events(&self) -> Vec<RecordedEvent> {
        lock(&self.events).clone()
    }

    pub fn clear_events(&self) {
        lock(&self.events).clear();
    }
}
