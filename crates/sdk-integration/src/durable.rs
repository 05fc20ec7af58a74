//! Typed, traced JetStream: durable publish and durable consumers, in the same trace
//! as everything else.

use std::future::Future;
use std::sync::Arc;

use opentelemetry::Context;
use opentelemetry::KeyValue;
use opentelemetry::context::FutureExt as _;
use sdk_bus::jetstream::publish::PublishAck;
use sdk_bus::{ConsumerSpec, JetStream, JetStreamDelivery, Outcome, Subject, Worker};
use sdk_codec::Payload;
use sdk_telemetry::semconv::Operation;

use crate::{Error, MessageContext, Messenger};

/// The span attribute for which delivery this is. The conventions name it per system
/// (`messaging.servicebus.message.delivery_count`, ...); NATS has none yet, so the
/// same shape is used under `messaging.nats`.
pub(crate) const DELIVERY_COUNT: &str = "messaging.nats.message.delivery_count";

impl Messenger {
    /// Encodes `value` and stores it in the stream that captures `subject`, inside a
    /// PRODUCER `publish` span whose context travels in the headers. Waits for the
    /// server's ack; `Nats-Msg-Id` (from `ce-id`) keeps a retry single.
    ///
    /// # Errors
    /// As [`Messenger::envelope`] and [`JetStream::publish`].
    pub async fn publish_durable<T: Payload>(
        &self,
        js: &JetStream,
        subject: &Subject,
        event_type: &str,
        value: &T,
    ) -> Result<PublishAck, Error> {
        let mut envelope = self.envelope(event_type, value)?;
        let mut guard = self.start_send(
            Operation::Publish,
            subject,
            &mut envelope,
            &Context::current(),
        );
        let result = js.publish(subject, envelope).await;
        if let (Some(g), Err(e)) = (guard.as_mut(), &result) {
            g.fail(e.kind(), &e.to_string());
        }
        Ok(result?)
    }

    /// A durable consumer of `T`: each delivery is decoded and handled inside a
    /// CONSUMER `process` span that continues the producer's trace (a redelivery is a
    /// new span in the same trace, with its delivery count), and how it is settled
    /// (`ack`, `nak`, `dead_letter`) is a `settle` event on that span and a count in
    /// `sdk.messaging.settled`. A payload that cannot be decoded is dead-lettered.
    ///
    /// # Errors
    /// As [`JetStream::consume`].
    pub async fn consume<T, F, Fut>(
        &self,
        js: &JetStream,
        spec: ConsumerSpec,
        handler: F,
    ) -> Result<Worker, Error>
    where
        T: Payload,
        F: Fn(T, MessageContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let me = self.clone();
        let handler = Arc::new(handler);
        let max_deliver = u64::from(spec.max_deliver);
        let group = spec.durable.clone();
        let worker = js
            .consume(spec, move |d: JetStreamDelivery| {
                let (me, handler, group) = (me.clone(), Arc::clone(&handler), group.clone());
                async move {
                    let (mut guard, cx) = me.start_process(
                        &d.subject,
                        d.subject.template(),
                        &d.envelope,
                        Some(&group),
                    );
                    if let Some(g) = guard.as_mut() {
                        g.set_attribute(KeyValue::new(
                            DELIVERY_COUNT,
                            i64::try_from(d.delivered).unwrap_or(i64::MAX),
                        ));
                    }
                    let decoded = {
                        let _attached = cx.clone().attach();
                        me.decode::<T>(&d.envelope)
                    };
                    let outcome = match decoded {
                        Err(e) => {
                            tracing::warn!(subject = %d.subject, error = %e, "a message could not be decoded");
                            if let Some(g) = guard.as_mut() {
                                g.fail("decode", &e.to_string());
                            }
                            Outcome::Reject(format!("cannot be decoded: {e}"))
                        }
                        Ok(value) => {
                            let ctx = MessageContext::new(
                                d.subject.clone(),
                                &d.envelope,
                                None,
                                d.delivered,
                                cx,
                            );
                            let handler_cx = ctx.handler_context();
                            handler(value, ctx).with_context(handler_cx).await
                        }
                    };
                    if let Some(g) = guard.as_mut() {
                        let (settle, reason) = predicted_settle(&outcome, d.delivered, max_deliver);
                        if settle != "ack" {
                            g.fail(settle, reason.unwrap_or_default());
                        }
                        g.settled(settle, reason);
                    }
                    outcome
                }
            })
            .await?;
        Ok(worker)
    }
}

/// How the consumer will settle `outcome` on delivery `delivered` of `max`.
fn predicted_settle(outcome: &Outcome, delivered: u64, max: u64) -> (&'static str, Option<&str>) {
    match outcome {
        Outcome::Retry(reason) if delivered < max => ("nak", Some(reason)),
        Outcome::Retry(reason) | Outcome::Reject(reason) => ("dead_letter", Some(reason)),
        _ => ("ack", None),
    }
}
