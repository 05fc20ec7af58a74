//! Typed, traced JetStream: durable publish and durable consumers, in the same trace
//! as everything else.

use std::future::Future;
use std::sync::Arc;

use opentelemetry::Context;
use opentelemetry::KeyValue;
use opentelemetry::context::FutureExt as _;
use sdk_bus::jetstream::publish::PublishAck;
use sdk_bus::{ConsumerSpec, JetStream, JetStreamDelivery, Outcome, Settlement, Subject, Worker};
use sdk_codec::Payload;
use sdk_telemetry::semconv::Operation;

use crate::messenger::end_op;
use crate::{Error, MessageContext, Messenger};

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
        end_op(guard);
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
        // Shared by every delivery: one reference count per message, not a copy of
        // the messenger, the spec and the group name.
        let shared = Arc::new(Consuming {
            me: self.clone(),
            handler,
            group: spec.durable.clone(),
            policy: spec.clone(),
        });
        let worker = js
            .consume(spec, move |d: JetStreamDelivery| {
                let shared = Arc::clone(&shared);
                async move {
                    let Consuming {
                        me,
                        handler,
                        group,
                        policy,
                    } = &*shared;
                    let (mut guard, cx) = me.start_process(
                        &d.subject,
                        || d.subject.template(),
                        &d.envelope,
                        Some(group),
                    );
                    if let Some(g) = guard.as_mut() {
                        // A handler the bus stops (timeout, panic) drops this future.
                        g.fail_if_dropped();
                        g.set_attribute(KeyValue::new(
                            sdk_telemetry::semconv::NATS_DELIVERY_COUNT,
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
                        let settle = policy.settlement(&outcome, d.delivered);
                        let reason = match &outcome {
                            Outcome::Retry(r) | Outcome::Reject(r) => Some(r.as_str()),
                            _ => None,
                        };
                        if settle != Settlement::Ack {
                            g.fail(settle.as_str(), reason.unwrap_or_default());
                        }
                        g.settled(settle.as_str(), reason);
                    }
                    end_op(guard);
                    outcome
                }
            })
            .await?;
        Ok(worker)
    }
}

/// What every delivery of one typed consumer shares.
struct Consuming<F> {
    me: Messenger,
    handler: F,
    group: String,
    policy: ConsumerSpec,
}
