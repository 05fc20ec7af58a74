//! `pub`, `sub` (`tail`) and `req`.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use opentelemetry::Context;
use sdk_bus::{
    Bus, BusConfig, BusEvent, Envelope, EventSource, Family, Operation, RequestError, ServeOptions,
    Subject, SubjectPattern, TenantId,
};
use sdk_codec::{Codec, Format};
use sdk_integration::Messenger;
use sdk_telemetry::Telemetry;
use serde_json::json;

use crate::cli::{Global, MessageArgs, PubArgs, ReqArgs, SubArgs};
use crate::connect;
use crate::error::{self, CliError};
use crate::out;
use crate::payload::{self, TypeInfo};
use crate::serve::{self, EchoLog};
use crate::show::{Shown, headers_from_nats};

/// How long a probe through the server may take before it is given up.
const PROBE_LIMIT: Duration = Duration::from_secs(2);

/// A message ready to send.
struct Outgoing {
    subject: Subject,
    envelope: Envelope,
    info: TypeInfo,
    format: Format,
    trace: Context,
}

/// A subject from the command line.
pub(crate) fn parse_subject(text: &str) -> Result<Subject, CliError> {
    Subject::parse(text).map_err(|e| {
        CliError::usage(e.to_string()).hint(
            "subjects are sdk.<tenant>.<component>.<action>[.<token>...], e.g. \
             sdk.acme.events.task.created",
        )
    })
}

/// The JSON argument: inline, `-` for stdin, or `@file`; checked to be JSON.
fn read_json(arg: &str) -> Result<Vec<u8>, CliError> {
    let bytes = if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::new(format!("cannot read stdin: {e}")))?;
        buf
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read(path).map_err(|e| {
            CliError::usage(format!("cannot read {path}: {e}"))
                .hint("@file names a file holding the JSON")
        })?
    } else {
        arg.as_bytes().to_vec()
    };
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map_err(|e| {
        CliError::usage(format!("invalid JSON: {e}")).hint(
            "quote it for the shell, e.g. '{\"taskId\":\"t-1\"}'; `-` reads stdin, @file a file",
        )
    })?;
    Ok(bytes)
}

/// `sdk.` and the subject after the tenant, without `events.` for events:
/// `sdk.acme.events.task.created` has type `sdk.task.created`.
fn default_event_type(subject: &Subject) -> String {
    let rest = subject.as_str().splitn(3, '.').nth(2).unwrap_or_default();
    let rest = match subject.family() {
        Family::Event => rest.strip_prefix("events.").unwrap_or(rest),
        _ => rest,
    };
    format!("sdk.{rest}")
}

/// Percent-encodes what CloudEvents headers may not carry raw.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds the envelope of `args`: encoded as its type and format, for its tenant, with
/// a correlation id when asked. Everything wrong with the arguments shows here, before
/// any connection is made.
fn prepare(args: &MessageArgs) -> Result<Outgoing, CliError> {
    let subject = parse_subject(&args.subject)?;
    let json = read_json(&args.data)?;
    let info = match &args.type_name {
        Some(name) => payload::find(name, true)?,
        None => payload::any(),
    };
    let format = args.format.format();
    if info.schema.is_none() && format == Format::Protobuf {
        return Err(
            CliError::usage("Protobuf needs --type: the sdk.v1 type the JSON is").hint(format!(
                "pass --type (one of {}), or use --format json or msgpack",
                payload::names()
            )),
        );
    }
    let tenant = match &args.tenant {
        Some(t) => TenantId::new(t).map_err(|e| {
            CliError::usage(e.to_string()).hint("tenants are 1 to 64 of [a-z0-9_-]")
        })?,
        None => subject.tenant().clone(),
    };
    let source = EventSource::new(&tenant, "cli", &format!("sdk-{}", std::process::id()))?;
    let codec = Codec::builder()
        .format(format)
        .build()
        .map_err(error::codec)?;
    // Encoding needs no connection: an in-process bus stands in for the messenger.
    let messenger = Messenger::new(Bus::in_process(BusConfig::default()), codec, source);
    let event_type = args
        .event_type
        .clone()
        .unwrap_or_else(|| default_event_type(&subject));
    let mut envelope = (info.envelope)(&messenger, &event_type, &json)?;
    if let Some(id) = &args.correlation_id {
        envelope
            .headers_mut()
            .insert("ce-correlationid", &percent_encode(id))?;
    }
    Ok(Outgoing {
        subject,
        envelope,
        info,
        format,
        trace: Context::new(),
    })
}

impl Outgoing {
    /// Starts the span of `operation` and writes its context into the headers.
    fn start_trace(&mut self, telemetry: &Telemetry, bus: &Bus, operation: &str) {
        self.trace = connect::start_trace(
            telemetry,
            bus,
            format!("{operation} {}", self.subject.template()),
            self.subject.tenant(),
            self.envelope.headers_mut(),
        );
    }

    /// `sdk.v1.AgentTask v1 as application/json, 120 bytes, id …, trace …`.
    fn summary(&self) -> String {
        let what = match &self.info.schema {
            Some(s) => format!("{} v{}", s.name(), s.version()),
            None => "data without a schema".to_owned(),
        };
        format!(
            "{what} as {}, {} bytes, id {}, trace {}",
            self.format.content_type(),
            self.envelope.payload().len(),
            self.envelope.id().unwrap_or_default(),
            connect::trace_id(&self.trace)
        )
    }

    fn facts(&self) -> serde_json::Value {
        json!({
            "subject": self.subject.as_str(),
            "id": self.envelope.id(),
            "trace_id": connect::trace_id(&self.trace),
            "schema": self.envelope.data_schema(),
            "content_type": self.format.content_type(),
            "size": self.envelope.payload().len(),
        })
    }
}

/// `sdk pub`.
pub(crate) async fn publish(global: &Global, args: PubArgs) -> Result<(), CliError> {
    if args.jetstream && global.in_process {
        return Err(CliError::usage(
            "--jetstream needs a server; the in-process transport has no JetStream",
        )
        .hint("drop --in-process or --jetstream"));
    }
    let mut outgoing = prepare(&args.message)?;
    let bus = connect::bus(global, None).await?;
    let telemetry = connect::telemetry()?;
    outgoing.start_trace(&telemetry, &bus, "publish");
    let subject = outgoing.subject.clone();
    if global.in_process {
        let (headers, payload) = outgoing.envelope.clone().into_parts();
        let shown = Shown::inspect(&Codec::default(), subject.as_str(), None, headers, payload);
        bus.publish(&subject, outgoing.envelope.clone()).await?;
        if args.json {
            return out::json(&shown.to_json());
        }
        out::line(&format!(
            "published to {subject} on the in-process transport: {}",
            outgoing.summary()
        ))?;
        return out::line(&shown.to_text(true));
    }
    let mut events = bus.events();
    if args.jetstream {
        let js = bus.jetstream()?;
        let envelope = outgoing.envelope.clone();
        let ack = tokio::select! {
            ack = js.publish(&subject, envelope) => ack?,
            refused = refused_publish(&mut events, subject.as_str()) => {
                return Err(connect::permission_denied(Operation::Publish, &refused));
            }
        };
        if args.json {
            let mut facts = outgoing.facts();
            facts["stream"] = json!(ack.stream);
            facts["sequence"] = json!(ack.sequence);
            facts["duplicate"] = json!(ack.duplicate);
            return out::json(&facts);
        }
        return out::line(&format!(
            "stored {subject} in {} at sequence {}{}: {}",
            ack.stream,
            ack.sequence,
            if ack.duplicate {
                " (a duplicate: already stored within the window)"
            } else {
                ""
            },
            outgoing.summary()
        ));
    }
    // A flush waits for a lost connection to come back; not forever here.
    let limit = bus.config().request_timeout();
    tokio::time::timeout(
        limit,
        bus.publish_and_flush(&subject, outgoing.envelope.clone()),
    )
    .await
    .map_err(|_| {
        CliError::new(format!(
            "the message to {subject} was not written to the server within {limit:?}"
        ))
        .hint("the connection was lost: is the server still reachable?")
    })??;
    // A refused publish is only reported by the server, after the fact.
    let client = connect::client(&bus)?;
    if let Some(refused) = connect::confirm(
        &client,
        &mut events,
        &connect::probe_prefix(Some(subject.tenant())),
        Operation::Publish,
        &[subject.as_str()],
        PROBE_LIMIT,
    )
    .await
    {
        return Err(connect::permission_denied(Operation::Publish, &refused));
    }
    if args.json {
        return out::json(&outgoing.facts());
    }
    out::line(&format!("published to {subject}: {}", outgoing.summary()))
}

/// Resolves with the subject when the server refuses a publish to `subject`.
async fn refused_publish(
    events: &mut tokio::sync::broadcast::Receiver<BusEvent>,
    subject: &str,
) -> String {
    loop {
        match events.recv().await {
            Ok(BusEvent::PermissionViolation {
                operation: Operation::Publish,
                subject: s,
            }) if s == subject => return s,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// `sdk req`.
pub(crate) async fn request(global: &Global, args: ReqArgs) -> Result<(), CliError> {
    let mut outgoing = prepare(&args.message)?;
    let bus = connect::bus(global, Some(args.timeout)).await?;
    let telemetry = connect::telemetry()?;
    outgoing.start_trace(&telemetry, &bus, "request");
    // Ask for the answer in the request's own format.
    outgoing
        .envelope
        .headers_mut()
        .insert("accept", outgoing.format.content_type())?;
    // In-process, nothing else could answer: an echo service of the same type does.
    let _echo = if global.in_process {
        let pattern = SubjectPattern::from(&outgoing.subject);
        Some(
            serve::start(
                &bus,
                &telemetry,
                &pattern,
                &outgoing.info,
                ServeOptions::new(),
                Arc::new(EchoLog::quiet()),
            )
            .await?,
        )
    } else {
        None
    };
    let subject = outgoing.subject.clone();
    let info = outgoing.info.clone();
    match bus
        .request_with_timeout(&subject, outgoing.envelope, args.timeout)
        .await
    {
        Ok(reply) => {
            let shown = Shown::reply(&Codec::default(), subject.as_str(), reply, Some(&info));
            if args.json {
                out::json(&shown.to_json())
            } else {
                out::line(&shown.to_text(!args.no_headers))
            }
        }
        Err(RequestError::ServiceError { code, message }) => {
            if args.json {
                out::json(&json!({
                    "subject": subject.as_str(),
                    "is_reply": true,
                    "error": {"code": code, "message": message},
                }))?;
            }
            Err(CliError::new(format!(
                "the service answered {code}: {}",
                error::one_line(&message)
            ))
            .hint(error::service_hint(code)))
        }
        Err(e) => Err(e.into()),
    }
}

/// A pattern for `sub`: `sdk.…` by the contract's grammar, or a reply inbox.
fn parse_pattern(text: &str) -> Result<String, CliError> {
    let hint = "watch sdk.<tenant>.… (wildcards * and >), or _INBOX.<tenant>.> for replies";
    // Everything of the SDK, which no SDK subscription may ask for but a watcher may.
    if text == "sdk.>" {
        return Ok(text.to_owned());
    }
    if text.starts_with("sdk.") {
        return SubjectPattern::new(text)
            .map(|p| p.as_str().to_owned())
            .map_err(|e| CliError::usage(e.to_string()).hint(hint));
    }
    let tokens: Vec<&str> = text.split('.').collect();
    let well_formed = tokens.len() >= 2
        && tokens.first() == Some(&"_INBOX")
        && tokens.iter().enumerate().all(|(i, t)| {
            !t.is_empty()
                && !t.chars().any(char::is_whitespace)
                && (*t != ">" || i == tokens.len() - 1)
        });
    if well_formed {
        Ok(text.to_owned())
    } else {
        Err(CliError::usage(format!("invalid pattern {text:?}")).hint(hint))
    }
}

/// `sdk sub` / `sdk tail`.
pub(crate) async fn subscribe(global: &Global, args: SubArgs) -> Result<(), CliError> {
    connect::need_server(
        global,
        "sub",
        "it would only see messages of its own process",
    )?;
    let patterns = args
        .patterns
        .iter()
        .map(|p| parse_pattern(p))
        .collect::<Result<Vec<_>, _>>()?;
    let bus = connect::bus(global, None).await?;
    let client = connect::client(&bus)?;
    let mut events = bus.events();
    let mut subscriptions = Vec::with_capacity(patterns.len());
    for p in &patterns {
        subscriptions.push(client.subscribe(p.clone()).await.map_err(|e| {
            CliError::new(format!("cannot subscribe to {p}: {e}"))
                .hint("the connection to the server was lost; try again")
        })?);
    }
    let mut messages = futures::stream::select_all(subscriptions);
    let tenant = patterns
        .iter()
        .find_map(|p| p.split('.').nth(1).and_then(|t| TenantId::new(t).ok()));
    let names: Vec<&str> = patterns.iter().map(String::as_str).collect();
    if let Some(refused) = connect::confirm(
        &client,
        &mut events,
        &connect::probe_prefix(tenant.as_ref()),
        Operation::Subscribe,
        &names,
        PROBE_LIMIT,
    )
    .await
    {
        return Err(connect::permission_denied(Operation::Subscribe, &refused));
    }
    out::status(&format!(
        "listening on {} (ctrl-c to stop)",
        patterns.join(", ")
    ));
    let codec = Codec::default();
    let mut seen = 0usize;
    let mut events_open = true;
    let stop = connect::shutdown();
    tokio::pin!(stop);
    loop {
        if args.count.is_some_and(|n| seen >= n) {
            return Ok(());
        }
        tokio::select! {
            message = messages.next() => {
                let Some(m) = message else {
                    return Err(CliError::new("the connection to the server closed")
                        .hint("check the server, then run the command again"));
                };
                // Connection probes (the SDK's and this tool's own): empty, no headers.
                if m.subject.starts_with("_INBOX.")
                    && m.payload.is_empty()
                    && m.headers.as_ref().is_none_or(|h| h.is_empty())
                {
                    continue;
                }
                let (headers, refused) = headers_from_nats(m.headers.as_ref());
                let mut shown = Shown::inspect(
                    &codec,
                    m.subject.as_str(),
                    m.reply.as_ref().map(|r| r.as_str()),
                    headers,
                    m.payload,
                );
                shown.flags.extend(refused);
                if args.json {
                    out::json(&shown.to_json())?;
                } else {
                    out::line(&shown.to_text(!args.no_headers))?;
                }
                seen += 1;
            }
            event = events.recv(), if events_open => match event {
                Ok(BusEvent::PermissionViolation { operation: Operation::Subscribe, subject })
                    if names.contains(&subject.as_str()) =>
                {
                    return Err(connect::permission_denied(Operation::Subscribe, &subject));
                }
                Ok(BusEvent::Disconnected) => out::status("disconnected; reconnecting"),
                Ok(BusEvent::Reconnected) => out::status("reconnected"),
                Ok(BusEvent::SlowConsumer { .. }) => {
                    out::status("falling behind: the server dropped messages for this subscriber");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => events_open = false,
                _ => {}
            },
            () = &mut stop => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn event_types_follow_the_subject() {
        let t = |s: &str| default_event_type(&Subject::parse(s).unwrap());
        assert_eq!(t("sdk.acme.events.task.created"), "sdk.task.created");
        assert_eq!(t("sdk.acme.echo.call"), "sdk.echo.call");
        assert_eq!(
            t("sdk.acme.agent.researcher.inbox"),
            "sdk.agent.researcher.inbox"
        );
    }

    #[test]
    fn patterns_are_checked() {
        assert!(parse_pattern("sdk.acme.>").is_ok());
        assert!(parse_pattern("_INBOX.acme.>").is_ok());
        assert!(parse_pattern("sdk.>").is_ok());
        for bad in [
            "sdk.>.x",
            "foo.bar",
            "_INBOX..x",
            "_INBOX.>.x",
            "sdk.ACME.x",
        ] {
            assert!(parse_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_values_are_percent_encoded() {
        assert_eq!(percent_encode("a b%\"é"), "a%20b%25%22%C3%A9");
    }
}
