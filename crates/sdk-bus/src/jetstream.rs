//! JetStream: durable streams, at-least-once processing with retries, backoff and
//! dead letters, per-workflow ordering, workflow state in a KV bucket, and
//! publish-side de-duplication.

use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, kv, stream};
use bytes::Bytes;
use std::panic::AssertUnwindSafe;

use futures::{FutureExt as _, StreamExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::bus::check;
use crate::envelope::names;
use crate::events::{BusEvent, Shared};
use crate::{Bus, BusError, Envelope, Headers, Subject, TenantId};

/// The dead-letter headers of the contract.
pub mod dlq_headers {
    /// Why the message was dead-lettered.
    pub const REASON: &str = "sdk-dlq-reason";
    /// The subject it was on.
    pub const SUBJECT: &str = "sdk-dlq-subject";
    /// How many times it was delivered.
    pub const DELIVERIES: &str = "sdk-dlq-deliveries";
    /// The consumer that gave up on it.
    pub const CONSUMER: &str = "sdk-dlq-consumer";
    /// When, RFC 3339.
    pub const TIME: &str = "sdk-dlq-time";
    /// Every dead-letter header.
    pub const ALL: [&str; 5] = [REASON, SUBJECT, DELIVERIES, CONSUMER, TIME];
}

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

    /// The same stream for one tenant only: `<NAME>_<TENANT>` on `sdk.<t>....`.
    pub fn for_tenant(mut self, tenant: &TenantId) -> StreamSpec {
        self.name = format!(
            "{}_{}",
            self.name,
            tenant.as_str().to_ascii_uppercase().replace('-', "_")
        );
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

/// The server's receipt for a stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishAck {
    /// The stream that stored it.
    pub stream: String,
    /// Its sequence in the stream.
    pub sequence: u64,
    /// True when the id was seen within the window and the message was not stored again.
    pub duplicate: bool,
}

/// A publish whose ack has not been awaited yet.
#[derive(Debug)]
pub struct PendingAck {
    inner: jetstream::context::PublishAckFuture,
}

impl PendingAck {
    /// Waits for the server's receipt.
    ///
    /// # Errors
    /// [`BusError::JetStream`] when no ack arrives in time: publish again with the same
    /// envelope (de-duplication keeps it single).
    pub async fn ack(self) -> Result<PublishAck, BusError> {
        let ack = self.inner.await.map_err(|e| js_error("publish ack", e))?;
        Ok(PublishAck {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

/// Options of one JetStream publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// A per-message TTL (`Nats-TTL`), on streams that allow it.
    pub ttl: Option<Duration>,
    /// Store only if the last message on this subject has this sequence (0: none yet).
    /// The optimistic-concurrency check for workflows.
    pub expected_last_subject_sequence: Option<u64>,
}

/// JetStream on a bus connection.
#[derive(Debug, Clone)]
pub struct JetStream {
    bus: Bus,
    context: jetstream::Context,
}

impl Bus {
    /// JetStream on this connection. Call it inside a tokio runtime (the context
    /// starts a task that collects publish acks).
    ///
    /// # Errors
    /// [`BusError::Unsupported`] on the in-process transport;
    /// [`BusError::Connection`] outside a tokio runtime.
    pub fn jetstream(&self) -> Result<JetStream, BusError> {
        let client = self.nats_client().ok_or(BusError::Unsupported {
            feature: "JetStream",
            transport: "in-process",
        })?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(BusError::Connection {
                operation: "jetstream",
                reason: "must be called inside a tokio runtime".into(),
            });
        }
        let context = jetstream::ContextBuilder::new()
            .timeout(self.config().request_timeout())
            .build(client.clone());
        Ok(JetStream {
            bus: self.clone(),
            context,
        })
    }
}

fn js_error(operation: &'static str, e: impl std::fmt::Display) -> BusError {
    BusError::JetStream {
        operation,
        reason: e.to_string(),
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

    /// Publishes and waits for the server's ack. `Nats-Msg-Id` is set from `ce-id`,
    /// so a retried publish within the window is stored once.
    ///
    /// # Errors
    /// [`BusError::JetStream`] when no ack arrives (the caller should retry with the
    /// same envelope), [`BusError::TooLarge`].
    pub async fn publish(
        &self,
        subject: &Subject,
        envelope: Envelope,
    ) -> Result<PublishAck, BusError> {
        self.publish_with(subject, envelope, PublishOptions::default())
            .await
    }

    /// As [`JetStream::publish`], with a TTL or an expected last sequence.
    ///
    /// # Errors
    /// As [`JetStream::publish`]; [`BusError::Conflict`] when the expected sequence
    /// does not match.
    pub async fn publish_with(
        &self,
        subject: &Subject,
        envelope: Envelope,
        options: PublishOptions,
    ) -> Result<PublishAck, BusError> {
        let id = envelope.id().map(|c| c.into_owned());
        let (mut headers, payload) = envelope.into_parts();
        if let Some(id) = id {
            headers.insert_static(names::NATS_MSG_ID, id)?;
        }
        self.publish_raw(subject.as_str(), headers, payload, options)
            .await
    }

    /// Publishes without waiting for the ack: many publishes can be in flight, and
    /// [`PendingAck::ack`] waits for each receipt. Use it for throughput; every ack must
    /// still be awaited before the message counts as stored.
    ///
    /// # Errors
    /// As [`JetStream::publish`], for the send itself.
    pub async fn publish_async(
        &self,
        subject: &Subject,
        envelope: Envelope,
    ) -> Result<PendingAck, BusError> {
        let id = envelope.id().map(|c| c.into_owned());
        let (mut headers, payload) = envelope.into_parts();
        if let Some(id) = id {
            headers.insert_static(names::NATS_MSG_ID, id)?;
        }
        let size = headers.wire_size() + payload.len();
        let max_payload = self.bus.max_payload();
        if size > max_payload {
            return Err(BusError::TooLarge {
                subject: subject.to_string(),
                size,
                max_payload,
            });
        }
        let inner = self
            .context
            .publish_with_headers(subject.to_string(), headers.into_nats(), payload)
            .await
            .map_err(|e| js_error("publish", e))?;
        Shared::bump(&self.bus.shared().counters.published);
        Ok(PendingAck { inner })
    }

    async fn publish_raw(
        &self,
        subject: &str,
        mut headers: Headers,
        payload: Bytes,
        options: PublishOptions,
    ) -> Result<PublishAck, BusError> {
        if let Some(ttl) = options.ttl {
            headers.insert("Nats-TTL", &format!("{}s", ttl.as_secs().max(1)))?;
        }
        if let Some(seq) = options.expected_last_subject_sequence {
            headers.insert("Nats-Expected-Last-Subject-Sequence", &seq.to_string())?;
        }
        let size = headers.wire_size() + payload.len();
        let max_payload = self.bus.max_payload();
        if size > max_payload {
            return Err(BusError::TooLarge {
                subject: subject.to_owned(),
                size,
                max_payload,
            });
        }
        let ack = self
            .context
            .publish_with_headers(subject.to_owned(), headers.into_nats(), payload)
            .await
            .map_err(|e| js_error("publish", e))?
            .await
            .map_err(|e| match e.kind() {
                jetstream::context::PublishErrorKind::WrongLastSequence => BusError::Conflict {
                    what: format!("subject {subject}"),
                    reason: "the last sequence on the subject is not the expected one".into(),
                },
                _ => js_error("publish ack", e),
            })?;
        Shared::bump(&self.bus.shared().counters.published);
        Ok(PublishAck {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// Starts a durable pull consumer that runs `handler` on each message; instances
    /// with the same `spec.durable` share the work.
    ///
    /// # Errors
    /// [`BusError::JetStream`] when the consumer cannot be created.
    pub async fn consume<F, Fut>(&self, spec: ConsumerSpec, handler: F) -> Result<Worker, BusError>
    where
        F: Fn(JsDelivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let stream = self
            .context
            .get_stream(&spec.stream)
            .await
            .map_err(|e| js_error("get stream", e))?;
        let config = consumer::pull::Config {
            durable_name: Some(spec.durable.clone()),
            filter_subject: spec.filter_subject.clone().unwrap_or_default(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            // One more than ours: we dead-letter at `max_deliver`; the server's limit
            // is only a backstop.
            max_deliver: i64::from(spec.max_deliver) + 1,
            max_ack_pending: i64::try_from(spec.max_ack_pending).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(&spec.durable, config)
            .await
            .map_err(|e| js_error("create consumer", e))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(spec.max_ack_pending.clamp(1, 256))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| js_error("consume", e))?;
        let js = self.clone();
        let handler = Arc::new(handler);
        let spec = Arc::new(spec);
        let task = tokio::spawn(run_worker(js, spec, messages, handler));
        Ok(Worker { task })
    }

    /// The dead letters stored under `tenant` (all tenants when `None`), oldest first.
    ///
    /// # Errors
    /// [`BusError::JetStream`].
    pub async fn dead_letters(
        &self,
        stream: &str,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<DeadLetter>, BusError> {
        let mut s = self
            .context
            .get_stream(stream)
            .await
            .map_err(|e| js_error("get dead-letter stream", e))?;
        let state = s
            .info()
            .await
            .map_err(|e| js_error("stream info", e))?
            .state
            .clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return Ok(out);
        }
        let prefix = tenant.map(|t| format!("sdk.{t}.dlq."));
        for seq in state.first_sequence..=state.last_sequence {
            let Ok(m) = s.get_raw_message(seq).await else {
                continue;
            };
            let subject = m.subject.to_string();
            if prefix
                .as_ref()
                .is_some_and(|p| !subject.starts_with(p.as_str()))
            {
                continue;
            }
            let headers = Headers::from_nats(Some(&m.headers));
            let get = |n: &str| headers.get(n).unwrap_or_default().to_owned();
            out.push(DeadLetter {
                sequence: seq,
                original_subject: get(dlq_headers::SUBJECT),
                reason: get(dlq_headers::REASON),
                deliveries: get(dlq_headers::DELIVERIES).parse().unwrap_or(0),
                consumer: get(dlq_headers::CONSUMER),
                envelope: Envelope::from_parts(headers.clone(), m.payload.clone())?,
            });
        }
        Ok(out)
    }

    /// Publishes a dead letter back to its original subject (without the dead-letter
    /// headers, with a fresh `Nats-Msg-Id` so de-duplication does not swallow it),
    /// then removes it from the dead-letter stream.
    ///
    /// # Errors
    /// [`BusError::JetStream`], or an invalid original subject.
    pub async fn replay(&self, stream: &str, letter: &DeadLetter) -> Result<PublishAck, BusError> {
        let subject = Subject::parse(&letter.original_subject)?;
        let mut headers = letter.envelope.headers().clone();
        for h in dlq_headers::ALL {
            headers.remove(h);
        }
        headers.remove("Nats-Expected-Stream");
        headers.remove(names::NATS_MSG_ID);
        headers.insert(
            names::NATS_MSG_ID,
            &format!("replay-{}-{}", letter.sequence, crate::new_id()),
        )?;
        let ack = self
            .publish_raw(
                subject.as_str(),
                headers,
                letter.envelope.payload().clone(),
                PublishOptions::default(),
            )
            .await?;
        let s = self
            .context
            .get_stream(stream)
            .await
            .map_err(|e| js_error("get dead-letter stream", e))?;
        s.delete_message(letter.sequence)
            .await
            .map_err(|e| js_error("delete dead letter", e))?;
        Ok(ack)
    }

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

/// A message in the dead-letter stream.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Its sequence in the dead-letter stream.
    pub sequence: u64,
    /// The subject it was first published on.
    pub original_subject: String,
    /// Why it was dead-lettered.
    pub reason: String,
    /// How many times it had been delivered.
    pub deliveries: u64,
    /// The consumer that gave up.
    pub consumer: String,
    /// The original headers (plus the dead-letter headers) and payload, unchanged.
    pub envelope: Envelope,
}

/// How messages are consumed.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The stream.
    pub stream: String,
    /// The durable name: instances with the same name share the work.
    pub durable: String,
    /// Only messages on this subject pattern.
    pub filter_subject: Option<String>,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Deliveries before a failing message is dead-lettered.
    pub max_deliver: u32,
    /// Delays between attempts (the last one repeats).
    pub backoff: Vec<Duration>,
    /// Unacknowledged messages in flight, across instances.
    pub max_ack_pending: usize,
    /// Handlers running at once in this instance.
    pub concurrency: usize,
    /// Process messages of one workflow in order (by the `<workflow_id>` token of
    /// `sdk.<t>.workflow.<workflow_id>.<event>`); different workflows in parallel.
    pub ordered_by_workflow: bool,
    /// The stream dead letters go to (on `sdk.<t>.dlq.<...>`).
    pub dead_letter_stream: String,
}

impl ConsumerSpec {
    /// Defaults: ack wait 30 s, 5 deliveries, backoff 1 s, 5 s, 30 s, 1000 in flight,
    /// 16 handlers, dead letters to `SDK_DLQ`.
    pub fn new(stream: &str, durable: &str) -> ConsumerSpec {
        ConsumerSpec {
            stream: stream.to_owned(),
            durable: durable.to_owned(),
            filter_subject: None,
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            backoff: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            max_ack_pending: 1000,
            concurrency: 16,
            ordered_by_workflow: false,
            dead_letter_stream: "SDK_DLQ".to_owned(),
        }
    }

    fn delay(&self, delivered: u64) -> Duration {
        let i = usize::try_from(delivered.saturating_sub(1)).unwrap_or(usize::MAX);
        self.backoff
            .get(i)
            .or_else(|| self.backoff.last())
            .copied()
            .unwrap_or(Duration::ZERO)
    }
}

/// What a handler decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Done: ack.
    Ack,
    /// Failed, may work later: nak with the backoff delay; dead-lettered once
    /// `max_deliver` is reached.
    Retry(String),
    /// Will never work: dead-letter now, then term.
    Reject(String),
}

/// One JetStream message, checked like a core delivery.
#[derive(Debug)]
pub struct JsDelivery {
    /// The subject.
    pub subject: Subject,
    /// The envelope.
    pub envelope: Envelope,
    /// Which delivery this is, from 1.
    pub delivered: u64,
    /// Its sequence in the stream.
    pub stream_sequence: u64,
}

/// A running consumer; stops when aborted or when its connection drains.
#[derive(Debug)]
pub struct Worker {
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Stops taking messages; unacknowledged ones are redelivered elsewhere after
    /// `ack_wait`.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Waits for the worker to end.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

type Handler<F> = Arc<F>;

async fn run_worker<F, Fut>(
    js: JetStream,
    spec: Arc<ConsumerSpec>,
    mut messages: consumer::pull::Stream,
    handler: Handler<F>,
) where
    F: Fn(JsDelivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let mut running = JoinSet::new();
    // Per-workflow lanes: each runs its messages one after another.
    let lanes: Vec<mpsc::UnboundedSender<(jetstream::Message, tokio::sync::OwnedSemaphorePermit)>> =
        if spec.ordered_by_workflow {
            (0..spec.concurrency.max(1))
                .map(|_| {
                    let (tx, mut rx) = mpsc::unbounded_channel::<(
                        jetstream::Message,
                        tokio::sync::OwnedSemaphorePermit,
                    )>();
                    let (js, spec, handler) = (js.clone(), Arc::clone(&spec), Arc::clone(&handler));
                    running.spawn(async move {
                        while let Some((msg, permit)) = rx.recv().await {
                            handle(&js, &spec, &*handler, msg).await;
                            drop(permit);
                        }
                    });
                    tx
                })
                .collect()
        } else {
            Vec::new()
        };
    while let Some(next) = messages.next().await {
        let Ok(msg) = next else {
            // Heartbeat gaps and transient errors: the stream keeps going.
            continue;
        };
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            break;
        };
        if spec.ordered_by_workflow {
            let lane = lane_of(&msg.subject, lanes.len());
            if let Some(tx) = lanes.get(lane) {
                let _ = tx.send((msg, permit));
            }
        } else {
            let (js, spec, handler) = (js.clone(), Arc::clone(&spec), Arc::clone(&handler));
            running.spawn(async move {
                handle(&js, &spec, &*handler, msg).await;
                drop(permit);
            });
            while running.try_join_next().is_some() {}
        }
    }
    drop(lanes);
    while running.join_next().await.is_some() {}
}

/// The lane of a workflow subject: the same workflow id always maps to the same lane.
fn lane_of(subject: &str, lanes: usize) -> usize {
    let workflow_id = subject.split('.').nth(3).unwrap_or(subject);
    let mut h = DefaultHasher::new();
    workflow_id.hash(&mut h);
    usize::try_from(h.finish() % u64::try_from(lanes.max(1)).unwrap_or(1)).unwrap_or(0)
}

async fn handle<F, Fut>(js: &JetStream, spec: &ConsumerSpec, handler: &F, msg: jetstream::Message)
where
    F: Fn(JsDelivery) -> Fut + Send + Sync,
    Fut: Future<Output = Outcome> + Send,
{
    let (delivered, stream_sequence) = match msg.info() {
        Ok(info) => (
            u64::try_from(info.delivered).unwrap_or(1),
            info.stream_sequence,
        ),
        Err(_) => (1, 0),
    };
    let headers = Headers::from_nats(msg.headers.as_ref());
    let outcome = match check(msg.subject.as_str(), headers, msg.payload.clone()) {
        Err((code, reason)) => {
            let shared = js.bus.shared();
            Shared::bump(if code == crate::codes::FORBIDDEN {
                &shared.counters.tenant_mismatches
            } else {
                &shared.counters.rejected
            });
            shared.emit(BusEvent::Rejected {
                subject: msg.subject.to_string(),
                code,
                reason: reason.clone(),
            });
            Outcome::Reject(reason)
        }
        Ok((subject, envelope)) => {
            Shared::bump(&js.bus.shared().counters.delivered);
            // Keep a long task's ack wait alive.
            let every = (spec.ack_wait / 2).max(Duration::from_millis(100));
            let progress = {
                let acker = msg.clone();
                async move {
                    let mut tick = tokio::time::interval(every);
                    tick.tick().await;
                    loop {
                        tick.tick().await;
                        let _ = acker.ack_with(AckKind::Progress).await;
                    }
                }
            };
            let work = AssertUnwindSafe(handler(JsDelivery {
                subject,
                envelope,
                delivered,
                stream_sequence,
            }))
            .catch_unwind()
            .map(|r| r.unwrap_or_else(|_| Outcome::Retry("the handler panicked".into())));
            tokio::select! {
                outcome = work => outcome,
                () = progress => Outcome::Retry("progress loop ended".into()),
            }
        }
    };
    settle(js, spec, &msg, delivered, outcome).await;
}

async fn settle(
    js: &JetStream,
    spec: &ConsumerSpec,
    msg: &jetstream::Message,
    delivered: u64,
    outcome: Outcome,
) {
    let reason = match outcome {
        Outcome::Ack => {
            let _ = msg.ack().await;
            return;
        }
        Outcome::Retry(reason) if delivered < u64::from(spec.max_deliver) => {
            let _ = msg
                .ack_with(AckKind::Nak(Some(spec.delay(delivered))))
                .await;
            let _ = reason;
            return;
        }
        Outcome::Retry(reason) => format!("gave up after {delivered} deliveries: {reason}"),
        Outcome::Reject(reason) => reason,
    };
    // Dead-letter first; only once the dead-letter stream has acknowledged it is the
    // original terminated. If that fails, nak: the message comes back, nothing is lost.
    match dead_letter(js, spec, msg, delivered, &reason).await {
        Ok(()) => {
            let _ = msg.ack_with(AckKind::Term).await;
        }
        Err(_) => {
            let _ = msg
                .ack_with(AckKind::Nak(Some(spec.delay(delivered))))
                .await;
        }
    }
}

async fn dead_letter(
    js: &JetStream,
    spec: &ConsumerSpec,
    msg: &jetstream::Message,
    delivered: u64,
    reason: &str,
) -> Result<(), BusError> {
    let subject = msg.subject.to_string();
    // The dead-letter subject: sdk.<t>.dlq.<rest>; a subject that is not an SDK
    // subject goes under the tenant "_invalid".
    let dlq = match Subject::parse(&subject) {
        Ok(s) => s.dead_letter().to_string(),
        Err(_) => format!("sdk._invalid.dlq.{}", subject.replace(['*', '>'], "_")),
    };
    let mut headers = Headers::from_nats(msg.headers.as_ref());
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    headers.insert(dlq_headers::REASON, &clean(reason))?;
    headers.insert(dlq_headers::SUBJECT, &clean(&subject))?;
    headers.insert(dlq_headers::DELIVERIES, &delivered.to_string())?;
    headers.insert(dlq_headers::CONSUMER, &clean(&spec.durable))?;
    headers.insert(dlq_headers::TIME, &crate::new_time())?;
    // Idempotent across a crash between the two steps: the same stream sequence
    // yields the same id, so a second dead-lettering is de-duplicated.
    let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
    headers.insert(names::NATS_MSG_ID, &format!("dlq-{}-{seq}", spec.stream))?;
    // The dead letter must land in the dead-letter stream, or it does not count.
    headers.insert("Nats-Expected-Stream", &spec.dead_letter_stream)?;
    js.publish_raw(
        &dlq,
        headers,
        msg.payload.clone(),
        PublishOptions::default(),
    )
    .await?;
    let shared = js.bus.shared();
    Shared::bump(&shared.counters.dead_lettered);
    shared.emit(BusEvent::DeadLettered {
        subject,
        reason: reason.to_owned(),
    });
    Ok(())
}

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
/// effectively-once handlers on top of at-least-once delivery.
#[derive(Debug, Clone)]
pub struct Idempotency {
    store: kv::Store,
}

impl Idempotency {
    /// `true` the first time `id` is seen within the TTL; `false` after.
    ///
    /// # Errors
    /// [`BusError::JetStream`].
    pub async fn first_time(&self, id: &str) -> Result<bool, BusError> {
        let key: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        match self.store.create(&key, Bytes::new()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(js_error("idempotency", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_always_maps_to_the_same_lane() {
        let a = lane_of("sdk.acme.workflow.wf-1.step1", 8);
        assert_eq!(a, lane_of("sdk.acme.workflow.wf-1.step2", 8));
        assert!(a < 8);
    }

    #[test]
    fn per_tenant_streams_narrow_the_subjects() {
        let spec = StreamSpec::events().for_tenant(&TenantId::new("acme-eu").unwrap());
        assert_eq!(spec.name, "SDK_EVENTS_ACME_EU");
        assert_eq!(spec.subjects, vec!["sdk.acme-eu.events.>".to_owned()]);
    }

    #[test]
    fn backoff_repeats_its_last_step() {
        let mut spec = ConsumerSpec::new("S", "d");
        spec.backoff = vec![Duration::from_millis(10), Duration::from_millis(20)];
        assert_eq!(spec.delay(1), Duration::from_millis(10));
        assert_eq!(spec.delay(2), Duration::from_millis(20));
        assert_eq!(spec.delay(9), Duration::from_millis(20));
    }
}
