//! Workflow state in a key-value bucket, and processed-id memory for
//! effectively-once handlers.

use std::time::Duration;

use async_nats::jetstream::{kv, stream};
use bytes::Bytes;
use futures::StreamExt;

use super::{JetStream, js_error};
use crate::{BusError, TenantId};

/// Workflow state in a key-value bucket, updated by compare-and-set on the revision.
#[derive(Debug, Clone)]
pub struct StateStore {
    store: kv::Store,
}

/// One watched change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateChange {
    /// The key.
    pub key: String,
    /// The new value (empty when deleted).
    pub value: Bytes,
    /// Its revision.
    pub revision: u64,
}

impl StateStore {
    /// The value and revision of `key`.
    ///
    /// # Errors
    /// [`BusError::JetStream`].
    pub async fn get(&self, key: &str) -> Result<Option<(Bytes, u64)>, BusError> {
        let entry = self
            .store
            .entry(key)
            .await
            .map_err(|e| js_error("kv get", e))?;
        Ok(entry
            .filter(|e| matches!(e.operation, kv::Operation::Put))
            .map(|e| (e.value, e.revision)))
    }

    /// Creates `key`; fails with [`BusError::Conflict`] when it exists.
    ///
    /// # Errors
    /// [`BusError::Conflict`], [`BusError::JetStream`].
    pub async fn create(&self, key: &str, value: Bytes) -> Result<u64, BusError> {
        self.store
            .create(key, value)
            .await
            .map_err(|e| match e.kind() {
                kv::CreateErrorKind::AlreadyExists => BusError::Conflict {
                    what: format!("key {key}"),
                    reason: "it already exists".into(),
                },
                _ => js_error("kv create", e),
            })
    }

    /// Writes `value` if `key` is still at `revision`; a concurrent writer gets
    /// [`BusError::Conflict`].
    ///
    /// # Errors
    /// [`BusError::Conflict`], [`BusError::JetStream`].
    pub async fn update(&self, key: &str, value: Bytes, revision: u64) -> Result<u64, BusError> {
        self.store
            .update(key, value, revision)
            .await
            .map_err(|e| match e.kind() {
                kv::UpdateErrorKind::WrongLastRevision => BusError::Conflict {
                    what: format!("key {key}"),
                    reason: format!("it is no longer at revision {revision}"),
                },
                _ => js_error("kv update", e),
            })
    }

    /// Changes to `key` (a pattern like `wf-1.>` is allowed) as they happen.
    ///
    /// # Errors
    /// [`BusError::JetStream`].
    pub async fn watch(
        &self,
        key: &str,
    ) -> Result<impl futures::Stream<Item = StateChange> + Send + use<>, BusError> {
        let watch = self
            .store
            .watch(key)
            .await
            .map_err(|e| js_error("kv watch", e))?;
        Ok(watch.filter_map(|entry| async move {
            entry.ok().map(|e| StateChange {
                key: e.key,
                value: e.value,
                revision: e.revision,
            })
        }))
    }
}

/// Remembers processed ids for a while, across instances: the building block of
/// effectively-once handlers on top of at-least-once delivery. Ids are kept per
/// tenant, and every distinct id is a distinct key.
#[derive(Debug, Clone)]
pub struct Idempotency {
    store: kv::Store,
}

impl Idempotency {
    /// `true` the first time `id` is seen for `tenant` within the TTL; `false` after.
    ///
    /// # Errors
    /// [`BusError::JetStream`].
    pub async fn first_time(&self, tenant: &TenantId, id: &str) -> Result<bool, BusError> {
        let key = idempotency_key(tenant, id);
        match self.store.create(&key, Bytes::new()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(js_error("idempotency", e)),
        }
    }
}

/// `<tenant>.<id>`, with every byte of the id outside `[A-Za-z0-9_-]` written as
/// `=XX` (hex), so two different ids never share a key; an empty id is `=`.
fn idempotency_key(tenant: &TenantId, id: &str) -> String {
    use std::fmt::Write as _;
    let mut key = String::with_capacity(tenant.as_str().len() + 1 + id.len());
    key.push_str(tenant.as_str());
    key.push('.');
    if id.is_empty() {
        key.push('=');
    }
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            key.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            write!(key, "={b:02X}").ok();
        }
    }
    key
}

impl JetStream {
    /// A key-value bucket for workflow state, created if missing.
    ///
    /// # Errors
    /// [`BusError::JetStream`].
    pub async fn state_store(&self, bucket: &str, replicas: usize) -> Result<StateStore, BusError> {
        let store = self
            .context
            .create_or_update_key_value(kv::Config {
                bucket: bucket.to_owned(),
                history: 5,
                num_replicas: replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| js_error("create key-value bucket", e))?;
        Ok(StateStore { store })
    }

    /// Processed-id memory for effectively-once handlers: ids are kept for `ttl` in a
    /// key-value bucket shared by every instance.
    ///
    /// # Errors
    /// [`BusError::JetStream`].
    pub async fn idempotency(&self, bucket: &str, ttl: Duration) -> Result<Idempotency, BusError> {
        let store = self
            .context
            .create_or_update_key_value(kv::Config {
                bucket: bucket.to_owned(),
                history: 1,
                max_age: ttl,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| js_error("create key-value bucket", e))?;
        Ok(Idempotency { store })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_injective_and_valid() {
        let t = TenantId::new("acme").unwrap();
        let ids = ["a/b", "a b", "a_b", "a=2Fb", "a.b", "", "=", "ä"];
        let keys: std::collections::BTreeSet<String> =
            ids.iter().map(|id| idempotency_key(&t, id)).collect();
        assert_eq!(keys.len(), ids.len(), "{keys:?}");
        for k in &keys {
            assert!(
                k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=.".contains(&b)),
                "{k}"
            );
        }
        let other = TenantId::new("beta").unwrap();
        assert_ne!(idempotency_key(&t, "x"), idempotency_key(&other, "x"));
    }
}
