//! Streams, declared: what they capture, where and how long they keep it.

use std::time::Duration;

use async_nats::jetstream::stream;

use super::{JetStream, js_error};
use crate::{BusError, TenantId};

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Storage {
    /// On disk: survives restarts.
    File,
    /// In memory: faster, lost on restart.
    Memory,
}

/// What a full stream does with new messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Discard {
    /// Drop the oldest messages.
    Old,
    /// Refuse new messages (the publisher gets an error).
    New,
}

/// A stream, declared. [`JetStream::ensure_stream`] creates or updates it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StreamSpec {
    /// The stream name.
    pub name: String,
    /// The subjects it captures.
    pub subjects: Vec<String>,
    /// File or memory.
    pub storage: Storage,
    /// Copies in a cluster (1, 3 or 5).
    pub replicas: usize,
    /// The default TTL: messages older than this are removed; zero keeps them.
    pub max_age: Duration,
    /// Size limit in bytes; -1 for none.
    pub max_bytes: i64,
    /// Message-count limit; -1 for none.
    pub max_messages: i64,
    /// What happens at a limit.
    pub discard: Discard,
    /// How long `Nats-Msg-Id` de-duplication remembers an id.
    pub duplicate_window: Duration,
    /// Whether messages may carry their own `Nats-TTL`.
    pub allow_message_ttl: bool,
}

impl StreamSpec {
    fn new(name: &str, subject: &str) -> StreamSpec {
        StreamSpec {
            name: name.to_owned(),
            subjects: vec![subject.to_owned()],
            storage: Storage::File,
            replicas: 1,
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: -1,
            max_messages: -1,
            discard: Discard::Old,
            duplicate_window: Duration::from_secs(120),
            allow_message_ttl: true,
        }
    }

    /// `SDK_EVENTS` on `sdk.*.events.>`: file storage, 7 days, a 2-minute
    /// de-duplication window, per-message TTL allowed.
    pub fn events() -> StreamSpec {
        StreamSpec::new("SDK_EVENTS", "sdk.*.events.>")
    }

    /// `SDK_WORKFLOWS` on `sdk.*.workflow.>`, with the same defaults.
    pub fn workflows() -> StreamSpec {
        StreamSpec::new("SDK_WORKFLOWS", "sdk.*.workflow.>")
    }

    /// `SDK_DLQ` on `sdk.*.dlq.>`: dead letters, kept 30 days.
    pub fn dead_letters() -> StreamSpec {
        StreamSpec {
            max_age: Duration::from_secs(30 * 24 * 3600),
            ..StreamSpec::new("SDK_DLQ", "sdk.*.dlq.>")
        }
    }

    /// The same stream for one tenant only: `<NAME>_<tenant>` on `sdk.<t>....`. The
    /// tenant id is kept as it is (its characters are all valid in stream names), so
    /// two tenants never share a stream: `acme-eu` and `acme_eu` get
    /// `SDK_EVENTS_acme-eu` and `SDK_EVENTS_acme_eu`.
    pub fn for_tenant(mut self, tenant: &TenantId) -> StreamSpec {
        self.name = format!("{}_{}", self.name, tenant.as_str());
        self.subjects = self
            .subjects
            .iter()
            .map(|s| s.replacen("sdk.*.", &format!("sdk.{tenant}."), 1))
            .collect();
        self
    }

    /// Storage.
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }
    /// Replicas.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }
    /// The default TTL.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }
    /// Size and count limits, and what happens at them.
    pub fn limits(mut self, max_bytes: i64, max_messages: i64, discard: Discard) -> Self {
        self.max_bytes = max_bytes;
        self.max_messages = max_messages;
        self.discard = discard;
        self
    }
    /// The de-duplication window.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    fn to_config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: self.subjects.clone(),
            storage: match self.storage {
                Storage::File => stream::StorageType::File,
                Storage::Memory => stream::StorageType::Memory,
            },
            num_replicas: self.replicas,
            max_age: self.max_age,
            max_bytes: self.max_bytes,
            max_messages: self.max_messages,
            discard: match self.discard {
                Discard::Old => stream::DiscardPolicy::Old,
                Discard::New => stream::DiscardPolicy::New,
            },
            duplicate_window: self.duplicate_window,
            allow_message_ttl: self.allow_message_ttl,
            ..Default::default()
        }
    }
}

impl JetStream {
    /// Creates the stream, or updates it to `spec`. Running it again with the same
    /// spec changes nothing.
    ///
    /// # Errors
    /// [`BusError::JetStream`], e.g. when subjects overlap another stream.
    pub async fn ensure_stream(&self, spec: &StreamSpec) -> Result<(), BusError> {
        self.context
            .create_or_update_stream(spec.to_config())
            .await
            .map(|_| ())
            .map_err(|e| js_error("ensure stream", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_tenant_streams_narrow_the_subjects() {
        let spec = StreamSpec::events().for_tenant(&TenantId::new("acme-eu").unwrap());
        assert_eq!(spec.name, "SDK_EVENTS_acme-eu");
        assert_eq!(spec.subjects, vec!["sdk.acme-eu.events.>".to_owned()]);
    }

    #[test]
    fn tenants_that_differ_only_in_punctuation_get_different_streams() {
        let names: std::collections::BTreeSet<String> = ["acme-eu", "acme_eu", "acme-EU"]
            .iter()
            .filter_map(|t| TenantId::new(t).ok())
            .map(|t| StreamSpec::events().for_tenant(&t).name)
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
