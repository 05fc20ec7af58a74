//! Typed, traced core NATS: publish, request and serve.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use sdk_bus::{Delivery, ServeOptions, Service, ServiceCode, ServiceFailure};
use sdk_bus::{RequestError, Subject, SubjectPattern, SubscribeError};
use sdk_codec::Payload;
use sdk_telemetry::semconv::Operation;

use crate::messenger::end_op;
use crate::{Error, MessageContext, Messenger};

impl Messenger {
    /// Encodes and publishes `value` on `subject`, inside a PRODUCER `publish` span.
    ///
    /// # Errors
    /// As [`Messenger::envelope`] and [`sdk_bus::Bus::publish`].
    pub async fn publish<T: Payload>(
        &self,
        subject: &Subject,
        event_type: &str,
        value: &T,
    ) -> Result<(), Error> {
        let mut envelope = self.envelope(event_type, value)?;
        let mut guard = self.start_send(
            Operation::Publish,
            subject,
            &mut envelope,
            &Context::current(),
        );
        let result = self.bus.publish(subject, envelope).await;
        if let (Some(g), Err(e)) = (guard.as_mut(), &result) {
            g.fail(e.kind(), &e.to_string());
        }
        end_op(guard);
        Ok(result?)
    }

    /// Sends `value` as a request inside a CLIENT `request` span and decodes the reply
    /// as `R`. A reply that cannot be decoded marks the span failed too.
    ///
    /// # Errors
    /// As [`Messenger::envelope`], [`sdk_bus::Bus::request`] and [`Messenger::decode`].
    pub async fn request<T: Payload, R: Payload>(
        &self,
        subject: &Subject,
        event_type: &str,
        value: &T,
    ) -> Result<R, Error> {
        let mut envelope = self.envelope(event_type, value)?;
        // Ask for the answer in our own format: a service may otherwise answer in any.
        envelope
            .headers_mut()
            .insert("accept", self.codec.format().content_type())
            .map_err(sdk_bus::BusError::from)?;
        let mut guard = self.start_send(
            Operation::Request,
            subject,
            &mut envelope,
            &Context::current(),
        );
        let reply = match self.bus.request(subject, envelope).await {
            Ok(reply) => reply,
            Err(e) => {
                if let Some(g) = guard.as_mut() {
                    g.fail(RequestError::kind(&e), &e.to_string());
                }
                end_op(guard);
                return Err(e.into());
            }
        };
        // The reply's decode is part of the request: its span is the request's child.
        let decoded = match guard.as_ref() {
            Some(g) => g
                .context(&Context::current())
                .attach_scoped(|| self.decode(&reply)),
            None => self.decode(&reply),
        };
        if let (Some(g), Err(e)) = (guard.as_mut(), &decoded) {
            g.fail("invalid_reply", &e.to_string());
        }
        end_op(guard);
        decoded
    }

    /// Serves typed requests: each message is decoded as `T` (a bad payload gets a 400
    /// reply, and is logged), handled inside a CONSUMER `process` span that continues
    /// the sender's trace, and its `R` answer is encoded into the reply, in the format
    /// the request asked for or used, as this service acting for the request's tenant.
    ///
    /// # Errors
    /// As [`sdk_bus::Bus::serve`].
    pub async fn serve<T, R, F, Fut>(
        &self,
        pattern: &SubjectPattern,
        options: ServeOptions,
        handler: F,
    ) -> Result<Service, SubscribeError>
    where
        T: Payload,
        R: Payload,
        F: Fn(T, MessageContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ServiceFailure>> + Send + 'static,
    {
        // Shared by every request: one reference count per request, not a copy of
        // the messenger, the pattern and the group name.
        let shared = Arc::new(Serving {
            me: self.clone(),
            handler,
            group: options.group.clone(),
            pattern: pattern.clone(),
        });
        let timeout = options.timeout;
        self.bus
            .serve(pattern, options, move |delivery: Delivery| {
                let shared = Arc::clone(&shared);
                async move {
                    let Serving {
                        me,
                        handler,
                        group,
                        pattern,
                    } = &*shared;
                    let (mut guard, cx) = me.start_process(
                        &delivery.subject,
                        || pattern.template_for(&delivery.subject),
                        &delivery.envelope,
                        group.as_deref(),
                    );
                    // The bus may stop the handler (its timeout) or catch its panic:
                    // then this future is dropped, and the span must say so.
                    if let Some(g) = guard.as_mut() {
                        g.fail_if_dropped();
                    }
                    // A timeout too long to add is no deadline at all.
                    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
                    let outcome: Result<sdk_bus::Envelope, ServiceFailure> = async {
                        let request: T = cx
                            .attach_scoped(|| me.decode(&delivery.envelope))
                            .map_err(|e| {
                                tracing::warn!(
                                    subject = %delivery.subject,
                                    error = %e,
                                    "refused a request that cannot be decoded"
                                );
                                ServiceFailure::new(ServiceCode::BadRequest, e.to_string())
                            })?;
                        let ctx = MessageContext::new(
                            delivery.subject.clone(),
                            &delivery.envelope,
                            deadline,
                            1,
                            cx.clone(),
                        );
                        let handler_cx = ctx.handler_context();
                        let tenant = ctx.tenant.clone();
                        // The handler runs inside the process span: its logs carry the
                        // trace id, and what it sends continues the trace and the
                        // conversation.
                        let answer = handler(request, ctx)
                            .with_context(handler_cx.clone())
                            .await?;
                        let mut reply = handler_cx.attach_scoped(|| {
                            me.reply_envelope(&delivery.envelope, &tenant, &answer)
                        })?;
                        me.inject(&cx, reply.headers_mut());
                        Ok(reply)
                    }
                    .await;
                    if let (Some(g), Err(f)) = (guard.as_mut(), &outcome) {
                        g.fail(&f.code.as_u16().to_string(), &f.message);
                    }
                    end_op(guard);
                    outcome
                }
            })
            .await
    }
}

/// Runs a closure with a context attached.
/// What every request of one typed service shares.
struct Serving<F> {
    me: Messenger,
    handler: F,
    group: Option<String>,
    pattern: SubjectPattern,
}

trait AttachScoped {
    fn attach_scoped<T>(&self, f: impl FnOnce() -> T) -> T;
}

impl AttachScoped for Context {
    fn attach_scoped<T>(&self, f: impl FnOnce() -> T) -> T {
        let _guard = self.clone().attach();
        f()
    }
}
