//! How a handled message is settled: the reply, the error reply, and the dead letter.
//! Core services and JetStream consumers both settle through here.

use bytes::Bytes;

use crate::events::{BusEvent, Monitor};
use crate::service::{ServiceCode, ServiceFailure};
use crate::subscription::Refusal;
use crate::{Bus, Envelope, Headers, PublishError, Subject, TenantId, TooLarge, names};

/// The dead-letter headers of the contract.
pub(crate) mod dlq {
    /// Why the message was dead-lettered (at most [`super::MAX_REASON`] bytes).
    pub(crate) const REASON: &str = "sdk-dlq-reason";
    /// The subject it was on.
    pub(crate) const SUBJECT: &str = "sdk-dlq-subject";
    /// How many times it was delivered.
    pub(crate) const DELIVERIES: &str = "sdk-dlq-deliveries";
    /// The consumer that gave up on it.
    pub(crate) const CONSUMER: &str = "sdk-dlq-consumer";
    /// When, RFC 3339.
    pub(crate) const TIME: &str = "sdk-dlq-time";
    /// The original `Nats-Msg-Id`, which the copy must not carry as its own.
    pub(crate) const MSG_ID: &str = "sdk-dlq-msg-id";
    /// The stream and sequence of the original, for a JetStream message.
    pub(crate) const STREAM: &str = "sdk-dlq-stream";
    /// The original's sequence in that stream.
    pub(crate) const STREAM_SEQUENCE: &str = "sdk-dlq-stream-sequence";
    /// Set when the payload did not fit beside the headers: its size in bytes. The
    /// original stays in its stream at `sdk-dlq-stream-sequence`.
    pub(crate) const PAYLOAD_OMITTED: &str = "sdk-dlq-payload-omitted";
    /// Every dead-letter header.
    pub(crate) const ALL: [&str; 9] = [
        REASON,
        SUBJECT,
        DELIVERIES,
        CONSUMER,
        TIME,
        MSG_ID,
        STREAM,
        STREAM_SEQUENCE,
        PAYLOAD_OMITTED,
    ];
}

/// The longest `Nats-Service-Error` text and dead-letter reason we write, in bytes.
pub(crate) const MAX_REASON: usize = 1024;

/// Headers the server acts on. A copy of a message (a dead letter, a replay) must not
/// carry them, or the server would judge the copy by the original's conditions.
fn acted_on_by_server(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("nats-expected-")
        || matches!(
            lower.as_str(),
            "nats-ttl" | "nats-msg-id" | "nats-rollup" | "nats-marker-reason"
        )
}

/// One line, at most [`MAX_REASON`] bytes, cut on a character boundary.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .scan(0usize, |len, c| {
            *len += c.len_utf8();
            (*len <= MAX_REASON).then_some(c)
        })
        .collect()
}

/// Whether `reply` is an inbox of `tenant`: `_INBOX.<tenant>.<token>[.<token>...]`,
/// with no wildcard. A service answers nowhere else.
pub(crate) fn reply_allowed(tenant: &TenantId, reply: &str) -> bool {
    let Some(rest) = reply
        .strip_prefix("_INBOX.")
        .and_then(|r| r.strip_prefix(tenant.as_str()))
        .and_then(|r| r.strip_prefix('.'))
    else {
        return false;
    };
    !rest.is_empty()
        && rest
            .split('.')
            .all(|t| !t.is_empty() && t != "*" && t != ">" && !t.contains(char::is_whitespace))
}

/// Sends a reply for a request on `subject`, only into its tenant's inbox; anything
/// else is counted, reported and refused.
pub(crate) async fn send_reply(
    bus: &Bus,
    subject: &Subject,
    reply: &str,
    headers: Headers,
    payload: Bytes,
) -> Result<(), PublishError> {
    if !reply_allowed(subject.tenant(), reply) {
        let monitor = bus.monitor();
        Monitor::bump(&monitor.counters.refused_replies);
        monitor.emit(BusEvent::ReplyRefused {
            subject: subject.to_string(),
            reply: reply.to_owned(),
        });
        return Err(PublishError::ReplyRefused {
            reply: reply.to_owned(),
            tenant: subject.tenant().clone(),
        });
    }
    bus.send(reply, headers, payload).await
}

/// The headers of an error reply: `Nats-Service-Error` and `Nats-Service-Error-Code`,
/// and, when the request is known, the `ce-*` attributes that tie the answer to it.
pub(crate) fn error_headers(
    code: ServiceCode,
    message: &str,
    request: Option<&Envelope>,
) -> Headers {
    let mut h = Headers::with_capacity(10);
    h.push_trusted(names::SERVICE_ERROR, one_line(message));
    h.push_trusted(names::SERVICE_ERROR_CODE, code.as_u16().to_string());
    if let Some(request) = request
        && let Some(tenant) = request.tenant_id()
        && let Ok(tenant) = TenantId::new(&tenant)
    {
        h.push_trusted(names::SPEC_VERSION, crate::SPEC_VERSION.to_owned());
        h.push_trusted(names::ID, crate::new_id());
        h.push_trusted(names::TIME, crate::new_time());
        h.push_trusted(names::SOURCE, format!("/{tenant}/service/error"));
        h.push_trusted(names::TYPE, "sdk.error".to_owned());
        h.push_trusted(names::TENANT_ID, tenant.as_str().to_owned());
        h.push_trusted(names::DATA_CONTENT_TYPE, "text/plain".to_owned());
        let correlation = request.correlation_id().or_else(|| request.id());
        if let Some(c) = correlation {
            h.push_trusted(
                names::CORRELATION_ID,
                crate::envelope::percent_encode(&c).into_owned(),
            );
        }
        if let Some(id) = request.id() {
            h.push_trusted(
                names::CAUSATION_ID,
                crate::envelope::percent_encode(&id).into_owned(),
            );
        }
    }
    h
}

/// Sends an error reply for a message that was refused before any handler saw it. A
/// malformed subject has no tenant, so it gets no reply at all.
pub(crate) async fn refuse_with_error(
    bus: &Bus,
    raw_subject: &str,
    reply: &str,
    refusal: &Refusal,
) {
    let Ok(subject) = Subject::parse(raw_subject) else {
        Monitor::bump(&bus.monitor().counters.refused_replies);
        bus.monitor().emit(BusEvent::ReplyRefused {
            subject: raw_subject.to_owned(),
            reply: reply.to_owned(),
        });
        return;
    };
    let headers = error_headers(refusal.code, &refusal.reason, None);
    let body = Bytes::from(one_line(&refusal.reason));
    report(
        bus,
        &subject,
        send_reply(bus, &subject, reply, headers, body).await,
    );
}

/// Counts and reports a failed reply, error reply or dead letter. A refused reply
/// subject was counted as such already.
pub(crate) fn report(bus: &Bus, subject: &Subject, result: Result<(), PublishError>) {
    match result {
        Ok(()) | Err(PublishError::ReplyRefused { .. }) => {}
        Err(e) => bus.monitor().settle_failed(subject.as_str(), e.to_string()),
    }
}

/// Applies a core handler's outcome: the reply, an error reply, or a dead letter. A
/// reply that cannot be sent because it is too large becomes a 413.
pub(crate) async fn settle_core(
    bus: &Bus,
    subject: &Subject,
    request: &Envelope,
    reply: Option<&str>,
    outcome: Result<Envelope, ServiceFailure>,
) {
    let result = match (outcome, reply) {
        (Ok(answer), Some(reply)) => {
            let (headers, payload) = answer.into_parts();
            match send_reply(bus, subject, reply, headers, payload).await {
                Err(PublishError::TooLarge(TooLarge {
                    size, max_payload, ..
                })) => {
                    let text = format!(
                        "the reply is {size} bytes, over the server's max_payload of {max_payload}"
                    );
                    send_error(bus, subject, reply, ServiceCode::TooLarge, &text, request).await
                }
                other => other,
            }
        }
        (Ok(_), None) => Ok(()),
        (Err(f), Some(reply)) => send_error(bus, subject, reply, f.code, &f.message, request).await,
        (Err(f), None) => dead_letter_core(bus, subject, request, &f.to_string(), "serve").await,
    };
    report(bus, subject, result);
}

async fn send_error(
    bus: &Bus,
    subject: &Subject,
    reply: &str,
    code: ServiceCode,
    message: &str,
    request: &Envelope,
) -> Result<(), PublishError> {
    let headers = error_headers(code, message, Some(request));
    let body = Bytes::from(one_line(message));
    send_reply(bus, subject, reply, headers, body).await
}

/// What a dead letter records beside the original.
#[derive(Debug)]
pub(crate) struct DeadLetterFacts<'a> {
    pub(crate) subject: &'a str,
    pub(crate) reason: &'a str,
    pub(crate) consumer: &'a str,
    pub(crate) deliveries: u64,
    /// The original's stream and sequence, for a JetStream message.
    pub(crate) stream: Option<(&'a str, u64)>,
}

/// The headers of a dead letter: the original's, less those the server acts on (the
/// original `Nats-Msg-Id` moves to `sdk-dlq-msg-id`), plus the `sdk-dlq-*` facts.
pub(crate) fn dead_letter_headers(original: &Headers, facts: &DeadLetterFacts<'_>) -> Headers {
    let mut headers = Headers::with_capacity(original.len() + dlq::ALL.len());
    for (name, value) in original.iter() {
        if name.eq_ignore_ascii_case(names::NATS_MSG_ID) {
            headers.push_trusted(dlq::MSG_ID, value.to_owned());
        } else if !acted_on_by_server(name)
            && !dlq::ALL.iter().any(|d| name.eq_ignore_ascii_case(d))
        {
            headers.push_copied(name, value);
        }
    }
    headers.push_trusted(dlq::REASON, one_line(facts.reason));
    headers.push_trusted(dlq::SUBJECT, one_line(facts.subject));
    headers.push_trusted(dlq::DELIVERIES, facts.deliveries.to_string());
    headers.push_trusted(dlq::CONSUMER, one_line(facts.consumer));
    headers.push_trusted(dlq::TIME, crate::new_time());
    if let Some((stream, sequence)) = facts.stream {
        headers.push_trusted(dlq::STREAM, one_line(stream));
        headers.push_trusted(dlq::STREAM_SEQUENCE, sequence.to_string());
    }
    headers
}

/// The headers of a replayed dead letter: the original's, without the dead-letter
/// facts and without anything the server acts on.
pub(crate) fn replay_headers(dead_letter: &Headers) -> Headers {
    let mut headers = Headers::with_capacity(dead_letter.len());
    for (name, value) in dead_letter.iter() {
        if !acted_on_by_server(name) && !dlq::ALL.iter().any(|d| name.eq_ignore_ascii_case(d)) {
            headers.push_copied(name, value);
        }
    }
    headers
}

/// The payload a dead letter carries: the original's, or nothing (with
/// `sdk-dlq-payload-omitted`) when it would not fit under `max_payload` beside the
/// headers. A JetStream original stays in its stream, so nothing is lost.
pub(crate) fn fit_payload(headers: &mut Headers, payload: &Bytes, max_payload: usize) -> Bytes {
    if headers.wire_size() + payload.len() <= max_payload {
        return payload.clone();
    }
    headers.push_trusted(dlq::PAYLOAD_OMITTED, payload.len().to_string());
    Bytes::new()
}

/// Publishes a core message to its dead-letter subject.
pub(crate) async fn dead_letter_core(
    bus: &Bus,
    subject: &Subject,
    envelope: &Envelope,
    reason: &str,
    consumer: &str,
) -> Result<(), PublishError> {
    let facts = DeadLetterFacts {
        subject: subject.as_str(),
        reason,
        consumer,
        deliveries: 1,
        stream: None,
    };
    let mut headers = dead_letter_headers(envelope.headers(), &facts);
    let payload = fit_payload(&mut headers, envelope.payload(), bus.max_payload());
    bus.send(subject.dead_letter().as_str(), headers, payload)
        .await?;
    record_dead_letter(bus.monitor(), subject.as_str(), reason);
    Ok(())
}

pub(crate) fn record_dead_letter(monitor: &Monitor, subject: &str, reason: &str) {
    Monitor::bump(&monitor.counters.dead_lettered);
    monitor.emit(BusEvent::DeadLettered {
        subject: subject.to_owned(),
        reason: one_line(reason),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_go_only_to_the_request_tenants_inbox() {
        let alpha = TenantId::new("alpha").unwrap();
        assert!(reply_allowed(&alpha, "_INBOX.alpha.abc"));
        assert!(reply_allowed(&alpha, "_INBOX.alpha.abc.1"));
        for bad in [
            "sdk.beta.events.x",
            "_INBOX.beta.abc",
            "_INBOX.alphabet.abc",
            "_INBOX.alpha",
            "_INBOX.alpha.",
            "_INBOX.alpha.*",
            "_INBOX.alpha.>",
            "_INBOX.alpha..x",
            "_INBOX.abc",
        ] {
            assert!(!reply_allowed(&alpha, bad), "{bad}");
        }
    }

    #[test]
    fn a_dead_letter_drops_what_the_server_acts_on() {
        let mut original = Headers::new();
        original.insert("ce-id", "1").unwrap();
        original.insert("Nats-Msg-Id", "m-1").unwrap();
        original.insert("Nats-TTL", "1s").unwrap();
        original
            .insert("Nats-Expected-Last-Subject-Sequence", "4")
            .unwrap();
        original.insert("sdk-dlq-reason", "old").unwrap();
        let facts = DeadLetterFacts {
            subject: "sdk.a.events.x",
            reason: &"x".repeat(5000),
            consumer: "c",
            deliveries: 3,
            stream: Some(("S", 9)),
        };
        let h = dead_letter_headers(&original, &facts);
        assert_eq!(h.get("ce-id"), Some("1"));
        assert_eq!(h.get("sdk-dlq-msg-id"), Some("m-1"));
        assert_eq!(h.get("Nats-Msg-Id"), None);
        assert_eq!(h.get("Nats-TTL"), None);
        assert_eq!(h.get("Nats-Expected-Last-Subject-Sequence"), None);
        assert_eq!(h.get("sdk-dlq-reason").map(str::len), Some(MAX_REASON));
        assert_eq!(h.get("sdk-dlq-stream-sequence"), Some("9"));
        let replay = replay_headers(&h);
        assert_eq!(replay.get("ce-id"), Some("1"));
        assert!(replay.iter().all(|(n, _)| !n.starts_with("sdk-dlq-")));
    }
}
