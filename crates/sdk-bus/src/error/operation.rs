//! The errors of the four hot operations: each returns only what it can produce.
//! Every one converts into [`BusError`], so `?` still works in code that mixes them.

use std::time::Duration;

use super::{BusError, Cause, TooLarge};
use crate::events::Operation;
use crate::{EnvelopeError, HeaderError, SubjectError};

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
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
    /// The client could not take the message.
    #[error("publish to {subject} failed")]
    Client {
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
    /// The bus was drained or closed.
    #[error("the bus is closed")]
    Closed,
}

impl PublishError {
    /// A short, low-cardinality name of the failure (as [`BusError::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            PublishError::TooLarge(_) => "too_large",
            PublishError::ReconnectBufferFull { .. } => "disconnected",
            PublishError::Client { .. } => "publish",
            PublishError::ReplyRefused { .. } => "reply_refused",
            PublishError::Closed => "closed",
        }
    }
}

impl From<PublishError> for BusError {
    fn from(e: PublishError) -> BusError {
        match e {
            PublishError::TooLarge(e) => BusError::TooLarge(e),
            PublishError::ReconnectBufferFull { subject, limit } => {
                BusError::ReconnectBufferFull { subject, limit }
            }
            PublishError::Client { subject, source } => BusError::Publish { subject, source },
            PublishError::ReplyRefused { reply, tenant } => {
                BusError::ReplyRefused { reply, tenant }
            }
            PublishError::Closed => BusError::Closed,
        }
    }
}

/// Why a subscription (or a service) could not start, or ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The queue group name is not a valid token.
    #[error(transparent)]
    InvalidGroup(#[from] SubjectError),
    /// The server refused the subscription under this connection's permissions.
    #[error("permission denied: this connection may not subscribe to {subject:?}")]
    PermissionDenied {
        /// The subject or pattern.
        subject: String,
    },
    /// The micro-service name or version is not valid.
    #[error("invalid service: {reason}")]
    InvalidService {
        /// What is wrong.
        reason: String,
    },
    /// The client could not subscribe.
    #[error("subscribe to {subject} failed")]
    Client {
        /// The subject or pattern.
        subject: String,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// The bus was drained or closed.
    #[error("the bus is closed")]
    Closed,
}

impl SubscribeError {
    /// A short, low-cardinality name of the failure (as [`BusError::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            SubscribeError::InvalidGroup(_) => "invalid_subject",
            SubscribeError::InvalidService { .. } => "config",
            SubscribeError::PermissionDenied { .. } => "permission_denied",
            SubscribeError::Client { .. } => "subscribe",
            SubscribeError::Closed => "closed",
        }
    }
}

impl From<SubscribeError> for BusError {
    fn from(e: SubscribeError) -> BusError {
        match e {
            SubscribeError::InvalidGroup(e) => BusError::Subject(e),
            SubscribeError::InvalidService { reason } => BusError::Config(crate::ConfigError {
                field: "service".into(),
                reason,
            }),
            SubscribeError::PermissionDenied { subject } => BusError::PermissionDenied {
                operation: Operation::Subscribe,
                subject,
            },
            SubscribeError::Client { subject, source } => BusError::Subscribe { subject, source },
            SubscribeError::Closed => BusError::Closed,
        }
    }
}

/// Why a request got no usable reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The request is larger than the server's `max_payload`.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// Nobody listens on the subject.
    #[error("no responders for {subject}: no service is subscribed to it")]
    NoResponders {
        /// The subject.
        subject: String,
    },
    /// No reply in time.
    #[error("request to {subject} timed out after {after:?}")]
    Timeout {
        /// The subject.
        subject: String,
        /// The timeout.
        after: Duration,
    },
    /// The server refused the request, or its reply inbox, under this connection's
    /// permissions.
    #[error("permission denied: this connection may not {operation} {subject:?}")]
    PermissionDenied {
        /// What was refused.
        operation: Operation,
        /// The subject.
        subject: String,
    },
    /// The service answered with an error (the `Nats-Service-Error` headers).
    #[error("service error {code}: {message}")]
    ServiceError {
        /// The numeric code: 400, 403, 404, 408, 413, 500, 503 (or a peer's own).
        code: u16,
        /// The text.
        message: String,
    },
    /// The reply is not a readable envelope, or names another tenant than the
    /// request's subject.
    #[error("the reply was refused: {0}")]
    InvalidReply(EnvelopeError),
    /// The client failed otherwise.
    #[error("request to {subject} failed")]
    Client {
        /// The subject.
        subject: String,
        /// The client's error.
        #[source]
        source: Cause,
    },
    /// The bus was drained or closed.
    #[error("the bus is closed")]
    Closed,
}

impl RequestError {
    /// A short, low-cardinality name of the failure (as [`BusError::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::TooLarge(_) => "too_large",
            RequestError::NoResponders { .. } => "no_responders",
            RequestError::Timeout { .. } => "timeout",
            RequestError::PermissionDenied { .. } => "permission_denied",
            RequestError::ServiceError { .. } => "service_error",
            RequestError::InvalidReply(_) => "invalid_envelope",
            RequestError::Client { .. } => "request",
            RequestError::Closed => "closed",
        }
    }
}

impl From<RequestError> for BusError {
    fn from(e: RequestError) -> BusError {
        match e {
            RequestError::TooLarge(e) => BusError::TooLarge(e),
            RequestError::NoResponders { subject } => BusError::NoResponders { subject },
            RequestError::Timeout { subject, after } => BusError::Timeout { subject, after },
            RequestError::PermissionDenied { operation, subject } => {
                BusError::PermissionDenied { operation, subject }
            }
            RequestError::ServiceError { code, message } => {
                BusError::ServiceError { code, message }
            }
            RequestError::InvalidReply(e) => BusError::InvalidReply(e),
            RequestError::Client { subject, source } => BusError::Request { subject, source },
            RequestError::Closed => BusError::Closed,
        }
    }
}

/// Why a JetStream publish was not stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JetStreamPublishError {
    /// Headers plus payload exceed the server's `max_payload`.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// No stream captures the subject: retrying will not help until one does.
    #[error(
        "no JetStream stream captures {subject}: create one with JetStream::ensure_stream (StreamSpec::events(), workflows() or dead_letters(), or your own) before publishing"
    )]
    NoStream {
        /// The subject.
        subject: String,
    },
    /// The expected last sequence did not match: another writer was first.
    #[error(
        "conflict on subject {subject}: the last sequence on the subject is not the expected one"
    )]
    WrongLastSequence {
        /// The subject.
        subject: String,
    },
    /// A header of the message could not be written.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// No ack arrived, or the client failed: publish the same envelope again (its
    /// `Nats-Msg-Id` keeps it single).
    #[error("JetStream publish to {subject} failed")]
    Client {
        /// The subject.
        subject: String,
        /// The client's error.
        #[source]
        source: Cause,
    },
}

impl JetStreamPublishError {
    /// A short, low-cardinality name of the failure (as [`BusError::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            JetStreamPublishError::TooLarge(_) => "too_large",
            JetStreamPublishError::NoStream { .. } => "no_stream",
            JetStreamPublishError::WrongLastSequence { .. } => "conflict",
            JetStreamPublishError::Header(_) => "invalid_envelope",
            JetStreamPublishError::Client { .. } => "jetstream",
        }
    }

    /// Whether publishing the same envelope again can succeed: only a client failure
    /// (such as a missing ack) can clear up.
    pub fn is_transient(&self) -> bool {
        matches!(self, JetStreamPublishError::Client { .. })
    }
}

impl From<JetStreamPublishError> for BusError {
    fn from(e: JetStreamPublishError) -> BusError {
        match e {
            JetStreamPublishError::TooLarge(e) => BusError::TooLarge(e),
            JetStreamPublishError::NoStream { subject } => BusError::NoStream { subject },
            JetStreamPublishError::WrongLastSequence { subject } => BusError::Conflict {
                what: format!("subject {subject}"),
                reason: "the last sequence on the subject is not the expected one".into(),
            },
            JetStreamPublishError::Header(e) => BusError::Header(e),
            JetStreamPublishError::Client { source, .. } => BusError::JetStream {
                operation: "publish",
                source,
            },
        }
    }
}
