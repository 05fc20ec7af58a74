//! An envelope described for telemetry, once: the owned facts a span needs, and the
//! borrowed `MessageInfo` built from them.

use sdk_bus::{Envelope, Subject};
use sdk_telemetry::semconv::MessageInfo;

/// The facts of one message for its span, read from the envelope once.
#[derive(Debug)]
pub(crate) struct Described {
    destination: String,
    template: String,
    tenant: String,
    message_id: Option<String>,
    conversation_id: Option<String>,
    event_type: Option<String>,
    event_source: Option<String>,
    body_size: usize,
}

impl Described {
    pub(crate) fn new(subject: &Subject, template: String, envelope: &Envelope) -> Described {
        Described {
            destination: subject.as_str().to_owned(),
            template,
            tenant: subject.tenant().as_str().to_owned(),
            message_id: envelope.id().map(|c| c.into_owned()),
            conversation_id: envelope.correlation_id().map(|c| c.into_owned()),
            event_type: envelope.event_type().map(|c| c.into_owned()),
            event_source: envelope.source().map(|c| c.into_owned()),
            body_size: envelope.payload().len(),
        }
    }

    /// The span's view, with the server and consumer group when known.
    pub(crate) fn info<'a>(
        &'a self,
        server: Option<&'a (String, u16)>,
        consumer_group: Option<&'a str>,
    ) -> MessageInfo<'a> {
        MessageInfo {
            destination: &self.destination,
            template: &self.template,
            message_id: self.message_id.as_deref(),
            conversation_id: self.conversation_id.as_deref(),
            body_size: Some(self.body_size),
            consumer_group,
            event_type: self.event_type.as_deref(),
            event_source: self.event_source.as_deref(),
            tenant: Some(&self.tenant),
            server_address: server.map(|(a, _)| a.as_str()),
            server_port: server.map(|(_, p)| *p),
            ..Default::default()
        }
    }
}
