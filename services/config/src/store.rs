//! Configuration records in NATS JetStream key-value buckets.
//!
//! `anpr_config` holds the records (protobuf), keyed `vms.<name>`,
//! `camera.<id>`, `analytic.defaults` and `analytic.camera.<id>`;
//! `anpr_secrets` holds the passwords, keyed `vms.<name>` / `camera.<id>`, so
//! that NATS permissions can keep every other client away from them. The KV
//! revision of an entry is the record's `revision`, and writes are conditional
//! on it, so concurrent writers (several config replicas, several operators)
//! never overwrite each other unknowingly.

use std::collections::HashMap;

use anpr_common::bus::{open_kv_bucket, BucketSpec};
use anpr_common::proto::{
    config_item, watch_response, AnalyticOverride, AnalyticSettings, AnalyticSettingsView, Camera,
    CameraStatus, ConfigItem, ConfigKey, ConfigKind, StoredSecret, VmsTarget, VmsTargetStatus,
    WatchResponse,
};
use anpr_common::subjects::{
    CAMERA_STATUS_BUCKET, CONFIG_BUCKET, SECRETS_BUCKET, VMS_STATUS_BUCKET,
};
use async_nats::jetstream::{self, kv};
use futures::{StreamExt, TryStreamExt};
use prost::Message;

use crate::validate::{self, FieldError, Invalid};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{noun} {id:?} not found")]
    NotFound { noun: &'static str, id: String },
    #[error("{noun} {id:?} already exists")]
    AlreadyExists { noun: &'static str, id: String },
    #[error("{noun} {id:?} was changed meanwhile: expected revision {expected}, stored revision {stored}")]
    Stale {
        noun: &'static str,
        id: String,
        expected: u64,
        stored: u64,
    },
    #[error("invalid request: {0}")]
    Invalid(#[from] Invalid),
    #[error("stored entry {key} cannot be decoded: {source}")]
    Corrupt {
        key: String,
        source: prost::DecodeError,
    },
    #[error("configuration storage failed ({op} {key}): {source}")]
    Backend {
        op: &'static str,
        key: String,
        source: BoxError,
    },
}

fn backend(op: &'static str, key: &str) -> impl FnOnce(BoxError) -> StoreError {
    let key = key.to_string();
    move |source| StoreError::Backend { op, key, source }
}

/// A record type kept in the config bucket under `<prefix><id>`.
pub trait Record: Message + Default + Clone {
    const KIND: ConfigKind;
    const PREFIX: &'static str;
    /// What an operator calls it, for messages.
    const NOUN: &'static str;
    fn id(&self) -> &str;
    fn stored_revision(&self) -> u64;
    fn set_revision(&mut self, revision: u64);
    /// Marks whether a secret is stored, given the stored record (on update)
    /// and whether a new secret came with this write.
    fn set_secret_flag(&mut self, stored: Option<&Self>, new_secret: bool);
    fn into_item(self) -> config_item::Item;
}

impl Record for VmsTarget {
    const KIND: ConfigKind = ConfigKind::VmsTarget;
    const PREFIX: &'static str = "vms.";
    const NOUN: &'static str = "VMS target";
    fn id(&self) -> &str {
        &self.name
    }
    fn stored_revision(&self) -> u64 {
        self.revision
    }
    fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }
    fn set_secret_flag(&mut self, stored: Option<&Self>, new_secret: bool) {
        self.password_set = new_secret || stored.is_some_and(|s| s.password_set);
    }
    fn into_item(self) -> config_item::Item {
        config_item::Item::VmsTarget(self)
    }
}

impl Record for Camera {
    const KIND: ConfigKind = ConfigKind::Camera;
    const PREFIX: &'static str = "camera.";
    const NOUN: &'static str = "camera";
    fn id(&self) -> &str {
        &self.id
    }
    fn stored_revision(&self) -> u64 {
        self.revision
    }
    fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }
    fn set_secret_flag(&mut self, stored: Option<&Self>, new_secret: bool) {
        self.rtsp_password_set = new_secret || stored.is_some_and(|s| s.rtsp_password_set);
    }
    fn into_item(self) -> config_item::Item {
        config_item::Item::Camera(self)
    }
}

const ANALYTIC_DEFAULTS_KEY: &str = "analytic.defaults";
const ANALYTIC_CAMERA_PREFIX: &str = "analytic.camera.";

fn analytic_key(camera_id: &str) -> String {
    if camera_id.is_empty() {
        ANALYTIC_DEFAULTS_KEY.to_string()
    } else {
        format!("{ANALYTIC_CAMERA_PREFIX}{camera_id}")
    }
}

/// The configuration, stored in NATS.
#[derive(Clone)]
pub struct ConfigStore {
    config: kv::Store,
    secrets: kv::Store,
    /// Written by the vms-bridge, read here to show delivery status.
    vms_status: kv::Store,
    /// Written by ingest, read here to show each camera's stream status.
    camera_status: kv::Store,
}

async fn open_bucket(
    js: &jetstream::Context,
    bucket: &str,
    description: &str,
    history: i64,
    replicas: usize,
) -> Result<kv::Store, StoreError> {
    let spec = BucketSpec {
        bucket,
        description,
        history,
        max_age: None,
        replicas,
    };
    open_kv_bucket(js, spec)
        .await
        .map_err(|err| backend("open bucket", bucket)(Box::new(err)))
}

/// Status is informative: an unreadable or missing entry is logged and
/// shown as none rather than failing the request that asked for the record.
async fn read_status<T: Message + Default>(bucket: &kv::Store, key: &str) -> Option<T> {
    let entry = match bucket.entry(key).await {
        Ok(entry) => entry?,
        Err(err) => {
            tracing::warn!(bucket = bucket.name, key, error = %err, "could not read status");
            return None;
        }
    };
    if entry.operation != kv::Operation::Put {
        return None;
    }
    match T::decode(entry.value) {
        Ok(status) => Some(status),
        Err(err) => {
            tracing::warn!(bucket = bucket.name, key, error = %err, "unreadable status");
            None
        }
    }
}

impl ConfigStore {
    /// Opens (creating if needed) the buckets.
    pub async fn open(js: &jetstream::Context, replicas: usize) -> Result<Self, StoreError> {
        Ok(ConfigStore {
            config: open_bucket(
                js,
                CONFIG_BUCKET,
                "ANPR configuration: VMS targets, cameras, analytic settings",
                5,
                replicas,
            )
            .await?,
            secrets: open_bucket(js, SECRETS_BUCKET, "ANPR passwords", 1, replicas).await?,
            vms_status: open_bucket(
                js,
                VMS_STATUS_BUCKET,
                "ANPR VMS target delivery status, written by the vms-bridge",
                1,
                replicas,
            )
            .await?,
            camera_status: open_bucket(
                js,
                CAMERA_STATUS_BUCKET,
                "ANPR camera stream status, written by ingest",
                1,
                replicas,
            )
            .await?,
        })
    }

    /// The delivery status the vms-bridge last reported for target `name`.
    pub async fn vms_status(&self, name: &str) -> Option<VmsTargetStatus> {
        read_status(&self.vms_status, name).await
    }

    /// The stream status ingest last reported for camera `id`.
    pub async fn camera_status(&self, id: &str) -> Option<CameraStatus> {
        read_status(&self.camera_status, id).await
    }

    /// The stored entry at `key` and its revision; `None` if absent or deleted.
    async fn read_raw(&self, key: &str) -> Result<Option<(bytes::Bytes, u64)>, StoreError> {
        let entry = self
            .config
            .entry(key)
            .await
            .map_err(|err| backend("read", key)(Box::new(err)))?;
        Ok(entry
            .filter(|entry| entry.operation == kv::Operation::Put)
            .map(|entry| (entry.value, entry.revision)))
    }

    async fn read<R: Record>(&self, id: &str) -> Result<Option<R>, StoreError> {
        let key = format!("{}{id}", R::PREFIX);
        match self.read_raw(&key).await? {
            None => Ok(None),
            Some((value, revision)) => {
                let mut record =
                    R::decode(value).map_err(|source| StoreError::Corrupt { key, source })?;
                record.set_revision(revision);
                Ok(Some(record))
            }
        }
    }

    /// The record `id`, or `NotFound`.
    pub async fn get<R: Record>(&self, id: &str) -> Result<R, StoreError> {
        self.read(id).await?.ok_or_else(|| StoreError::NotFound {
            noun: R::NOUN,
            id: id.to_string(),
        })
    }

    /// Keys in the config bucket starting with `prefix`.
    async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let keys = match self.config.keys().await {
            Ok(keys) => keys,
            Err(err) => return Err(backend("list", prefix)(Box::new(err))),
        };
        let mut keys: Vec<String> = keys
            .try_filter(|key| futures::future::ready(key.starts_with(prefix)))
            .try_collect()
            .await
            .map_err(|err| backend("list", prefix)(Box::new(err)))?;
        keys.sort();
        Ok(keys)
    }

    /// Every record of one kind, sorted by id. An entry that cannot be decoded
    /// is logged and skipped, so one bad entry does not hide the others.
    pub async fn list<R: Record>(&self) -> Result<Vec<R>, StoreError> {
        let mut records = Vec::new();
        for key in self.keys(R::PREFIX).await? {
            let id = &key[R::PREFIX.len()..];
            match self.read::<R>(id).await {
                Ok(Some(record)) => records.push(record),
                // Deleted between listing and reading.
                Ok(None) => {}
                Err(err @ StoreError::Corrupt { .. }) => {
                    tracing::warn!(error = %err, "skipping unreadable config entry")
                }
                Err(err) => return Err(err),
            }
        }
        Ok(records)
    }

    async fn put_secret<R: Record>(&self, id: &str, password: String) -> Result<(), StoreError> {
        let key = format!("{}{id}", R::PREFIX);
        let value = StoredSecret { password }.encode_to_vec();
        self.secrets
            .put(&key, value.into())
            .await
            .map(|_| ())
            .map_err(|err| backend("write secret", &key)(Box::new(err)))
    }

    /// The stored password of a record, for the services that log in with it.
    pub async fn secret<R: Record>(&self, id: &str) -> Result<Option<String>, StoreError> {
        let key = format!("{}{id}", R::PREFIX);
        let value = self
            .secrets
            .get(&key)
            .await
            .map_err(|err| backend("read secret", &key)(Box::new(err)))?;
        match value {
            None => Ok(None),
            Some(bytes) => StoredSecret::decode(bytes)
                .map(|secret| Some(secret.password))
                .map_err(|source| StoreError::Corrupt { key, source }),
        }
    }

    /// Stores a new record; `AlreadyExists` if its id is taken.
    pub async fn create<R: Record>(
        &self,
        mut record: R,
        secret: Option<String>,
    ) -> Result<R, StoreError> {
        let id = record.id().to_string();
        let key = format!("{}{id}", R::PREFIX);
        record.set_secret_flag(None, secret.is_some());
        record.set_revision(0);
        let revision = match self
            .config
            .create(&key, record.encode_to_vec().into())
            .await
        {
            Ok(revision) => revision,
            Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
                return Err(StoreError::AlreadyExists { noun: R::NOUN, id })
            }
            Err(err) => return Err(backend("create", &key)(Box::new(err))),
        };
        // The record is written first so that a create that loses a race never
        // overwrites the winner's password.
        if let Some(password) = secret {
            if let Err(err) = self.put_secret::<R>(&id, password).await {
                if let Err(undo) = self
                    .config
                    .delete_expect_revision(&key, Some(revision))
                    .await
                {
                    tracing::error!(key, error = %undo, "could not undo a create whose secret failed");
                }
                return Err(err);
            }
        }
        record.set_revision(revision);
        Ok(record)
    }

    /// Replaces a record. With `expected_revision` the write happens only if
    /// the stored record is still at that revision; without, the newest
    /// stored record is replaced.
    pub async fn update<R: Record>(
        &self,
        mut record: R,
        secret: Option<String>,
        expected_revision: Option<u64>,
    ) -> Result<R, StoreError> {
        let id = record.id().to_string();
        let key = format!("{}{id}", R::PREFIX);
        // Without an expected revision, a concurrent write is simply retried
        // against the newer record; a few rounds settle any real contention.
        for _ in 0..5 {
            let stored = self.get::<R>(&id).await?;
            let stored_revision = stored.stored_revision();
            if let Some(expected) = expected_revision {
                if expected != stored_revision {
                    return Err(StoreError::Stale {
                        noun: R::NOUN,
                        id,
                        expected,
                        stored: stored_revision,
                    });
                }
            }
            record.set_secret_flag(Some(&stored), secret.is_some());
            record.set_revision(0);
            match self
                .config
                .update(&key, record.encode_to_vec().into(), stored_revision)
                .await
            {
                Ok(revision) => {
                    if let Some(password) = secret {
                        self.put_secret::<R>(&id, password).await?;
                    }
                    record.set_revision(revision);
                    return Ok(record);
                }
                Err(err) => {
                    let now = self.read::<R>(&id).await?.map(|r| r.stored_revision());
                    if now == Some(stored_revision) {
                        return Err(backend("update", &key)(Box::new(err)));
                    }
                    if let (Some(expected), Some(now)) = (expected_revision, now) {
                        return Err(StoreError::Stale {
                            noun: R::NOUN,
                            id,
                            expected,
                            stored: now,
                        });
                    }
                }
            }
        }
        Err(StoreError::Backend {
            op: "update",
            key,
            source: "the record kept changing during the update".into(),
        })
    }

    /// Deletes a record and its secret.
    pub async fn delete<R: Record>(
        &self,
        id: &str,
        expected_revision: Option<u64>,
    ) -> Result<(), StoreError> {
        let key = format!("{}{id}", R::PREFIX);
        let stored = self.get::<R>(id).await?.stored_revision();
        let expected = expected_revision.unwrap_or(stored);
        if expected != stored {
            return Err(StoreError::Stale {
                noun: R::NOUN,
                id: id.to_string(),
                expected,
                stored,
            });
        }
        if let Err(err) = self
            .config
            .delete_expect_revision(&key, Some(expected))
            .await
        {
            return match self.read::<R>(id).await? {
                Some(now) if now.stored_revision() != expected => Err(StoreError::Stale {
                    noun: R::NOUN,
                    id: id.to_string(),
                    expected,
                    stored: now.stored_revision(),
                }),
                None => Err(StoreError::NotFound {
                    noun: R::NOUN,
                    id: id.to_string(),
                }),
                Some(_) => Err(backend("delete", &key)(Box::new(err))),
            };
        }
        // The record is gone; a leftover secret would only be unreachable, so
        // a failure here is logged rather than reported as a failed delete.
        if let Err(err) = self.secrets.purge(&key).await {
            tracing::warn!(key, error = %err, "could not remove the secret of a deleted record");
        }
        Ok(())
    }

    // ------------------------------------------------------ analytic settings

    /// The stored analytic entry at `camera_id` ("" = defaults) and its revision.
    async fn read_analytic(&self, camera_id: &str) -> Result<Option<AnalyticOverride>, StoreError> {
        let key = analytic_key(camera_id);
        match self.read_raw(&key).await? {
            None => Ok(None),
            Some((value, revision)) => {
                let mut entry = AnalyticOverride::decode(value)
                    .map_err(|source| StoreError::Corrupt { key, source })?;
                entry.revision = revision;
                entry.camera_id = camera_id.to_string();
                Ok(Some(entry))
            }
        }
    }

    /// The global defaults as stored, completed with the built-in ones.
    async fn defaults(&self) -> Result<(AnalyticSettings, u64), StoreError> {
        let builtin = validate::builtin_analytic_defaults();
        Ok(match self.read_analytic("").await? {
            Some(entry) => (
                validate::merge_analytic(&builtin, &entry.settings.unwrap_or_default()),
                entry.revision,
            ),
            None => (builtin, 0),
        })
    }

    async fn require_camera(&self, camera_id: &str) -> Result<(), StoreError> {
        if self.read::<Camera>(camera_id).await?.is_none() {
            return Err(Invalid(vec![FieldError {
                field: "camera_id".into(),
                message: format!("no camera {camera_id:?} is registered"),
            }])
            .into());
        }
        Ok(())
    }

    /// The view of the defaults ("") or of one camera.
    pub async fn analytic_view(&self, camera_id: &str) -> Result<AnalyticSettingsView, StoreError> {
        let (defaults, defaults_revision) = self.defaults().await?;
        if camera_id.is_empty() {
            return Ok(AnalyticSettingsView {
                camera_id: String::new(),
                effective: Some(defaults.clone()),
                defaults: Some(defaults),
                r#override: Some(AnalyticSettings::default()),
                revision: defaults_revision,
            });
        }
        self.require_camera(camera_id).await?;
        let (overlay, revision) = match self.read_analytic(camera_id).await? {
            Some(entry) => (entry.settings.unwrap_or_default(), entry.revision),
            None => (AnalyticSettings::default(), 0),
        };
        Ok(AnalyticSettingsView {
            camera_id: camera_id.to_string(),
            effective: Some(validate::merge_analytic(&defaults, &overlay)),
            defaults: Some(defaults),
            r#override: Some(overlay),
            revision,
        })
    }

    /// Merges `settings` into the defaults ("") or a camera's override.
    pub async fn set_analytic(
        &self,
        camera_id: &str,
        settings: AnalyticSettings,
        expected_revision: Option<u64>,
    ) -> Result<AnalyticSettingsView, StoreError> {
        validate::analytic_settings(&settings)?;
        if !camera_id.is_empty() {
            self.require_camera(camera_id).await?;
        }
        let key = analytic_key(camera_id);
        let stored = self.read_analytic(camera_id).await?;
        let stored_revision = stored.as_ref().map_or(0, |entry| entry.revision);
        if let Some(expected) = expected_revision {
            if expected != stored_revision {
                return Err(StoreError::Stale {
                    noun: "analytic settings",
                    id: camera_id.to_string(),
                    expected,
                    stored: stored_revision,
                });
            }
        }
        let base = stored.and_then(|entry| entry.settings).unwrap_or_default();
        let entry = AnalyticOverride {
            camera_id: camera_id.to_string(),
            settings: Some(validate::merge_analytic(&base, &settings)),
            revision: 0,
        };
        let value = entry.encode_to_vec().into();
        let written = if stored_revision == 0 {
            self.config
                .create(&key, value)
                .await
                .map(|_| ())
                .map_err(|e| {
                    (
                        e.kind() == kv::CreateErrorKind::AlreadyExists,
                        Box::new(e) as BoxError,
                    )
                })
        } else {
            self.config
                .update(&key, value, stored_revision)
                .await
                .map(|_| ())
                .map_err(|e| (false, Box::new(e) as BoxError))
        };
        if let Err((lost_race, err)) = written {
            let now = self
                .read_analytic(camera_id)
                .await?
                .map_or(0, |e| e.revision);
            if lost_race || now != stored_revision {
                return Err(StoreError::Stale {
                    noun: "analytic settings",
                    id: camera_id.to_string(),
                    expected: stored_revision,
                    stored: now,
                });
            }
            return Err(backend("write", &key)(err));
        }
        self.analytic_view(camera_id).await
    }

    /// Removes a camera's override, or resets the defaults to the built-in ones.
    pub async fn reset_analytic(
        &self,
        camera_id: &str,
        expected_revision: Option<u64>,
    ) -> Result<AnalyticSettingsView, StoreError> {
        if !camera_id.is_empty() {
            self.require_camera(camera_id).await?;
        }
        let key = analytic_key(camera_id);
        if let Some(stored) = self.read_analytic(camera_id).await? {
            let expected = expected_revision.unwrap_or(stored.revision);
            if expected != stored.revision {
                return Err(StoreError::Stale {
                    noun: "analytic settings",
                    id: camera_id.to_string(),
                    expected,
                    stored: stored.revision,
                });
            }
            self.config
                .delete_expect_revision(&key, Some(expected))
                .await
                .map_err(|err| backend("delete", &key)(Box::new(err)))?;
        }
        self.analytic_view(camera_id).await
    }

    /// Every camera override, sorted by camera id.
    pub async fn analytic_overrides(&self) -> Result<Vec<AnalyticOverride>, StoreError> {
        let mut overrides = Vec::new();
        for key in self.keys(ANALYTIC_CAMERA_PREFIX).await? {
            match self
                .read_analytic(&key[ANALYTIC_CAMERA_PREFIX.len()..])
                .await
            {
                Ok(Some(entry)) => overrides.push(entry),
                Ok(None) => {}
                Err(err @ StoreError::Corrupt { .. }) => {
                    tracing::warn!(error = %err, "skipping unreadable config entry")
                }
                Err(err) => return Err(err),
            }
        }
        Ok(overrides)
    }

    /// Deletes a camera together with its analytic override.
    pub async fn delete_camera(
        &self,
        id: &str,
        expected_revision: Option<u64>,
    ) -> Result<(), StoreError> {
        self.delete::<Camera>(id, expected_revision).await?;
        let key = analytic_key(id);
        if self.read_raw(&key).await?.is_some() {
            self.config
                .delete(&key)
                .await
                .map_err(|err| backend("delete", &key)(Box::new(err)))?;
        }
        Ok(())
    }

    // ------------------------------------------------------------------ watch

    /// A snapshot of everything, and a feed of the changes after it.
    pub async fn watch(&self) -> Result<ConfigWatch, StoreError> {
        // Changes made while the snapshot is read show up both in the
        // snapshot and in the feed; `seen` drops the second copy.
        let status = self
            .config
            .status()
            .await
            .map_err(|err| backend("status", CONFIG_BUCKET)(Box::new(err)))?;
        let start = status.info.state.last_sequence + 1;
        let mut items = Vec::new();
        let mut seen = HashMap::new();
        for key in self.keys("").await? {
            let Some((value, revision)) = self.read_raw(&key).await? else {
                continue;
            };
            match decode_item(&key, value, revision) {
                Ok(Some(item)) => {
                    seen.insert(key, revision);
                    items.push(item);
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "skipping unreadable config entry"),
            }
        }
        let feed = self
            .config
            .watch_all_from_revision(start)
            .await
            .map_err(|err| backend("watch", CONFIG_BUCKET)(Box::new(err)))?;
        Ok(ConfigWatch {
            snapshot: Some(items),
            feed,
            seen,
        })
    }
}

/// Decodes a config-bucket entry into what Watch sends; `None` for keys that
/// are not configuration records.
fn decode_item(
    key: &str,
    value: bytes::Bytes,
    revision: u64,
) -> Result<Option<ConfigItem>, StoreError> {
    let corrupt = |source| StoreError::Corrupt {
        key: key.to_string(),
        source,
    };
    let item = if key.starts_with(VmsTarget::PREFIX) {
        let mut record = VmsTarget::decode(value).map_err(corrupt)?;
        record.revision = revision;
        record.into_item()
    } else if key.starts_with(Camera::PREFIX) {
        let mut record = Camera::decode(value).map_err(corrupt)?;
        record.revision = revision;
        record.into_item()
    } else if key == ANALYTIC_DEFAULTS_KEY || key.starts_with(ANALYTIC_CAMERA_PREFIX) {
        let mut entry = AnalyticOverride::decode(value).map_err(corrupt)?;
        entry.revision = revision;
        entry.camera_id = key
            .strip_prefix(ANALYTIC_CAMERA_PREFIX)
            .unwrap_or_default()
            .to_string();
        config_item::Item::Analytic(entry)
    } else {
        return Ok(None);
    };
    Ok(Some(ConfigItem { item: Some(item) }))
}

/// The key a deleted entry had, as Watch reports it.
fn deleted_key(key: &str, revision: u64) -> Option<ConfigKey> {
    let (kind, id) = if let Some(id) = key.strip_prefix(VmsTarget::PREFIX) {
        (ConfigKind::VmsTarget, id)
    } else if let Some(id) = key.strip_prefix(Camera::PREFIX) {
        (ConfigKind::Camera, id)
    } else if key == ANALYTIC_DEFAULTS_KEY {
        (ConfigKind::Analytic, "")
    } else if let Some(id) = key.strip_prefix(ANALYTIC_CAMERA_PREFIX) {
        (ConfigKind::Analytic, id)
    } else {
        return None;
    };
    Some(ConfigKey {
        kind: kind as i32,
        id: id.to_string(),
        revision,
    })
}

/// The snapshot, then one change at a time.
pub struct ConfigWatch {
    snapshot: Option<Vec<ConfigItem>>,
    feed: kv::Watch,
    seen: HashMap<String, u64>,
}

impl ConfigWatch {
    /// The next message for a Watch stream; `None` when the feed ended.
    pub async fn next(&mut self) -> Option<Result<WatchResponse, StoreError>> {
        if let Some(items) = self.snapshot.take() {
            return Some(Ok(WatchResponse {
                change: Some(watch_response::Change::Snapshot(
                    anpr_common::proto::Snapshot { items },
                )),
            }));
        }
        loop {
            let entry = match self.feed.next().await? {
                Ok(entry) => entry,
                Err(err) => return Some(Err(backend("watch", CONFIG_BUCKET)(Box::new(err)))),
            };
            if self
                .seen
                .get(&entry.key)
                .is_some_and(|seen| *seen >= entry.revision)
            {
                continue;
            }
            self.seen.insert(entry.key.clone(), entry.revision);
            let change = if entry.operation == kv::Operation::Put {
                match decode_item(&entry.key, entry.value, entry.revision) {
                    Ok(Some(item)) => watch_response::Change::Upserted(item),
                    Ok(None) => continue,
                    Err(err) => {
                        tracing::warn!(error = %err, "skipping unreadable config entry");
                        continue;
                    }
                }
            } else {
                match deleted_key(&entry.key, entry.revision) {
                    Some(key) => watch_response::Change::Deleted(key),
                    None => continue,
                }
            };
            return Some(Ok(WatchResponse {
                change: Some(change),
            }));
        }
    }
}
