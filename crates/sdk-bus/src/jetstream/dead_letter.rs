//! Dead letters of JetStream consumers: storing them, listing them page by page, and
//! replaying them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::StreamExt;

use super::consumer::Consuming;
use super::{JetStream, js_error};
use crate::settle::{self, DeadLetterFacts, dlq};
use crate::{BusError, Envelope, EnvelopeError, Headers, Subject, TenantId, names};

/// Where a consumer's dead letters must land: a named stream, or whichever stream
/// captures each tenant's dead-letter subjects (looked up once per tenant).
#[derive(Debug)]
pub(crate) struct DeadLetterTarget {
    named: Option<String>,
    by_tenant: Mutex<HashMap<String, String>>,
}

impl DeadLetterTarget {
    pub(crate) fn new(named: Option<String>) -> DeadLetterTarget {
        DeadLetterTarget {
            named,
            by_tenant: Mutex::new(HashMap::new()),
        }
    }

    async fn stream_for(
        &self,
        js: &JetStream,
        tenant: &str,
        subject: &str,
    ) -> Result<String, BusError> {
        if let Some(named) = &self.named {
            return Ok(named.clone());
        }
        if let Some(found) = self
            .by_tenant
            .lock()
            .ok()
            .and_then(|m| m.get(tenant).cloned())
        {
            return Ok(found);
        }
        let found = js
            .context
            .stream_by_subject(subject)
            .await
            .map_err(|e| match e.kind() {
                async_nats::jetstream::context::GetStreamByNameErrorKind::NotFound => {
                    BusError::NoStream {
                        subject: subject.to_owned(),
                    }
                }
                _ => js_error("find the dead-letter stream", e),
            })?;
        if let Ok(mut m) = self.by_tenant.lock() {
            m.insert(tenant.to_owned(), found.clone());
        }
        Ok(found)
    }
}

/// Stores the dead letter of `msg` and waits until the dead-letter stream has it.
pub(crate) async fn store(
    cx: &Consuming,
    msg: &jetstream::Message,
    delivered: u64,
    reason: &str,
) -> Result<(), BusError> {
    let subject = msg.subject.as_str();
    // The dead-letter subject: sdk.<t>.dlq.<rest>; a subject that is not an SDK
    // subject goes under the tenant "_invalid".
    let (tenant, dlq_subject) = match Subject::parse(subject) {
        Ok(s) => (s.tenant().as_str().to_owned(), s.dead_letter().to_string()),
        Err(_) => (
            "_invalid".to_owned(),
            format!("sdk._invalid.dlq.{}", subject.replace(['*', '>'], "_")),
        ),
    };
    let sequence = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
    let facts = DeadLetterFacts {
        subject,
        reason,
        consumer: &cx.spec.durable,
        deliveries: delivered,
        stream: Some((&cx.spec.stream, sequence)),
    };
    let original = Headers::from_nats(msg.headers.as_ref());
    let mut headers = settle::dead_letter_headers(&original, &facts);
    // Idempotent across a crash between the two steps: the same durable and stream
    // sequence yield the same id, so a second dead letter is de-duplicated. The
    // durable is part of it: each durable reads every message, and each one's dead
    // letter is its own.
    headers.push_trusted(
        names::NATS_MSG_ID,
        settle::one_line(&format!(
            "dlq-{}-{}-{sequence}",
            cx.spec.stream, cx.spec.durable
        )),
    );
    // The dead letter must land in the dead-letter stream, or it does not count.
    let stream = cx
        .dead_letters
        .stream_for(&cx.js, &tenant, &dlq_subject)
        .await?;
    headers.insert_static("Nats-Expected-Stream", stream)?;
    let payload = settle::fit_payload(&mut headers, &msg.payload, cx.js.bus.max_payload());
    cx.js
        .send(&dlq_subject, headers, payload)
        .await?
        .ack()
        .await?;
    settle::record_dead_letter(cx.js.bus.monitor(), subject, reason);
    Ok(())
}

/// A message in a dead-letter stream. Its facts are read from the `sdk-dlq-*`
/// headers; a message without them (not written by this SDK) is still listed, with
/// those fields empty, and its raw headers and payload.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Its sequence in the dead-letter stream.
    pub sequence: u64,
    /// The dead-letter subject it is stored under.
    pub subject: String,
    /// The subject it was first published on.
    pub original_subject: Option<String>,
    /// Why it was dead-lettered.
    pub reason: Option<String>,
    /// How many times it had been delivered.
    pub deliveries: Option<u64>,
    /// The consumer that gave up.
    pub consumer: Option<String>,
    /// The headers as stored: the original's plus the `sdk-dlq-*` facts.
    pub headers: Headers,
    /// The payload as stored (empty when `sdk-dlq-payload-omitted` is set).
    pub payload: Bytes,
}

impl DeadLetter {
    fn from_stored(sequence: u64, subject: String, headers: Headers, payload: Bytes) -> DeadLetter {
        let get = |n: &str| headers.get(n).map(str::to_owned);
        DeadLetter {
            sequence,
            subject,
            original_subject: get(dlq::SUBJECT),
            reason: get(dlq::REASON),
            deliveries: get(dlq::DELIVERIES).and_then(|d| d.parse().ok()),
            consumer: get(dlq::CONSUMER),
            headers,
            payload,
        }
    }

    /// The original message as an envelope (with the dead-letter headers).
    ///
    /// # Errors
    /// [`EnvelopeError`] when the stored message is not a readable envelope.
    pub fn envelope(&self) -> Result<Envelope, EnvelopeError> {
        Envelope::from_parts(self.headers.clone(), self.payload.clone())
    }
}

/// Which dead letters to list: a tenant (or all), from a sequence, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterQuery {
    /// Only this tenant's dead letters (`sdk.<t>.dlq.>`); all when `None`.
    pub tenant: Option<TenantId>,
    /// The first stream sequence to look at.
    pub from_sequence: u64,
    /// The most dead letters one page holds.
    pub limit: usize,
}

impl Default for DeadLetterQuery {
    fn default() -> Self {
        DeadLetterQuery {
            tenant: None,
            from_sequence: 1,
            limit: 100,
        }
    }
}

impl DeadLetterQuery {
    /// Every tenant, from the start, 100 a page.
    pub fn new() -> DeadLetterQuery {
        DeadLetterQuery::default()
    }
    /// Only `tenant`'s.
    pub fn tenant(mut self, tenant: &TenantId) -> Self {
        self.tenant = Some(tenant.clone());
        self
    }
    /// From this sequence on (a page's `next`).
    pub fn from_sequence(mut self, sequence: u64) -> Self {
        self.from_sequence = sequence.max(1);
        self
    }
    /// At most this many.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.clamp(1, 10_000);
        self
    }
}

/// One page of dead letters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeadLetterPage {
    /// The dead letters, oldest first.
    pub letters: Vec<DeadLetter>,
    /// The query for the next page, when there are more.
    pub next: Option<DeadLetterQuery>,
}

impl JetStream {
    /// One page of the dead letters in `stream`, oldest first. It reads through a
    /// short-lived consumer in batches, not one request per sequence.
    ///
    /// # Errors
    /// [`BusError::JetStream`] when the stream cannot be read.
    pub async fn dead_letters(
        &self,
        stream: &str,
        query: &DeadLetterQuery,
    ) -> Result<DeadLetterPage, BusError> {
        let s = self
            .context
            .get_stream(stream)
            .await
            .map_err(|e| js_error("get dead-letter stream", e))?;
        let filter = match &query.tenant {
            Some(t) => format!("sdk.{t}.dlq.>"),
            None => String::new(),
        };
        let reader: consumer::PullConsumer = s
            .create_consumer(consumer::pull::Config {
                filter_subject: filter,
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: query.from_sequence,
                },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| js_error("read dead letters", e))?;
        let mut batch = reader
            .fetch()
            .max_messages(query.limit)
            .messages()
            .await
            .map_err(|e| js_error("read dead letters", e))?;
        let mut letters = Vec::with_capacity(query.limit.min(256));
        let mut pending = 0;
        while let Some(next) = batch.next().await {
            let msg = next.map_err(|e| js_error("read dead letters", e))?;
            let (sequence, left) = match msg.info() {
                Ok(info) => (info.stream_sequence, info.pending),
                Err(_) => continue,
            };
            pending = left;
            letters.push(DeadLetter::from_stored(
                sequence,
                msg.subject.to_string(),
                Headers::from_nats(msg.headers.as_ref()),
                msg.payload.clone(),
            ));
        }
        // The reader expires on its own; deleting it now only saves the server work.
        s.delete_consumer(&reader.cached_info().name).await.ok();
        let next = match letters.last() {
            Some(last) if pending > 0 => Some(query.clone().from_sequence(last.sequence + 1)),
            _ => None,
        };
        Ok(DeadLetterPage { letters, next })
    }

    /// Publishes a dead letter back to its original subject, without the dead-letter
    /// headers and without anything the server would act on (a new `Nats-Msg-Id`, so
    /// de-duplication does not swallow it), then removes it from `stream`. A payload
    /// that was omitted from the dead letter is read from the original stream.
    ///
    /// # Errors
    /// [`BusError::Conflict`] for a dead letter without its original subject, or whose
    /// omitted payload is gone; [`BusError::JetStream`]; an invalid subject.
    pub async fn replay(
        &self,
        stream: &str,
        letter: &DeadLetter,
    ) -> Result<super::publish::PublishAck, BusError> {
        let missing = |what: &str| BusError::Conflict {
            what: format!("dead letter {}", letter.sequence),
            reason: what.to_owned(),
        };
        let original = letter
            .original_subject
            .as_deref()
            .ok_or_else(|| missing("it has no sdk-dlq-subject header"))?;
        let subject = Subject::parse(original)?;
        let payload = match letter.headers.get(dlq::PAYLOAD_OMITTED) {
            None => letter.payload.clone(),
            Some(_) => self.original_payload(letter).await.map_err(|_| {
                missing("its payload was omitted and the original is no longer in its stream")
            })?,
        };
        let mut headers = settle::replay_headers(&letter.headers);
        headers.push_trusted(
            names::NATS_MSG_ID,
            format!("replay-{}-{}", letter.sequence, crate::new_id()),
        );
        let ack = self
            .send(subject.as_str(), headers, payload)
            .await?
            .ack()
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

    async fn original_payload(&self, letter: &DeadLetter) -> Result<Bytes, BusError> {
        let stream = letter.headers.get(dlq::STREAM).unwrap_or_default();
        let sequence: u64 = letter
            .headers
            .get(dlq::STREAM_SEQUENCE)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let s = self
            .context
            .get_stream(stream)
            .await
            .map_err(|e| js_error("get original stream", e))?;
        let m = s
            .get_raw_message(sequence)
            .await
            .map_err(|e| js_error("get original message", e))?;
        Ok(m.payload)
    }
}
