//! Errors of the bus. Each variant says what failed and where; the client library's
//! own error is kept as the source, never flattened into text.

use std::time::Duration;

use crate::events::Operation;
mod operation;

pub use operation::{JetStreamPublishError, PublishError, RequestError, SubscribeError};

use crate::{ConfigError, EnvelopeError, SubjectError};

/// A message over the server's `max_payload`: every send checks it before the client
/// sees the message, so the error names both sizes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "message for {subject} is {size} bytes (headers and payload), over the server's max_payload of {max_payload} bytes"
)]
#[non_exhaustive]
pub struct TooLarge {
    /// The subject.
    pub subject: String,
    /// Headers plus payload, in bytes.
    pub size: usize,
    /// The server's limit.
    pub max_payload: usize,
}

impl TooLarge {
    /// `Ok` when `size` bytes fit in `max_payload`, else the error for `subject`.
    ///
    /// # Errors
    /// [`TooLarge`] when `size > max_payload`.
    pub(crate) fn check(subject: &str, size: usize, max_payload: usize) -> Result<(), TooLarge> {
        if size > max_payload {
            return Err(TooLarge {
                subject: subject.to_owned(),
                size,
                max_payload,
            });
        }
        Ok(())
    }
}

/// The client library's error behind a failure.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong on the bus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A subject or pattern breaks the contract's grammar.
    #[error(transparent)]
    Subject(#[from] SubjectError),
    /// An envelope cannot be built or read.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// A reply was refused: not a readable envelope, or it names another tenant than
    /// the request's subject.
    #[error("the reply was refused: {0}")]
    InvalidReply(EnvelopeError),
    /// A header name or value is not allowed.
    #[error(transparent)]
    Header(#[from] crate::HeaderError),
    /// Connecting failed. `servers` has any user, password or token removed.
    #[error("cannot connect to NATS at {servers}")]
    Connect {
        /// The servers that were tried, without credentials.
        servers: String,
        /// The client's error, with credentials removed from its text.
        #[source]
        source: Cause,
    },
    /// Headers plus payload exceed the server's `max_payload`.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// Disconnected, and the reconnect buffer is full.
    #[error(
        "not connected, and {limit} messages are already buffered for the reconnect; publish to {subject} refused"
    )]
    ReconnectBufferFull {
        /// The subject.
        subject: String,
        /// The configured reconnect buffer.
        limit: usize,
    },
    /// The client could not take a publish.
    #[error("publish to {subject} failed")]
    Publish {
        /// The subject.
        subject: String,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// Subscribing failed.
    #[error("subscribe to {subject} failed")]
    Subscribe {
        /// The subject or pattern.
        subject: String,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// The server refused an operation under this connection's permissions.
    #[error("permission denied: this connection may not {operation} {subject:?}")]
    PermissionDenied {
        /// What was refused.
        operation: Operation,
        /// The subject.
        subject: String,
    },
    /// Nobody answered a request in time.
    #[error("request to {subject} timed out after {after:?}")]
    Timeout {
        /// The subject.
        subject: String,
        /// The timeout.
        after: Duration,
    },
    /// Nobody listens on the request's subject.
    #[error("no responders for {subject}: no service is subscribed to it")]
    NoResponders {
        /// The subject.
        subject: String,
    },
    /// The responder answered with an error (the `Nats-Service-Error` headers).
    #[error("service error {code}: {message}")]
    ServiceError {
        /// The numeric code: 400, 403, 404, 408, 413, 500, 503.
        code: u16,
        /// The text.
        message: String,
    },
    /// A request failed for another reason.
    #[error("request to {subject} failed")]
    Request {
        /// The subject.
        subject: String,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// A reply was not sent: its subject is not an inbox of the request's tenant
    /// (`_INBOX.<tenant>.…`), so answering there could write into another tenant.
    #[error(
        "reply to {reply:?} refused: replies go only to the inbox of tenant {tenant}, _INBOX.{tenant}.<id>"
    )]
    ReplyRefused {
        /// The reply subject the request named.
        reply: String,
        /// The request's tenant.
        tenant: crate::TenantId,
    },
    /// Flushing or draining failed.
    #[error("{operation} failed")]
    Connection {
        /// `flush` or `drain`.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// No JetStream stream captures the subject: the message was not stored.
    #[error(
        "no JetStream stream captures {subject}: create one with JetStream::ensure_stream (StreamSpec::events(), workflows() or dead_letters(), or your own) before publishing"
    )]
    NoStream {
        /// The subject.
        subject: String,
    },
    /// A JetStream operation failed.
    #[error("JetStream {operation} failed")]
    JetStream {
        /// What was being done: `publish`, `publish ack`, `ensure stream`, ...
        operation: &'static str,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// A compare-and-set lost to a concurrent writer.
    #[error("conflict on {what}: {reason}")]
    Conflict {
        /// The key or subject.
        what: String,
        /// What did not match.
        reason: String,
    },
    /// The feature does not exist on this transport.
    #[error("{feature} is not available on the {transport} transport")]
    Unsupported {
        /// The feature.
        feature: &'static str,
        /// The transport.
        transport: &'static str,
    },
    /// The bus was drained or closed.
    #[error("the bus is closed")]
    Closed,
}

impl BusError {
    /// A short, low-cardinality name of the failure, for `error.type` on spans and
    /// metrics: `timeout`, `no_responders`, `service_error`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            BusError::Config(_) => "config",
            BusError::Subject(_) => "invalid_subject",
            BusError::Envelope(_) | BusError::InvalidReply(_) | BusError::Header(_) => {
                "invalid_envelope"
            }
            BusError::Connect { .. } => "connect",
            BusError::TooLarge(_) => "too_large",
            BusError::ReconnectBufferFull { .. } => "disconnected",
            BusError::Publish { .. } => "publish",
            BusError::Subscribe { .. } => "subscribe",
            BusError::PermissionDenied { .. } => "permission_denied",
            BusError::Timeout { .. } => "timeout",
            BusError::NoResponders { .. } => "no_responders",
            BusError::ServiceError { .. } => "service_error",
            BusError::Request { .. } => "request",
            BusError::ReplyRefused { .. } => "reply_refused",
            BusError::Connection { .. } => "connection",
            BusError::NoStream { .. } => "no_stream",
            BusError::JetStream { .. } => "jetstream",
            BusError::Conflict { .. } => "conflict",
            BusError::Unsupported { .. } => "unsupported",
            BusError::Closed => "closed",
        }
    }

    /// Whether trying the same operation again later can succeed: timeouts, lost
    /// connections, a full reconnect buffer, a 503 or 408 from a service, and
    /// JetStream failures other than a missing stream. A bad message, a missing
    /// stream, a refused permission or a conflict will fail the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            BusError::Timeout { .. }
            | BusError::ReconnectBufferFull { .. }
            | BusError::NoResponders { .. }
            | BusError::Publish { .. }
            | BusError::Request { .. }
            | BusError::Connection { .. }
            | BusError::JetStream { .. } => true,
            BusError::ServiceError { code, .. } => matches!(code, 408 | 503),
            _ => false,
        }
    }
}

/// A client error's text as the source of a [`BusError`], with `secrets` removed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Scrubbed(pub(crate) String);

impl Scrubbed {
    pub(crate) fn new(text: &str, secrets: &[&str]) -> Scrubbed {
        let mut out = crate::config::redact_urls(text);
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            out = out.replace(s, "***");
        }
        Scrubbed(out)
    }
}
