//! The command line: every command, its flags, and an example for each.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const TOP_EXAMPLES: &str = "\
Examples:
  sdk serve echo
  sdk req sdk.acme.echo.call '{\"taskId\":\"t-1\",\"agentId\":\"a\",\"taskType\":\"x\"}' --type AgentTask
  sdk tail 'sdk.acme.>'
  sdk pub sdk.acme.events.task.created '{\"taskId\":\"t-1\",\"agentId\":\"a\",\"taskType\":\"x\"}' --type AgentTask --jetstream
  sdk micro ls
  sdk schema show AgentTask
  sdk dlq list --tenant acme
  sdk streams apply
  sdk asyncapi --output asyncapi.yaml

The server is $NATS_URL (or --server), nats://127.0.0.1:4222 when neither is set;
credentials and TLS come from the same variables as the bus (NATS_USER and
NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED, NATS_CREDS, NATS_CA, NATS_CERT, NATS_KEY,
NATS_TLS_REQUIRED). Guide: docs/cli.md.";

/// See and drive what is on the agent SDK's bus.
#[derive(Debug, Parser)]
#[command(
    name = "sdk",
    version,
    after_help = TOP_EXAMPLES,
    disable_help_subcommand = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    /// NATS server URL, or several separated by commas [default: $NATS_URL, else
    /// nats://127.0.0.1:4222]
    #[arg(short, long, global = true, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// Run on the in-process transport instead of a server: `pub` shows the envelope
    /// it sent, `req` is answered by an echo service in the same process. Other
    /// commands that need a server refuse it.
    #[arg(long, global = true)]
    pub(crate) in_process: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Publish one message: JSON encoded as an sdk.v1 type, in a full envelope.
    #[command(after_help = "\
Examples:
  sdk pub sdk.acme.agent.researcher.inbox '{\"messageId\":\"m-1\",\"senderId\":\"planner\",\"receiverId\":\"researcher\",\"content\":\"hi\"}' --type AgentMessage
  sdk pub sdk.acme.events.task.created @task.json --type AgentTask --format protobuf --jetstream
  echo '{\"note\":\"free-form\"}' | sdk pub sdk.acme.events.note - --format msgpack")]
    Pub(PubArgs),
    /// Print the messages on subjects: decoded data, headers, trace, flags.
    #[command(
        visible_alias = "tail",
        after_help = "\
Examples:
  sdk sub 'sdk.acme.>'
  sdk tail 'sdk.*.events.>' '_INBOX.acme.>' --json
  sdk sub 'sdk.acme.events.>' --count 1"
    )]
    Sub(SubArgs),
    /// Send a request and print the typed reply, or the service error with its code.
    #[command(after_help = "\
Examples:
  sdk req sdk.acme.echo.call '{\"taskId\":\"t-1\",\"agentId\":\"a\",\"taskType\":\"x\"}' --type AgentTask
  sdk req sdk.acme.echo.call '{\"taskId\":\"t-1\",\"agentId\":\"a\",\"taskType\":\"x\"}' --type AgentTask --format msgpack --json
  sdk req --in-process sdk.acme.echo.call '{\"hello\":\"world\"}'")]
    Req(ReqArgs),
    /// Run a service for testing.
    #[command(subcommand)]
    Serve(ServeCommand),
    /// NATS micro services ($SRV): list them, their endpoints, their stats.
    #[command(subcommand)]
    Micro(MicroCommand),
    /// The sdk.v1 schemas: ids, versions, fields, and the compatibility check.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Dead letters: list, show and replay them.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// The JetStream streams of the contract: create them, show their state.
    #[command(subcommand)]
    Streams(StreamsCommand),
    /// Write the AsyncAPI 3.0 document of the bus: subjects, messages, services.
    #[command(after_help = "\
Examples:
  sdk asyncapi > asyncapi.yaml
  sdk asyncapi --format json --output asyncapi.json")]
    Asyncapi(AsyncApiArgs),
    /// Measure throughput and latency: raw async-nats next to each SDK layer.
    #[command(after_help = "\
Examples:
  sdk bench
  sdk bench --messages 50000 --requests 2000 --size 1024 --jetstream
  sdk bench --json > bench.json

Rows: pub/sub throughput (one publisher, one subscriber) and request-reply latency
(one requester), each as raw async-nats, with the envelope, with the codec, and with
tracing (spans made, not exported); with --jetstream, acked publishes (256 in flight).
`vs raw` is the ratio to the raw row of the same test, in the same run.")]
    Bench(BenchArgs),
    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  sdk completions bash > ~/.local/share/bash-completion/completions/sdk
  sdk completions zsh > ~/.zfunc/_sdk")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `sdk bench`.
#[derive(Debug, Clone, Args)]
pub(crate) struct BenchArgs {
    /// Messages per pub/sub row.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) messages: usize,
    /// Requests per request-reply row.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) requests: usize,
    /// Payload bytes (the raw and envelope rows; the codec rows carry a message with
    /// content of this size).
    #[arg(long, default_value_t = 128)]
    pub(crate) size: usize,
    /// Also measure JetStream publishes (needs a server with JetStream).
    #[arg(long)]
    pub(crate) jetstream: bool,
    /// One JSON array for machines instead of the table (and no progress bar).
    #[arg(long)]
    pub(crate) json: bool,
}

/// A payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    /// application/json
    Json,
    /// application/msgpack
    Msgpack,
    /// application/protobuf (needs --type)
    Protobuf,
}

impl FormatArg {
    pub(crate) fn format(self) -> sdk_codec::Format {
        match self {
            FormatArg::Json => sdk_codec::Format::Json,
            FormatArg::Msgpack => sdk_codec::Format::MessagePack,
            FormatArg::Protobuf => sdk_codec::Format::Protobuf,
        }
    }
}

/// What `pub` and `req` send.
#[derive(Debug, Clone, Args)]
pub(crate) struct MessageArgs {
    /// The subject, e.g. sdk.acme.events.task.created
    pub(crate) subject: String,
    /// The data as JSON; `-` reads it from stdin, `@file` from a file
    #[arg(value_name = "JSON")]
    pub(crate) data: String,
    /// The sdk.v1 type to encode the JSON as: AgentTask, sdk.v1.AgentTask, ... (see
    /// `sdk schema list`); without it the JSON goes as it is, without a schema
    #[arg(short = 't', long = "type", value_name = "SCHEMA")]
    pub(crate) type_name: Option<String>,
    /// The payload format
    #[arg(short, long, value_enum, default_value_t = FormatArg::Json)]
    pub(crate) format: FormatArg,
    /// ce-tenantid [default: the subject's tenant]
    #[arg(long, value_name = "TENANT")]
    pub(crate) tenant: Option<String>,
    /// ce-type [default: sdk. plus the subject after the tenant, without `events.`]
    #[arg(long = "ce-type", value_name = "TYPE")]
    pub(crate) event_type: Option<String>,
    /// ce-correlationid
    #[arg(long, value_name = "ID")]
    pub(crate) correlation_id: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PubArgs {
    #[command(flatten)]
    pub(crate) message: MessageArgs,
    /// Store it in JetStream: wait for the stream's ack and print stream and sequence
    #[arg(long)]
    pub(crate) jetstream: bool,
    /// Print one JSON object instead of text
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SubArgs {
    /// Subjects to watch: sdk.<tenant>.… with * and >, or _INBOX.<tenant>.> for replies
    #[arg(required = true, value_name = "PATTERN")]
    pub(crate) patterns: Vec<String>,
    /// Print one JSON object per line
    #[arg(long)]
    pub(crate) json: bool,
    /// Leave the headers out of the text (the facts line still shows trace, schema,
    /// tenant and correlation)
    #[arg(long)]
    pub(crate) no_headers: bool,
    /// Stop after this many messages
    #[arg(short = 'n', long, value_name = "N")]
    pub(crate) count: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct ReqArgs {
    #[command(flatten)]
    pub(crate) message: MessageArgs,
    /// How long to wait for the reply: 500ms, 5s, 1m
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub(crate) timeout: Duration,
    /// Print one JSON object instead of text
    #[arg(long)]
    pub(crate) json: bool,
    /// Leave the headers out of the text
    #[arg(long)]
    pub(crate) no_headers: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServeCommand {
    /// Answer every request with its own data, re-encoded in the format it came in,
    /// continuing its trace.
    #[command(after_help = "\
Examples:
  sdk serve echo
  sdk serve echo --subject 'sdk.acme.echo.call' --type AgentTask
  sdk serve echo --count 1 --json")]
    Echo(EchoArgs),
}

#[derive(Debug, Args)]
pub(crate) struct EchoArgs {
    /// The subjects to serve (a pattern)
    #[arg(long, default_value = "sdk.*.echo.call", value_name = "PATTERN")]
    pub(crate) subject: String,
    /// Decode requests as this sdk.v1 type (validated; the reply carries its schema);
    /// `any` echoes JSON and MessagePack as they are, and Protobuf as bytes
    #[arg(
        short = 't',
        long = "type",
        default_value = "any",
        value_name = "SCHEMA"
    )]
    pub(crate) type_name: String,
    /// A queue group: each request goes to one member
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: Option<String>,
    /// Stop after this many requests
    #[arg(short = 'n', long, value_name = "N")]
    pub(crate) count: Option<usize>,
    /// Log each request as one JSON object per line
    #[arg(long)]
    pub(crate) json: bool,
    /// On Ctrl-C or SIGTERM, how long to wait for the requests in hand to be answered
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub(crate) drain_timeout: Duration,
}

/// How to find micro services, and how long to listen for their answers.
#[derive(Debug, Clone, Args)]
pub(crate) struct DiscoverArgs {
    /// Only services of this name
    pub(crate) name: Option<String>,
    /// Only the instance with this id (needs a name)
    pub(crate) id: Option<String>,
    /// How long to collect answers: 500ms, 2s
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    pub(crate) wait: Duration,
    /// Stop as soon as this many services have answered
    #[arg(long, value_name = "N")]
    pub(crate) expect: Option<usize>,
    /// Ask as this tenant: answers come to `_INBOX.<tenant>.…`, where a tenant's own
    /// services answer [default: $NATS_INBOX_TENANT]
    #[arg(long, value_name = "TENANT")]
    pub(crate) tenant: Option<String>,
    /// Print each answer as one JSON object per line
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MicroCommand {
    /// List the services that answer $SRV.PING.
    #[command(after_help = "\
Examples:
  sdk micro ls
  sdk micro ls sdk-echo --wait 3s
  sdk micro ls --tenant acme")]
    Ls(DiscoverArgs),
    /// Their descriptions and endpoints ($SRV.INFO).
    #[command(after_help = "\
Examples:
  sdk micro info
  sdk micro info sdk-echo --json")]
    Info(DiscoverArgs),
    /// Their request counts, errors and processing times ($SRV.STATS).
    #[command(after_help = "\
Examples:
  sdk micro stats
  sdk micro stats sdk-echo --expect 1")]
    Stats(DiscoverArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum SchemaCommand {
    /// The sdk.v1 types: schema id, version, number of fields.
    #[command(after_help = "\
Examples:
  sdk schema list
  sdk schema list --json")]
    List {
        /// Print one JSON object per line
        #[arg(long)]
        json: bool,
    },
    /// One type's fields, enums and an example.
    #[command(after_help = "\
Examples:
  sdk schema show AgentTask
  sdk schema show sdk.v1.TaskResult --json")]
    Show {
        /// The type: AgentTask, sdk.v1.AgentTask, or its schema id
        #[arg(value_name = "SCHEMA")]
        type_name: String,
        /// Print one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Check proto/ against proto/snapshot.json for breaking changes.
    #[command(after_help = "\
Examples:
  sdk schema check
  sdk schema check --proto-dir ../agent-sdk/proto --snapshot ../agent-sdk/proto/snapshot.json
  sdk schema check --builtin")]
    Check {
        /// The directory of .proto files to compile
        #[arg(long, default_value = "proto", value_name = "DIR")]
        proto_dir: PathBuf,
        /// The committed snapshot [default: <proto-dir>/snapshot.json]
        #[arg(long, value_name = "FILE")]
        snapshot: Option<PathBuf>,
        /// Check the descriptors compiled into this binary instead of a directory
        #[arg(long)]
        builtin: bool,
    },
}

/// Which dead-letter stream.
#[derive(Debug, Clone, Args)]
pub(crate) struct DlqStream {
    /// The dead-letter stream
    #[arg(long, default_value = "SDK_DLQ", value_name = "STREAM")]
    pub(crate) stream: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// List dead letters, oldest first.
    #[command(after_help = "\
Examples:
  sdk dlq list
  sdk dlq list --tenant acme --reason timeout --limit 20
  sdk dlq list --stream SDK_DLQ_acme --from 120 --json")]
    List {
        #[command(flatten)]
        stream: DlqStream,
        /// Only this tenant's dead letters
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Only those whose reason contains this text
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Start at this stream sequence
        #[arg(long, default_value_t = 1, value_name = "SEQ")]
        from: u64,
        /// List at most this many
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: usize,
        /// Print one JSON object per line
        #[arg(long)]
        json: bool,
    },
    /// One dead letter: why it failed, its headers and its decoded data.
    #[command(after_help = "\
Examples:
  sdk dlq show 42
  sdk dlq show 42 --json")]
    Show {
        /// Its sequence in the dead-letter stream
        sequence: u64,
        #[command(flatten)]
        stream: DlqStream,
        /// Print one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Publish a dead letter back to its original subject and remove it.
    #[command(after_help = "\
Examples:
  sdk dlq replay 42
  sdk dlq replay 7 --stream SDK_DLQ_acme")]
    Replay {
        /// Its sequence in the dead-letter stream
        sequence: u64,
        #[command(flatten)]
        stream: DlqStream,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StreamsCommand {
    /// Create or update SDK_EVENTS, SDK_WORKFLOWS and SDK_DLQ (idempotent).
    #[command(after_help = "\
Examples:
  sdk streams apply
  sdk streams apply --tenant acme --tenant beta")]
    Apply {
        /// Per-tenant streams instead (SDK_EVENTS_<tenant>, ...); repeat for several
        #[arg(long, value_name = "TENANT")]
        tenant: Vec<String>,
    },
    /// The state of the SDK streams: subjects, messages, bytes, sequences.
    #[command(after_help = "\
Examples:
  sdk streams ls
  sdk streams ls --all --json")]
    Ls {
        /// Every stream on the server, not only SDK_*
        #[arg(long)]
        all: bool,
        /// Print one JSON object per line
        #[arg(long)]
        json: bool,
    },
}

/// The document's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DocFormat {
    /// YAML
    Yaml,
    /// JSON
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct AsyncApiArgs {
    /// The format
    #[arg(long, value_enum, default_value_t = DocFormat::Yaml)]
    pub(crate) format: DocFormat,
    /// Write to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// The server URL to list in the document [default: $NATS_URL, else
    /// nats://127.0.0.1:4222]
    #[arg(long, value_name = "URL")]
    pub(crate) server_url: Option<String>,
}

/// `500ms`, `2s`, `1.5s`, `1m`; a bare number is milliseconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "ms"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write 500ms, 2s or 1m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}; use ms, s or m")),
    };
    let duration = Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{text:?} is not a duration; write 500ms, 2s or 1m"))?;
    // Longer than a day is a typo, and far longer would overflow the clock.
    if duration > MAX_DURATION {
        return Err(format!("{text:?} is longer than a day"));
    }
    Ok(duration)
}

/// The longest duration an option takes.
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("250").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5h").is_err());
        assert_eq!(
            parse_duration("1440m").unwrap(),
            Duration::from_secs(86_400)
        );
        // Past a day, and far past what the clock can add: an error, not a panic.
        assert_eq!(
            parse_duration("10000000000000000000s").unwrap_err(),
            "\"10000000000000000000s\" is longer than a day"
        );
        assert!(parse_duration("1441m").is_err());
    }
}
