//! `sdk micro ls|info|stats`: NATS micro services, found through `$SRV.PING`,
//! `$SRV.INFO` and `$SRV.STATS`.

use std::time::Instant;

use futures::StreamExt as _;
use sdk_bus::{BusEvent, TenantId};
use serde_json::Value;

use crate::cli::{DiscoverArgs, Global, MicroCommand};
use crate::connect;
use crate::error::CliError;
use crate::out;

/// `sdk micro …`.
pub(crate) async fn run(global: &Global, command: MicroCommand) -> Result<(), CliError> {
    connect::need_server(global, "micro", "micro services live on a NATS server")?;
    let (verb, args) = match command {
        MicroCommand::Ls(a) => ("PING", a),
        MicroCommand::Info(a) => ("INFO", a),
        MicroCommand::Stats(a) => ("STATS", a),
    };
    let answers = discover(global, verb, &args).await?;
    if args.json {
        for a in &answers {
            out::json(a)?;
        }
        return Ok(());
    }
    if answers.is_empty() {
        return out::line(&format!(
            "no micro service answered $SRV.{verb}{} within {:?}",
            args.name
                .as_deref()
                .map(|n| format!(".{n}"))
                .unwrap_or_default(),
            args.wait
        ));
    }
    match verb {
        "PING" => out::line(&ls_text(&answers)),
        "INFO" => out::line(&info_text(&answers)),
        _ => out::line(&stats_text(&answers)),
    }
}

/// Sends `$SRV.<verb>[.<name>[.<id>]]` and collects every answer until `--wait` has
/// passed (or `--expect` answers have come), sorted by name and id.
async fn discover(
    global: &Global,
    verb: &str,
    args: &DiscoverArgs,
) -> Result<Vec<Value>, CliError> {
    let subject = match (&args.name, &args.id) {
        (None, Some(_)) => {
            return Err(CliError::usage("an id needs the service's name too")
                .hint("sdk micro info <name> <id>"));
        }
        (None, None) => format!("$SRV.{verb}"),
        (Some(name), None) => format!("$SRV.{verb}.{name}"),
        (Some(name), Some(id)) => format!("$SRV.{verb}.{name}.{id}"),
    };
    if subject.contains(char::is_whitespace) || subject.contains(['*', '>']) {
        return Err(
            CliError::usage(format!("invalid service name or id in {subject:?}"))
                .hint("names and ids are single tokens without spaces or wildcards"),
        );
    }
    let tenant = args
        .tenant
        .as_deref()
        .map(|t| {
            TenantId::new(t).map_err(|e| {
                CliError::usage(e.to_string()).hint("tenants are 1 to 64 of [a-z0-9_-]")
            })
        })
        .transpose()?;
    let bus = connect::bus(global, None).await?;
    let client = connect::client(&bus)?;
    let mut events = bus.events();
    let inbox = match &tenant {
        Some(t) => format!("{}.{}", t.inbox_prefix(), nuid::next()),
        None => client.new_inbox(),
    };
    let mut replies = client.subscribe(inbox.clone()).await.map_err(|e| {
        CliError::new(format!("cannot subscribe to {inbox}: {e}"))
            .hint("the connection to the server was lost; try again")
    })?;
    client
        .publish_with_reply(subject.clone(), inbox.clone(), bytes::Bytes::new())
        .await
        .map_err(|e| CliError::new(format!("cannot publish to {subject}: {e}")))?;
    client
        .flush()
        .await
        .map_err(|e| CliError::new(format!("cannot publish to {subject}: {e}")))?;
    let deadline = Instant::now() + args.wait; // at most a day: parse_duration caps it
    let mut answers = Vec::new();
    let mut events_open = true;
    loop {
        if args.expect.is_some_and(|n| answers.len() >= n) {
            break;
        }
        tokio::select! {
            reply = tokio::time::timeout_at(deadline.into(), replies.next()) => match reply {
                Ok(Some(m)) => {
                    if m.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                        break;
                    }
                    match serde_json::from_slice::<Value>(&m.payload) {
                        Ok(v) => answers.push(v),
                        Err(e) => out::status(&format!("skipped an answer that is not JSON: {e}")),
                    }
                }
                Ok(None) | Err(_) => break,
            },
            event = events.recv(), if events_open => match event {
                Ok(BusEvent::PermissionViolation { operation, subject: s })
                    if s == subject || s == inbox =>
                {
                    return Err(connect::permission_denied(operation, &s));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => events_open = false,
                _ => {}
            },
        }
    }
    answers.sort_by_key(|a| (text(a, "name"), text(a, "id")));
    Ok(answers)
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn metadata(v: &Value) -> String {
    match v.get("metadata") {
        Some(Value::Object(m)) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            })
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

fn ls_text(answers: &[Value]) -> String {
    let rows: Vec<Vec<String>> = answers
        .iter()
        .map(|a| {
            vec![
                text(a, "name"),
                text(a, "version"),
                text(a, "id"),
                metadata(a),
            ]
        })
        .collect();
    out::table(&["NAME", "VERSION", "ID", "METADATA"], &rows)
}

fn endpoints(a: &Value) -> Vec<Value> {
    a.get("endpoints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn info_text(answers: &[Value]) -> String {
    let mut blocks = Vec::new();
    for a in answers {
        let mut block = format!(
            "{} {}  id {}",
            text(a, "name"),
            text(a, "version"),
            text(a, "id")
        );
        let description = text(a, "description");
        if !description.is_empty() {
            block.push_str(&format!("\n  {description}"));
        }
        let meta = metadata(a);
        if !meta.is_empty() {
            block.push_str(&format!("\n  metadata {meta}"));
        }
        let rows: Vec<Vec<String>> = endpoints(a)
            .iter()
            .map(|e| {
                vec![
                    text(e, "name"),
                    text(e, "subject"),
                    text(e, "queue_group"),
                    metadata(e),
                ]
            })
            .collect();
        let table = out::table(&["ENDPOINT", "SUBJECT", "QUEUE", "METADATA"], &rows);
        for line in table.lines() {
            block.push_str(&format!("\n  {line}"));
        }
        blocks.push(block);
    }
    blocks.join("\n\n")
}

/// Nanoseconds as a short duration.
fn nanos(v: Option<&Value>) -> String {
    let Some(n) = v.and_then(Value::as_f64) else {
        return String::new();
    };
    if n >= 1e9 {
        format!("{:.2}s", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2}ms", n / 1e6)
    } else {
        format!("{:.1}µs", n / 1e3)
    }
}

/// The last error of an endpoint: `409 out of stock`, or its text.
fn last_error(endpoint: &Value) -> String {
    match endpoint.get("last_error") {
        Some(Value::Object(e)) => format!(
            "{} {}",
            e.get("code").map(ToString::to_string).unwrap_or_default(),
            e.get("status").and_then(Value::as_str).unwrap_or_default()
        )
        .trim()
        .to_owned(),
        _ => text(endpoint, "last_error"),
    }
}

fn stats_text(answers: &[Value]) -> String {
    let mut blocks = Vec::new();
    for a in answers {
        let mut block = format!(
            "{} {}  id {}  started {}",
            text(a, "name"),
            text(a, "version"),
            text(a, "id"),
            text(a, "started")
        );
        let rows: Vec<Vec<String>> = endpoints(a)
            .iter()
            .map(|e| {
                vec![
                    text(e, "name"),
                    text(e, "subject"),
                    text(e, "num_requests"),
                    text(e, "num_errors"),
                    nanos(e.get("average_processing_time")),
                    last_error(e),
                ]
            })
            .collect();
        let table = out::table(
            &[
                "ENDPOINT",
                "SUBJECT",
                "REQUESTS",
                "ERRORS",
                "AVERAGE",
                "LAST ERROR",
            ],
            &rows,
        );
        for line in table.lines() {
            block.push_str(&format!("\n  {line}"));
        }
        blocks.push(block);
    }
    blocks.join("\n\n")
}
