//! Subscriptions, and the checks every incoming message passes before anyone sees it.

use bytes::Bytes;
use tokio::sync::{broadcast, watch};

use crate::events::{BusEvent, Monitor, Operation};
use crate::service::ServiceCode;
use crate::settle;
use crate::transport::{RawMessage, RawSubscription};
use crate::{Bus, Envelope, Headers, PublishError, Subject, SubjectPattern, SubscribeError, names};

/// A subscription. Each message is checked before it is handed out: a bad envelope
/// or a `ce-tenantid` that differs from the subject's tenant is refused (counted,
/// reported as an event, and answered with an error reply when it has a reply subject
/// in the tenant's inbox).
#[derive(Debug)]
pub struct Subscription {
    raw: RawSubscription,
    pattern: SubjectPattern,
    bus: Bus,
    events: broadcast::Receiver<BusEvent>,
    draining: watch::Receiver<bool>,
    stopped: bool,
}

impl Subscription {
    pub(crate) fn new(
        raw: RawSubscription,
        pattern: SubjectPattern,
        bus: Bus,
        events: broadcast::Receiver<BusEvent>,
    ) -> Subscription {
        Subscription {
            raw,
            pattern,
            events,
            draining: bus.draining_signal(),
            bus,
            stopped: false,
        }
    }

    /// The next message; `None` once the subscription has ended (after a drain, once
    /// every message the server routed to it has been handed out), or
    /// `Some(Err(SubscribeError::PermissionDenied))` when the server refused it.
    pub async fn next(&mut self) -> Option<Result<Delivery, SubscribeError>> {
        loop {
            let raw = tokio::select! {
                raw = self.raw.next() => raw?,
                event = self.events.recv() => {
                    if let Ok(BusEvent::PermissionViolation { operation: Operation::Subscribe, subject }) = event
                        && subject == self.pattern.as_str()
                    {
                        return Some(Err(SubscribeError::PermissionDenied { subject }));
                    }
                    continue;
                }
                changed = self.draining.changed(), if !self.stopped => {
                    if changed.is_err() || *self.draining.borrow() {
                        self.stopped = true;
                        self.raw.stop().await;
                    }
                    continue;
                }
            };
            if let Some(delivery) = accept_or_refuse(&self.bus, raw).await {
                return Some(Ok(delivery));
            }
        }
    }

    /// The pattern.
    pub fn pattern(&self) -> &SubjectPattern {
        &self.pattern
    }
}

/// Why an incoming message was refused, and the code its error reply carries.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) code: ServiceCode,
    pub(crate) reason: String,
}

/// The contract's checks on a message from the wire: subject grammar, one value per
/// identifying header, a readable envelope with its required attributes, and the
/// tenant rule (`ce-tenantid` equals the subject's tenant).
pub(crate) fn inspect(
    raw_subject: &str,
    headers: Headers,
    payload: Bytes,
) -> Result<(Subject, Envelope), Refusal> {
    let bad = |e: &dyn std::fmt::Display| Refusal {
        code: ServiceCode::BadRequest,
        reason: e.to_string(),
    };
    let subject = Subject::parse(raw_subject).map_err(|e| bad(&e))?;
    for name in [
        names::TENANT_ID,
        names::ID,
        names::TYPE,
        names::SOURCE,
        names::DATA_CONTENT_TYPE,
    ] {
        if headers.values_differ(name) {
            return Err(Refusal {
                code: ServiceCode::BadRequest,
                reason: format!("header {name} appears more than once with different values"),
            });
        }
    }
    let envelope = Envelope::from_parts(headers, payload).map_err(|e| bad(&e))?;
    envelope.check_required().map_err(|e| bad(&e))?;
    let tenant = envelope.tenant_id().unwrap_or_default();
    if tenant != subject.tenant().as_str() {
        return Err(Refusal {
            code: ServiceCode::Forbidden,
            reason: format!(
                "ce-tenantid {tenant:?} does not match the tenant {:?} of subject {}",
                subject.tenant().as_str(),
                subject
            ),
        });
    }
    Ok((subject, envelope))
}

/// Counts, logs and reports a refused message.
pub(crate) fn report_refusal(monitor: &Monitor, subject: &str, refusal: &Refusal) {
    tracing::warn!(
        subject,
        code = refusal.code.as_u16(),
        reason = %refusal.reason,
        "refused a message before any handler saw it"
    );
    Monitor::bump(if refusal.code == ServiceCode::Forbidden {
        &monitor.counters.tenant_mismatches
    } else {
        &monitor.counters.rejected
    });
    monitor.emit(BusEvent::Rejected {
        subject: subject.to_owned(),
        code: refusal.code.as_u16(),
        reason: refusal.reason.clone(),
    });
}

/// Inspects a message: a good one becomes a [`Delivery`]; a bad one is reported and,
/// when it asked for a reply in its tenant's inbox, answered with an error.
async fn accept_or_refuse(bus: &Bus, raw: RawMessage) -> Option<Delivery> {
    let RawMessage {
        subject,
        reply,
        headers,
        payload,
    } = raw;
    match inspect(&subject, headers, payload) {
        Ok((subject, envelope)) => {
            Monitor::bump(&bus.monitor().counters.delivered);
            Some(Delivery {
                subject,
                envelope,
                reply,
                bus: bus.clone(),
            })
        }
        Err(refusal) => {
            report_refusal(bus.monitor(), &subject, &refusal);
            if let Some(reply) = reply {
                settle::refuse_with_error(bus, &subject, &reply, &refusal).await;
            }
            None
        }
    }
}

/// A message that passed the checks.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The subject it arrived on.
    pub subject: Subject,
    /// Its envelope.
    pub envelope: Envelope,
    reply: Option<String>,
    bus: Bus,
}

impl Delivery {
    /// Where a reply goes, for a request.
    pub fn reply_subject(&self) -> Option<&str> {
        self.reply.as_deref()
    }

    /// The bus it arrived on.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Replies to a request. Does nothing for a message without a reply subject.
    ///
    /// # Errors
    /// [`PublishError::ReplyRefused`] when the reply subject is not an inbox of the
    /// request's tenant (nothing is sent); otherwise as [`Bus::publish`].
    pub async fn respond(&self, envelope: Envelope) -> Result<(), PublishError> {
        match &self.reply {
            Some(reply) => {
                let (headers, payload) = envelope.into_parts();
                settle::send_reply(&self.bus, &self.subject, reply, headers, payload).await
            }
            None => Ok(()),
        }
    }

    /// Replies with an error: `Nats-Service-Error` and `Nats-Service-Error-Code`,
    /// plus the `ce-*` attributes of an error reply.
    ///
    /// # Errors
    /// As [`Delivery::respond`].
    pub async fn respond_error(
        &self,
        code: ServiceCode,
        message: &str,
    ) -> Result<(), PublishError> {
        match &self.reply {
            Some(reply) => {
                let headers = settle::error_headers(code, message, Some(&self.envelope));
                let body = Bytes::from(settle::one_line(message));
                settle::send_reply(&self.bus, &self.subject, reply, headers, body).await
            }
            None => Ok(()),
        }
    }

    /// Publishes this message to its dead-letter subject, `sdk.<t>.dlq.<...>`, with
    /// the original headers and payload plus the `sdk-dlq-*` headers.
    ///
    /// # Errors
    /// As [`Bus::publish`].
    pub async fn dead_letter(&self, reason: &str, consumer: &str) -> Result<(), PublishError> {
        settle::dead_letter_core(&self.bus, &self.subject, &self.envelope, reason, consumer).await
    }

    /// What settling needs, without the envelope of a request (only a message without
    /// a reply subject may be dead-lettered, so only that keeps its envelope).
    pub(crate) fn settle_handle(&self) -> Delivery {
        Delivery {
            subject: self.subject.clone(),
            envelope: if self.reply.is_some() {
                self.envelope.attributes_only()
            } else {
                self.envelope.clone()
            },
            reply: self.reply.clone(),
            bus: self.bus.clone(),
        }
    }
}
