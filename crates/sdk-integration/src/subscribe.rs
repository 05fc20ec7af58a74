//! Typed plain subscriptions: each message decoded, inside its `process` span; a
//! message that cannot be decoded is handed out as such, never dropped.

use std::marker::PhantomData;

use opentelemetry::Context;
use sdk_bus::{Delivery, Envelope, Subject, SubjectPattern, SubscribeError, Subscription};
use sdk_codec::Payload;
use sdk_telemetry::OperationGuard;

use crate::{Error, MessageContext, Messenger};

/// A decoded message, with its context. Its `process` span is current in
/// [`Received::context`]`.trace` and ends when the value is dropped.
#[derive(Debug)]
#[non_exhaustive]
pub struct Received<T> {
    /// The decoded value.
    pub value: T,
    /// What is known about the message.
    pub context: MessageContext,
    _span: Option<OperationGuard>,
}

/// A message whose payload could not be decoded: reported (logged, its span marked
/// failed) and handed to the caller, not dropped.
#[derive(Debug)]
#[non_exhaustive]
pub struct Undecodable {
    /// The subject it arrived on.
    pub subject: Subject,
    /// The envelope as it arrived.
    pub envelope: Envelope,
    /// Why it could not be decoded.
    pub error: Error,
}

/// A subscription that decodes every message as `T`.
#[derive(Debug)]
pub struct TypedSubscription<T> {
    inner: Subscription,
    messenger: Messenger,
    pattern: SubjectPattern,
    _type: PhantomData<fn() -> T>,
}

impl Messenger {
    /// Subscribes to `pattern`, decoding every message as `T`.
    ///
    /// # Errors
    /// As [`sdk_bus::Bus::subscribe`].
    pub async fn subscribe<T: Payload>(
        &self,
        pattern: &SubjectPattern,
    ) -> Result<TypedSubscription<T>, SubscribeError> {
        Ok(TypedSubscription {
            inner: self.bus.subscribe(pattern).await?,
            messenger: self.clone(),
            pattern: pattern.clone(),
            _type: PhantomData,
        })
    }
}

impl<T: Payload> TypedSubscription<T> {
    /// The next message: `Ok` decoded, or `Err` with the message that could not be.
    /// `None` once the subscription has ended.
    ///
    /// # Errors
    /// The inner `Result` is [`SubscribeError::PermissionDenied`] when the server
    /// refused the subscription.
    pub async fn next(
        &mut self,
    ) -> Option<Result<Result<Received<T>, Undecodable>, SubscribeError>> {
        let delivery: Delivery = match self.inner.next().await? {
            Ok(d) => d,
            Err(e) => return Some(Err(e)),
        };
        let pattern = &self.pattern;
        let (mut guard, cx) = self.messenger.start_process(
            &delivery.subject,
            || pattern.template_for(&delivery.subject),
            &delivery.envelope,
            None,
        );
        let decoded = cx_scope(&cx, || self.messenger.decode::<T>(&delivery.envelope));
        Some(Ok(match decoded {
            Ok(value) => Ok(Received {
                value,
                context: MessageContext::new(delivery.subject, &delivery.envelope, None, 1, cx),
                _span: guard,
            }),
            Err(error) => {
                tracing::warn!(
                    subject = %delivery.subject,
                    error = %error,
                    "a message could not be decoded"
                );
                if let Some(g) = guard.as_mut() {
                    g.fail("decode", &error.to_string());
                }
                Err(Undecodable {
                    subject: delivery.subject,
                    envelope: delivery.envelope,
                    error,
                })
            }
        }))
    }
}

fn cx_scope<R>(cx: &Context, f: impl FnOnce() -> R) -> R {
    let _guard = cx.clone().attach();
    f()
}
