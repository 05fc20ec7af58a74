//! What a handler knows about the message it handles, and the conversation that
//! messages sent from inside it join.

use std::time::Instant;

use opentelemetry::Context;
use sdk_bus::{Envelope, Subject, TenantId};

/// The conversation a handler runs in: messages it sends keep the correlation id and
/// take the handled message's id as their causation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conversation {
    pub(crate) correlation_id: String,
    pub(crate) causation_id: String,
}

impl Conversation {
    /// The conversation of the handler running now, if any.
    pub(crate) fn current() -> Option<Conversation> {
        Context::map_current(|cx| cx.get::<Conversation>().cloned())
    }
}

/// What a typed handler gets beside the decoded value: checked facts, never to be
/// parsed again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MessageContext {
    /// The subject the message arrived on.
    pub subject: Subject,
    /// Its tenant (the subject's, which `ce-tenantid` was checked against).
    pub tenant: TenantId,
    /// Its `ce-id`.
    pub message_id: String,
    /// The conversation: its `ce-correlationid`, or its own id when it starts one.
    pub correlation_id: String,
    /// The message that caused it (`ce-causationid`), when it says.
    pub causation_id: Option<String>,
    /// Its `ce-type`.
    pub event_type: String,
    /// Its content type (`ce-datacontenttype`), which the value was decoded from.
    pub content_type: String,
    /// When the handler must be done, when the service has a timeout.
    pub deadline: Option<Instant>,
    /// Which delivery this is (1 on core NATS; counts redeliveries on JetStream).
    pub delivered: u64,
    /// The trace context the handler runs in (its `process` span is current).
    pub trace: Context,
}

impl MessageContext {
    pub(crate) fn new(
        subject: Subject,
        envelope: &Envelope,
        deadline: Option<Instant>,
        delivered: u64,
        trace: Context,
    ) -> MessageContext {
        let message_id = envelope.id().unwrap_or_default().into_owned();
        let correlation_id = envelope
            .correlation_id()
            .map_or_else(|| message_id.clone(), |c| c.into_owned());
        MessageContext {
            tenant: subject.tenant().clone(),
            subject,
            causation_id: envelope.causation_id().map(|c| c.into_owned()),
            event_type: envelope.event_type().unwrap_or_default().into_owned(),
            content_type: envelope
                .data_content_type()
                .unwrap_or_default()
                .into_owned(),
            message_id,
            correlation_id,
            deadline,
            delivered,
            trace,
        }
    }

    /// The context to run the handler in: the trace, plus the conversation that
    /// messages sent from inside it join.
    pub(crate) fn handler_context(&self) -> Context {
        self.trace.with_value(Conversation {
            correlation_id: self.correlation_id.clone(),
            causation_id: self.message_id.clone(),
        })
    }
}
