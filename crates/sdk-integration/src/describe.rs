//! An envelope described for telemetry, once: the facts a span needs, borrowed from
//! the envelope wherever its headers hold them as sent, and the `MessageInfo` built
//! from them.

use std::borrow::Cow;

use sdk_bus::{Envelope, Subject};
use sdk_telemetry::semconv::MessageInfo;

/// The facts of one message for its span, read from the envelope once. Nothing is
/// copied but a value that had to be percent-decoded.
#[derive(Debug)]
pub(crate) struct Described<'a> {
    destination: &'a str,
    template: String,
    tenant: &'a str,
    message_id: Option<Cow<'a, str>>,
    conversation_id: Option<Cow<'a, str>>,
    event_type: Option<Cow<'a, str>>,
    event_source: Option<Cow<'a, str>>,
    body_size: usize,
}

impl<'a> Described<'a> {
    pub(crate) fn new(subject: &'a Subject, template: String, envelope: &'a Envelope) -> Self {
        Described {
            destination: subject.as_str(),
            template,
            tenant: subject.tenant().as_str(),
            message_id: envelope.id(),
            conversation_id: envelope.correlation_id(),
            event_type: envelope.event_type(),
            event_source: envelope.source(),
            body_size: envelope.payload().len(),
        }
    }

    /// The span's view, with the server and consumer group when known.
    pub(crate) fn info<'b>(
        &'b self,
        server: Option<&'b (String, u16)>,
        consumer_group: Option<&'b str>,
    ) -> MessageInfo<'b> {
        MessageInfo {
            destination: self.destination,
            template: &self.template,
            message_id: self.message_id.as_deref(),
            conversation_id: self.conversation_id.as_deref(),
            body_size: Some(self.body_size),
            consumer_group,
            event_type: self.event_type.as_deref(),
            event_source: self.event_source.as_deref(),
            tenant: Some(self.tenant),
            server_address: server.map(|(a, _)| a.as_str()),
            server_port: server.map(|(_, p)| *p),
            ..Default::default()
        }
    }
}
