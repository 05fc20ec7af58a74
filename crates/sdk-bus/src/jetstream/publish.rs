//! Storing messages: acked publish, de-duplication scoped by tenant, per-message TTL
//! and the expected-sequence check.

use std::time::Duration;

use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use bytes::Bytes;

use super::JetStream;
use crate::events::Monitor;
use crate::{Envelope, Headers, JetStreamPublishError, Subject, names};

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
    subject: String,
    inner: PublishAckFuture,
}

impl PendingAck {
    /// Waits for the server's receipt.
    ///
    /// # Errors
    /// [`JetStreamPublishError::NoStream`] when no stream captures the subject;
    /// [`JetStreamPublishError::Client`] when no ack arrives in time: publish again
    /// with the same envelope (de-duplication keeps it single).
    pub async fn ack(self) -> Result<PublishAck, JetStreamPublishError> {
        let ack = self
            .inner
            .await
            .map_err(|e| publish_error(&self.subject, e))?;
        Ok(PublishAck {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

/// Options of one JetStream publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOptions {
    /// A per-message TTL (`Nats-TTL`), on streams that allow it.
    pub ttl: Option<Duration>,
    /// Store only if the last message on this subject has this sequence (0: none yet).
    /// The optimistic-concurrency check for workflows.
    pub expected_last_subject_sequence: Option<u64>,
}

impl PublishOptions {
    /// No TTL, no expected sequence.
    pub fn new() -> PublishOptions {
        PublishOptions::default()
    }
    /// A per-message TTL.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
    /// Store only if the subject's last sequence is `sequence`.
    pub fn expected_last_subject_sequence(mut self, sequence: u64) -> Self {
        self.expected_last_subject_sequence = Some(sequence);
        self
    }
}

/// Maps the client's publish error: a subject no stream captures gets its own kind,
/// which says how to fix it.
pub(crate) fn publish_error(subject: &str, e: PublishError) -> JetStreamPublishError {
    let subject = subject.to_owned();
    match e.kind() {
        PublishErrorKind::StreamNotFound => JetStreamPublishError::NoStream { subject },
        PublishErrorKind::WrongLastSequence => JetStreamPublishError::WrongLastSequence { subject },
        _ => JetStreamPublishError::Client {
            subject,
            source: Box::new(e),
        },
    }
}

/// The de-duplication id of a message: `<tenant>:<ce-id>`. Streams may hold several
/// tenants, and one tenant's ids must never swallow another's.
pub(crate) fn dedup_id(subject: &Subject, envelope: &Envelope) -> Option<String> {
    envelope
        .id()
        .map(|id| format!("{}:{id}", subject.tenant().as_str()))
}

impl JetStream {
    /// Publishes and waits for the server's ack. `Nats-Msg-Id` is `<tenant>:<ce-id>`,
    /// so a retried publish within the window is stored once, and two tenants never
    /// collide.
    ///
    /// # Errors
    /// [`JetStreamPublishError::NoStream`] when no stream captures `subject` (call
    /// [`JetStream::ensure_stream`]); [`JetStreamPublishError::Client`] when no ack
    /// arrives (retry with the same envelope); [`JetStreamPublishError::TooLarge`].
    pub async fn publish(
        &self,
        subject: &Subject,
        envelope: Envelope,
    ) -> Result<PublishAck, JetStreamPublishError> {
        self.publish_with(subject, envelope, PublishOptions::default())
            .await
    }

    /// As [`JetStream::publish`], with a TTL or an expected last sequence.
    ///
    /// # Errors
    /// As [`JetStream::publish`]; [`JetStreamPublishError::WrongLastSequence`] when
    /// the expected sequence does not match.
    pub async fn publish_with(
        &self,
        subject: &Subject,
        envelope: Envelope,
        options: PublishOptions,
    ) -> Result<PublishAck, JetStreamPublishError> {
        let id = dedup_id(subject, &envelope);
        let (mut headers, payload) = envelope.into_parts();
        if let Some(id) = id {
            headers.insert_static(names::NATS_MSG_ID, id)?;
        }
        if let Some(ttl) = options.ttl {
            headers.insert_static("Nats-TTL", format!("{}s", ttl.as_secs().max(1)))?;
        }
        if let Some(seq) = options.expected_last_subject_sequence {
            headers.insert_static("Nats-Expected-Last-Subject-Sequence", seq.to_string())?;
        }
        self.send(subject.as_str(), headers, payload)
            .await?
            .ack()
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
    ) -> Result<PendingAck, JetStreamPublishError> {
        let id = dedup_id(subject, &envelope);
        let (mut headers, payload) = envelope.into_parts();
        if let Some(id) = id {
            headers.insert_static(names::NATS_MSG_ID, id)?;
        }
        self.send(subject.as_str(), headers, payload).await
    }

    /// Checks the size, sends, and counts; the ack is the caller's to await.
    pub(crate) async fn send(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
    ) -> Result<PendingAck, JetStreamPublishError> {
        self.bus
            .check_size(subject, headers.wire_size() + payload.len())?;
        let inner = self
            .context
            .publish_with_headers(subject.to_owned(), headers.into_nats(), payload)
            .await
            .map_err(|e| publish_error(subject, e))?;
        Monitor::bump(&self.bus.monitor().counters.published);
        Ok(PendingAck {
            subject: subject.to_owned(),
            inner,
        })
    }
}
