//! `sdk dlq list|show|replay`: the dead letters of JetStream consumers.

use sdk_bus::JetStream;
use sdk_bus::TenantId;
use sdk_bus::jetstream::dead_letter::{DeadLetter, DeadLetterQuery};
use sdk_codec::Codec;
use serde_json::json;

use crate::cli::{DlqCommand, Global};
use crate::connect;
use crate::error::CliError;
use crate::out;
use crate::show::Shown;

/// How many dead letters one page reads.
const PAGE: usize = 100;

/// `sdk dlq …`.
pub(crate) async fn run(global: &Global, command: DlqCommand) -> Result<(), CliError> {
    connect::need_server(global, "dlq", "dead letters live in JetStream")?;
    if let DlqCommand::List {
        tenant: Some(t), ..
    } = &command
    {
        tenant_id(t)?;
    }
    let bus = connect::bus(global, None).await?;
    let js = bus.jetstream()?;
    match command {
        DlqCommand::List {
            stream,
            tenant,
            reason,
            from,
            limit,
            json,
        } => {
            let tenant = tenant.as_deref().map(tenant_id).transpose()?;
            list(
                &js,
                &stream.stream,
                tenant,
                reason.as_deref(),
                from,
                limit,
                json,
            )
            .await
        }
        DlqCommand::Show {
            sequence,
            stream,
            json,
        } => {
            let letter = find(&js, &stream.stream, sequence).await?;
            show(&letter, json)
        }
        DlqCommand::Replay { sequence, stream } => {
            let letter = find(&js, &stream.stream, sequence).await?;
            let ack = js.replay(&stream.stream, &letter).await?;
            out::line(&format!(
                "replayed dead letter {sequence} to {}: stored in {} at sequence {}; removed it \
                 from {}",
                letter.original_subject.as_deref().unwrap_or("?"),
                ack.stream,
                ack.sequence,
                stream.stream
            ))
        }
    }
}

fn tenant_id(text: &str) -> Result<TenantId, CliError> {
    TenantId::new(text)
        .map_err(|e| CliError::usage(e.to_string()).hint("tenants are 1 to 64 of [a-z0-9_-]"))
}

/// Pages through the stream until `limit` dead letters pass the filters or it ends.
async fn list(
    js: &JetStream,
    stream: &str,
    tenant: Option<TenantId>,
    reason: Option<&str>,
    from: u64,
    limit: usize,
    json: bool,
) -> Result<(), CliError> {
    let mut query = DeadLetterQuery::new().from_sequence(from).limit(PAGE);
    if let Some(t) = &tenant {
        query = query.tenant(t);
    }
    let wanted = reason.map(str::to_ascii_lowercase);
    let mut found: Vec<DeadLetter> = Vec::new();
    let mut more_from = None;
    'pages: loop {
        let page = js.dead_letters(stream, &query).await?;
        let last = page.letters.last().map(|l| l.sequence);
        for letter in page.letters {
            let matches = wanted.as_deref().is_none_or(|w| {
                letter
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.to_ascii_lowercase().contains(w))
            });
            if !matches {
                continue;
            }
            if found.len() == limit {
                more_from = Some(letter.sequence);
                break 'pages;
            }
            found.push(letter);
        }
        match page.next {
            Some(next) => query = next,
            None => break,
        }
        if last.is_none() {
            break;
        }
    }
    if json {
        for l in &found {
            out::json(&json!({
                "sequence": l.sequence,
                "subject": l.subject,
                "original_subject": l.original_subject,
                "reason": l.reason,
                "deliveries": l.deliveries,
                "consumer": l.consumer,
                "tenant": l.headers.get("ce-tenantid"),
                "time": l.headers.get("sdk-dlq-time"),
                "size": l.payload.len(),
            }))?;
        }
        return Ok(());
    }
    if found.is_empty() {
        return out::line(&format!("no dead letters in {stream} match"));
    }
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|l| {
            vec![
                l.sequence.to_string(),
                l.original_subject
                    .clone()
                    .unwrap_or_else(|| l.subject.clone()),
                l.deliveries.map(|d| d.to_string()).unwrap_or_default(),
                l.consumer.clone().unwrap_or_default(),
                l.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut text = out::table(
        &["SEQ", "SUBJECT", "DELIVERIES", "CONSUMER", "REASON"],
        &rows,
    );
    if let Some(next) = more_from {
        text.push_str(&format!("\nmore: sdk dlq list --from {next}"));
    }
    out::line(&text)
}

/// The dead letter at `sequence`.
async fn find(js: &JetStream, stream: &str, sequence: u64) -> Result<DeadLetter, CliError> {
    let page = js
        .dead_letters(
            stream,
            &DeadLetterQuery::new().from_sequence(sequence).limit(1),
        )
        .await?;
    page.letters
        .into_iter()
        .find(|l| l.sequence == sequence)
        .ok_or_else(|| {
            CliError::new(format!(
                "no dead letter with sequence {sequence} in {stream}"
            ))
            .hint("list them with `sdk dlq list`")
        })
}

fn show(letter: &DeadLetter, json: bool) -> Result<(), CliError> {
    let shown = Shown::inspect(
        &Codec::default(),
        letter
            .original_subject
            .as_deref()
            .unwrap_or(letter.subject.as_str()),
        None,
        letter.headers.clone(),
        letter.payload.clone(),
    );
    if json {
        let mut value = shown.to_json();
        value["sequence"] = json!(letter.sequence);
        value["dead_letter_subject"] = json!(letter.subject);
        value["reason"] = json!(letter.reason);
        value["deliveries"] = json!(letter.deliveries);
        value["consumer"] = json!(letter.consumer);
        return out::json(&value);
    }
    let mut text = format!(
        "dead letter {} in {}: {}\n  deliveries {}  consumer {}\n",
        letter.sequence,
        letter.subject,
        letter.reason.as_deref().unwrap_or("(no reason recorded)"),
        letter
            .deliveries
            .map_or_else(|| "?".to_owned(), |d| d.to_string()),
        letter.consumer.as_deref().unwrap_or("?"),
    );
    text.push_str(&shown.to_text(true));
    out::line(&text)
}
