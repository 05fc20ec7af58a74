//! Connecting: the bus from the environment (or in-process), telemetry for trace
//! context, and the signals that end a long-running command.

use std::time::Duration;

use futures::StreamExt as _;
use opentelemetry::Context;
use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use sdk_bus::{Bus, BusConfig, BusEvent, Headers, Operation, TenantId};
use sdk_integration::Inject;
use sdk_telemetry::{Exporter, LogFormat, Telemetry, TelemetryConfig};

use crate::cli::Global;
use crate::error::CliError;

/// The server when neither `--server` nor `NATS_URL` names one, as for the `nats` CLI.
pub(crate) const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// The server URL(s) to use.
pub(crate) fn server_url(global: &Global) -> String {
    global
        .server
        .clone()
        .or_else(|| std::env::var("NATS_URL").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// The bus settings: the standard variables, with the server from `--server`, and a
/// request timeout when the command has one.
pub(crate) fn config(global: &Global, timeout: Option<Duration>) -> Result<BusConfig, CliError> {
    let url = server_url(global);
    let timeout_ms = timeout.map(|t| t.as_millis().max(1).to_string());
    BusConfig::from_lookup(|key| match key {
        "NATS_URL" => Some(url.clone()),
        "NATS_REQUEST_TIMEOUT_MS" if timeout_ms.is_some() => timeout_ms.clone(),
        "NATS_CONNECTION_NAME" => std::env::var(key).ok().or_else(|| Some("sdk-cli".into())),
        other => std::env::var(other).ok(),
    })
    .map_err(|e| {
        let field = e.field.clone();
        CliError::usage(e.to_string()).hint(if field == "NATS_URL" {
            "fix NATS_URL or --server, e.g. nats://127.0.0.1:4222".to_owned()
        } else {
            format!("fix {field} (see docs/cli.md)")
        })
    })
}

/// Connects to the server, or makes an in-process bus with `--in-process`.
pub(crate) async fn bus(global: &Global, timeout: Option<Duration>) -> Result<Bus, CliError> {
    let config = config(global, timeout)?;
    if global.in_process {
        return Ok(Bus::in_process(config));
    }
    Ok(Bus::connect(config).await?)
}

/// Refuses `--in-process` for a command that needs a server.
pub(crate) fn need_server(global: &Global, command: &str, why: &str) -> Result<(), CliError> {
    if global.in_process {
        return Err(CliError::usage(format!(
            "`sdk {command}` does not run on the in-process transport: {why}"
        ))
        .hint("drop --in-process and set NATS_URL or --server"));
    }
    Ok(())
}

/// The raw client under a NATS bus.
pub(crate) fn client(bus: &Bus) -> Result<async_nats::Client, CliError> {
    bus.nats_client()
        .cloned()
        .ok_or_else(|| CliError::usage("this needs a NATS server").hint("drop --in-process"))
}

/// Telemetry that exports nothing: it gives pub, req and serve real trace context
/// (W3C `traceparent`, `tracestate`, `baggage`), continued by the services they call.
pub(crate) fn telemetry() -> Result<Telemetry, CliError> {
    let config = TelemetryConfig::builder("sdk-cli")
        .exporters(Exporter::None, Exporter::None, Exporter::None)
        .install_global(false)
        .log_format(LogFormat::Off)
        .build()
        .map_err(|e| CliError::new(format!("telemetry: {e}")))?;
    Telemetry::init(config).map_err(|e| CliError::new(format!("telemetry: {e}")))
}

/// Starts a span for `operation` on `tenant`'s behalf and writes its context into
/// `headers`. Returns the context (its span ends when the context is dropped).
pub(crate) fn start_trace(
    telemetry: &Telemetry,
    bus: &Bus,
    name: String,
    tenant: &TenantId,
    headers: &mut Headers,
) -> Context {
    let span = telemetry.tracer("sdk-cli").start(name);
    let cx = sdk_telemetry::with_tenant(&Context::new().with_span(span), tenant.as_str());
    let mut carrier = Inject::new(headers);
    telemetry.propagator().inject(&cx, &mut carrier);
    carrier.report(bus);
    cx
}

/// The trace id of a context, as 32 hex digits.
pub(crate) fn trace_id(cx: &Context) -> String {
    cx.span().span_context().trace_id().to_string()
}

/// Confirms with the server that it took what this connection sent so far (a
/// publish, a subscription): a message through the server and back, whose return
/// means every earlier answer, a permission refusal included, has been read. Returns
/// the subject of a refused `operation` on one of `subjects`, as soon as the refusal
/// arrives. Gives up waiting after `limit` when the probe's inbox may not be used.
pub(crate) async fn confirm(
    client: &async_nats::Client,
    events: &mut tokio::sync::broadcast::Receiver<BusEvent>,
    inbox_prefix: &str,
    operation: Operation,
    subjects: &[&str],
    limit: Duration,
) -> Option<String> {
    let probe = format!("{inbox_prefix}.{}", nuid::next());
    let mut sub = client.subscribe(probe.clone()).await.ok();
    if sub.is_some() && client.publish(probe, bytes::Bytes::new()).await.is_ok() {
        client.flush().await.ok();
    }
    let returned = async {
        match sub.as_mut() {
            Some(s) => {
                s.next().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(returned);
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut returned => break,
            () = &mut deadline => break,
            event = events.recv() => match event {
                Ok(BusEvent::PermissionViolation { operation: op, subject })
                    if op == operation && subjects.contains(&subject.as_str()) =>
                {
                    return Some(subject);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    if let Some(mut s) = sub {
        s.unsubscribe().await.ok();
    }
    // The connection reads the refusal before the probe, but hands it to the event
    // task, which may not have run yet: let it.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    refused(events, operation, subjects)
}

/// The inbox prefix this connection may use for a probe: `NATS_INBOX_TENANT`'s, else
/// `tenant`'s, else the plain `_INBOX`.
pub(crate) fn probe_prefix(tenant: Option<&TenantId>) -> String {
    let configured = std::env::var("NATS_INBOX_TENANT")
        .ok()
        .and_then(|t| TenantId::new(t.trim()).ok());
    match configured.as_ref().or(tenant) {
        Some(t) => t.inbox_prefix(),
        None => "_INBOX".to_owned(),
    }
}

/// The first permission refusal among the events received so far, for `subjects`.
pub(crate) fn refused(
    events: &mut tokio::sync::broadcast::Receiver<BusEvent>,
    operation: Operation,
    subjects: &[&str],
) -> Option<String> {
    while let Ok(event) = events.try_recv() {
        if let BusEvent::PermissionViolation {
            operation: op,
            subject,
        } = event
            && op == operation
            && subjects.contains(&subject.as_str())
        {
            return Some(subject);
        }
    }
    None
}

/// The error for a refused operation.
pub(crate) fn permission_denied(operation: Operation, subject: &str) -> CliError {
    CliError::from(sdk_bus::BusError::PermissionDenied {
        operation,
        subject: subject.to_owned(),
    })
}

/// Resolves on Ctrl-C or SIGTERM (never, when signals cannot be watched).
pub(crate) async fn shutdown() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                () = interrupt => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    interrupt.await;
}
