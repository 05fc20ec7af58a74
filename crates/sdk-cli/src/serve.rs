//! `sdk serve echo`: a reply service for testing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use opentelemetry::trace::TraceContextExt as _;
use sdk_bus::{
    Bus, EventSource, MicroService, Operation, ServeOptions, Service, SubjectPattern,
    SubscribeError, TenantId,
};
use sdk_codec::{Codec, Payload};
use sdk_integration::{MessageContext, Messenger};
use sdk_telemetry::Telemetry;
use serde_json::json;
use tokio::sync::Notify;

use crate::cli::{EchoArgs, Global};
use crate::connect;
use crate::error::CliError;
use crate::out;
use crate::payload::{self, TypeInfo};

/// The name the echo service is discovered by.
pub(crate) const SERVICE_NAME: &str = "sdk-echo";

/// What the echo service reports of each request, and when it has answered enough.
#[derive(Debug)]
pub(crate) struct EchoLog {
    print: bool,
    json: bool,
    limit: Option<usize>,
    answered: AtomicUsize,
    done: Notify,
}

impl EchoLog {
    /// Prints a line per request, and is done after `limit` requests.
    pub(crate) fn new(json: bool, limit: Option<usize>) -> EchoLog {
        EchoLog {
            print: true,
            json,
            limit,
            answered: AtomicUsize::new(0),
            done: Notify::new(),
        }
    }

    /// Prints nothing and is never done.
    pub(crate) fn quiet() -> EchoLog {
        EchoLog {
            print: false,
            ..EchoLog::new(false, None)
        }
    }

    fn record(&self, ctx: &MessageContext) {
        if self.print {
            let trace = ctx.trace.span().span_context().trace_id().to_string();
            let line = if self.json {
                json!({
                    "subject": ctx.subject.as_str(),
                    "tenant": ctx.tenant.as_str(),
                    "type": ctx.event_type,
                    "content_type": ctx.content_type,
                    "message_id": ctx.message_id,
                    "correlation_id": ctx.correlation_id,
                    "trace_id": trace,
                })
                .to_string()
            } else {
                format!(
                    "echo {}  format {}  tenant {}  trace {}  correlation {}",
                    ctx.subject, ctx.content_type, ctx.tenant, trace, ctx.correlation_id
                )
            };
            // A closed stdout must not stop the service from answering.
            out::line(&line).ok();
        }
        let n = self.answered.fetch_add(1, Ordering::AcqRel) + 1;
        if self.limit.is_some_and(|limit| n >= limit) {
            self.done.notify_one();
        }
    }

    async fn finished(&self) {
        if self.limit.is_none() {
            std::future::pending::<()>().await;
        }
        self.done.notified().await;
    }
}

/// Serves an echo of `T`: each request decoded (and validated) as `T`, answered with
/// the same value, in the format the request asked for or used, inside the request's
/// trace.
pub(crate) fn echo<T: Payload>(
    messenger: Messenger,
    pattern: SubjectPattern,
    options: ServeOptions,
    log: Arc<EchoLog>,
) -> BoxFuture<'static, Result<Service, SubscribeError>> {
    Box::pin(async move {
        messenger
            .serve(&pattern, options, move |value: T, ctx: MessageContext| {
                let log = Arc::clone(&log);
                async move {
                    log.record(&ctx);
                    Ok(value)
                }
            })
            .await
    })
}

/// Starts the echo service of `info` on `pattern`.
pub(crate) async fn start(
    bus: &Bus,
    telemetry: &Telemetry,
    pattern: &SubjectPattern,
    info: &TypeInfo,
    options: ServeOptions,
    log: Arc<EchoLog>,
) -> Result<Service, CliError> {
    // A shared service answers each tenant as that tenant; the source's tenant here
    // is only a placeholder for patterns without one.
    let tenant = match pattern.tenant() {
        Some(t) => t.clone(),
        None => TenantId::new("shared")?,
    };
    let source = EventSource::new(&tenant, "echo", &format!("sdk-{}", std::process::id()))?;
    let messenger = Messenger::new(bus.clone(), Codec::default(), source).with_telemetry(telemetry);
    Ok((info.serve_echo)(messenger, pattern.clone(), options, log).await?)
}

/// `sdk serve echo`.
pub(crate) async fn run(global: &Global, args: EchoArgs) -> Result<(), CliError> {
    connect::need_server(
        global,
        "serve echo",
        "no other process could reach it (`sdk req --in-process` runs an echo inside its own process)",
    )?;
    let pattern = SubjectPattern::new(&args.subject).map_err(|e| {
        CliError::usage(e.to_string())
            .hint("serve a pattern such as sdk.*.echo.call or sdk.acme.echo.call")
    })?;
    let info = payload::find(&args.type_name, true)?;
    // Discoverable with the NATS micro protocol: `sdk micro ls`, `nats micro ls`.
    let mut micro = MicroService::new(SERVICE_NAME, env!("CARGO_PKG_VERSION")).description(
        "sdk serve echo: answers each request with its own data, in its format, in its trace",
    );
    if let Some(schema) = &info.schema {
        micro = micro.metadata("schema", &schema.to_string());
    }
    let mut options = ServeOptions::new().service(micro);
    if let Some(group) = &args.group {
        options = options.group(group);
    }
    let bus = connect::bus(global, None).await?;
    let telemetry = connect::telemetry()?;
    let log = Arc::new(EchoLog::new(args.json, args.count));
    let mut events = bus.events();
    let service = start(&bus, &telemetry, &pattern, &info, options, Arc::clone(&log)).await?;
    // Ready only once the server has taken the subscription: a refusal arrives first.
    let client = connect::client(&bus)?;
    if let Some(refused) = connect::confirm(
        &client,
        &mut events,
        &connect::probe_prefix(pattern.tenant()),
        Operation::Subscribe,
        &[pattern.as_str()],
        Duration::from_secs(2),
    )
    .await
    {
        service.abort();
        return Err(connect::permission_denied(Operation::Subscribe, &refused));
    }
    out::status(&format!(
        "serving echo on {pattern} ({}); ctrl-c to stop",
        info.full_name()
    ));
    let waiting = service.wait();
    tokio::pin!(waiting);
    tokio::select! {
        ended = &mut waiting => return ended.map_err(CliError::from),
        () = connect::shutdown() => {}
        () = log.finished() => {}
    }
    // Finish the requests in hand and send their replies, then stop; but not forever:
    // without a server the drain cannot finish, and a second signal stops at once.
    tokio::select! {
        drained = bus.drain() => drained?,
        () = connect::shutdown() => return Ok(()),
        () = tokio::time::sleep(args.drain_timeout) => {
            return Err(CliError::new(format!(
                "the drain did not finish within {:?}; requests in hand may be unanswered",
                args.drain_timeout
            ))
            .hint("is the server still reachable? Check it, and the service's callers"));
        }
    }
    waiting.await.map_err(CliError::from)
}
