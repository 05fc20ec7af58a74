//! Errors of the bus.

use std::time::Duration;

use crate::{ConfigError, EnvelopeError, SubjectError};

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
    /// A header name or value is not allowed.
    #[error(transparent)]
    Header(#[from] crate::HeaderError),
    /// Connecting failed.
    #[error("cannot connect to NATS at {servers}: {reason}")]
    Connect {
        /// The servers that were tried.
        servers: String,
        /// The client's reason.
        reason: String,
    },
    /// Headers plus payload exceed the server's `max_payload`.
    #[error(
        "message for {subject} is {size} bytes (headers and payload), over the server's max_payload of {max_payload} bytes"
    )]
    TooLarge {
        /// The subject.
        subject: String,
        /// Headers plus payload, in bytes.
        size: usize,
        /// The server's limit.
        max_payload: usize,
    },
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
    #[error("publish to {subject} failed: {reason}")]
    Publish {
        /// The subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// Subscribing failed.
    #[error("subscribe to {subject} failed: {reason}")]
    Subscribe {
        /// The subject or pattern.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The server refused an operation under this connection's permissions.
    #[error("permission denied: this connection may not {operation} {subject:?}")]
    PermissionDenied {
        /// `publish to` or `subscribe to`.
        operation: &'static str,
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
    #[error("no responders for {subject}")]
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
    #[error("request to {subject} failed: {reason}")]
    Request {
        /// The subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// Flushing or draining failed.
    #[error("{operation} failed: {reason}")]
    Connection {
        /// `flush` or `drain`.
        operation: &'static str,
        /// Why.
        reason: String,
    },
    /// A JetStream operation failed.
    #[error("JetStream {operation} failed: {reason}")]
    JetStream {
        /// What was being done: `publish`, `publish ack`, `ensure stream`, ...
        operation: &'static str,
        /// Why.
        reason: String,
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
            BusError::Envelope(_) | BusError::Header(_) => "invalid_envelope",
            BusError::Connect { .. } => "connect",
            BusError::TooLarge { .. } => "too_large",
            BusError::ReconnectBufferFull { .. } => "disconnected",
            BusError::Publish { .. } => "publish",
            BusError::Subscribe { .. } => "subscribe",
            BusError::PermissionDenied { .. } => "permission_denied",
            BusError::Timeout { .. } => "timeout",
            BusError::NoResponders { .. } => "no_responders",
            BusError::ServiceError { .. } => "service_error",
            BusError::Request { .. } => "request",
            BusError::Connection { .. } => "connection",
            BusError::JetStream { .. } => "jetstream",
            BusError::Conflict { .. } => "conflict",
            BusError::Unsupported { .. } => "unsupported",
            BusError::Closed => "closed",
        }
    }
}
