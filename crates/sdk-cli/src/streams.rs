//! `sdk streams apply|ls`: the streams of the contract, created idempotently, and
//! their state.

use futures::TryStreamExt as _;
use sdk_bus::TenantId;
use sdk_bus::jetstream::stream::StreamSpec;
use serde_json::json;

use crate::cli::{Global, StreamsCommand};
use crate::connect;
use crate::error::CliError;
use crate::out;

/// `sdk streams …`.
pub(crate) async fn run(global: &Global, command: StreamsCommand) -> Result<(), CliError> {
    connect::need_server(global, "streams", "streams live in JetStream")?;
    let tenants = match &command {
        StreamsCommand::Apply { tenant } => tenant
            .iter()
            .map(|t| {
                TenantId::new(t).map_err(|e| {
                    CliError::usage(e.to_string()).hint("tenants are 1 to 64 of [a-z0-9_-]")
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        StreamsCommand::Ls { .. } => Vec::new(),
    };
    let bus = connect::bus(global, None).await?;
    let client = connect::client(&bus)?;
    let raw = async_nats::jetstream::new(client);
    match command {
        StreamsCommand::Apply { .. } => {
            let js = bus.jetstream()?;
            let shared = [
                StreamSpec::events(),
                StreamSpec::workflows(),
                StreamSpec::dead_letters(),
            ];
            let specs: Vec<StreamSpec> = if tenants.is_empty() {
                shared.to_vec()
            } else {
                tenants
                    .iter()
                    .flat_map(|t| shared.iter().map(|s| s.clone().for_tenant(t)))
                    .collect()
            };
            let mut rows = Vec::new();
            for spec in &specs {
                let before = match raw.get_stream(&spec.name).await {
                    Ok(mut s) => Some(info_config(&mut s).await),
                    Err(_) => None,
                };
                js.ensure_stream(spec).await?;
                let after = match raw.get_stream(&spec.name).await {
                    Ok(mut s) => Some(info_config(&mut s).await),
                    Err(_) => None,
                };
                let what = match (before, after) {
                    (None, _) => "created",
                    (Some(b), Some(a)) if b == a => "unchanged",
                    _ => "updated",
                };
                rows.push(vec![
                    spec.name.clone(),
                    spec.subjects.join(","),
                    what.to_owned(),
                ]);
            }
            out::line(&out::table(&["STREAM", "SUBJECTS", "STATE"], &rows))
        }
        StreamsCommand::Ls { all, json } => {
            let infos: Vec<async_nats::jetstream::stream::Info> = raw
                .streams()
                .try_collect()
                .await
                .map_err(|e| jetstream_error("list streams", &e))?;
            let mut infos: Vec<_> = infos
                .into_iter()
                .filter(|i| all || i.config.name.starts_with("SDK_"))
                .collect();
            infos.sort_by(|a, b| a.config.name.cmp(&b.config.name));
            if json {
                for i in &infos {
                    out::json(&json!({
                        "name": i.config.name,
                        "subjects": i.config.subjects,
                        "messages": i.state.messages,
                        "bytes": i.state.bytes,
                        "first_sequence": i.state.first_sequence,
                        "last_sequence": i.state.last_sequence,
                        "consumers": i.state.consumer_count,
                        "max_age_seconds": i.config.max_age.as_secs(),
                    }))?;
                }
                return Ok(());
            }
            if infos.is_empty() {
                return Err(CliError::new(if all {
                    "the server has no streams"
                } else {
                    "the server has no SDK streams"
                })
                .hint("create them with `sdk streams apply`"));
            }
            let rows: Vec<Vec<String>> = infos
                .iter()
                .map(|i| {
                    vec![
                        i.config.name.clone(),
                        i.config.subjects.join(","),
                        i.state.messages.to_string(),
                        i.state.bytes.to_string(),
                        i.state.first_sequence.to_string(),
                        i.state.last_sequence.to_string(),
                        i.state.consumer_count.to_string(),
                    ]
                })
                .collect();
            out::line(&out::table(
                &[
                    "STREAM",
                    "SUBJECTS",
                    "MESSAGES",
                    "BYTES",
                    "FIRST",
                    "LAST",
                    "CONSUMERS",
                ],
                &rows,
            ))
        }
    }
}

/// The stream's configuration as the server reports it now, without the metadata the
/// server keeps for itself (`_nats.*`, which records the API level of the last change).
async fn info_config(stream: &mut async_nats::jetstream::stream::Stream) -> Option<String> {
    let info = stream.info().await.ok()?;
    let mut config = serde_json::to_value(&info.config).ok()?;
    if let Some(meta) = config.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.retain(|k, _| !k.starts_with("_nats."));
    }
    Some(config.to_string())
}

fn jetstream_error(what: &str, e: &(dyn std::error::Error + 'static)) -> CliError {
    let text = crate::error::chain(e);
    let hint = if text.to_ascii_lowercase().contains("not enabled") {
        "enable JetStream on the server (nats-server -js)"
    } else {
        "is JetStream enabled (nats-server -js), and may this user use $JS.API?"
    };
    CliError::new(format!("cannot {what}: {text}")).hint(hint)
}
