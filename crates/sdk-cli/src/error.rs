//! Every failure becomes one line: what went wrong, then what to try.

use std::fmt;
use std::process::ExitCode;

use sdk_bus::{BusError, JetStreamPublishError, PublishError, RequestError, SubscribeError};
use sdk_codec::CodecError;

/// A failure of a command.
#[derive(Debug)]
pub(crate) struct CliError {
    message: String,
    hint: Option<String>,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Something failed: exit 1.
    Failed,
    /// The arguments are wrong: exit 2.
    Usage,
    /// Stdout was closed (`sdk tail | head`): stop quietly.
    BrokenPipe,
}

impl CliError {
    /// A failure.
    pub(crate) fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            hint: None,
            kind: Kind::Failed,
        }
    }

    /// Wrong arguments.
    pub(crate) fn usage(message: impl Into<String>) -> CliError {
        CliError {
            kind: Kind::Usage,
            ..CliError::new(message)
        }
    }

    /// Stdout is gone.
    pub(crate) fn broken_pipe() -> CliError {
        CliError {
            kind: Kind::BrokenPipe,
            ..CliError::new("stdout was closed")
        }
    }

    /// What to try.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    /// The line to print, or `None` when nothing should be printed.
    pub(crate) fn line(&self) -> Option<String> {
        if self.kind == Kind::BrokenPipe {
            return None;
        }
        let mut line = format!("error: {}", self.message);
        if let Some(hint) = &self.hint {
            line.push_str("; ");
            line.push_str(hint);
        }
        Some(one_line(&line))
    }

    /// The exit code.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self.kind {
            Kind::Failed => ExitCode::from(1),
            Kind::Usage => ExitCode::from(2),
            Kind::BrokenPipe => ExitCode::SUCCESS,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Collapses whitespace runs (newlines included) into single spaces.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An error with its sources, each added once: `a: b: c`.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !more.is_empty() && !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    one_line(&text)
}

const CREDENTIALS: &str = "NATS_USER and NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED or NATS_CREDS";

/// A bus failure, with what to try.
pub(crate) fn bus(e: BusError) -> CliError {
    let text = chain(&e);
    let lower = text.to_ascii_lowercase();
    let hint = match &e {
        BusError::Config(c) => format!("fix {} (see docs/cli.md)", c.field),
        BusError::Connect { .. } if lower.contains("authorization") => {
            format!("check the credentials in {CREDENTIALS}")
        }
        BusError::Connect { .. } if lower.contains("tls") || lower.contains("certificate") => {
            "check NATS_CA, NATS_CERT and NATS_KEY, and the URL's scheme (tls://)".into()
        }
        BusError::Connect { .. } => {
            "is nats-server running there? Set NATS_URL or --server to its address".into()
        }
        BusError::Subject(_) => {
            "subjects are sdk.<tenant>.<component>.<action>, tenants [a-z0-9_-], other tokens \
             [A-Za-z0-9_-]"
                .into()
        }
        BusError::PermissionDenied { .. } => format!(
            "the server refused it under this user's permissions: use a subject of your own \
             tenant, or connect as a user that may ({CREDENTIALS})"
        ),
        BusError::NoResponders { .. } => {
            "start a service for it (for example `sdk serve echo`), or check the subject".into()
        }
        BusError::Timeout { .. } => {
            "the service may be slow or stuck: raise --timeout, or check it with `sdk micro stats`"
                .into()
        }
        BusError::ServiceError { code, .. } => service_hint(*code).into(),
        BusError::NoStream { .. } => {
            "create the streams with `sdk streams apply`, or publish without --jetstream".into()
        }
        BusError::JetStream { .. } if lower.contains("not enabled") || lower.contains("503") => {
            "enable JetStream on the server (nats-server -js)".into()
        }
        BusError::JetStream { .. } if lower.contains("not found") => {
            "create the streams with `sdk streams apply`, or pass --stream".into()
        }
        BusError::JetStream { .. } if lower.contains("overlap") => {
            "shared and per-tenant streams cannot capture the same subjects: delete one set \
             first, or drop --tenant"
                .into()
        }
        BusError::JetStream { .. } if lower.contains("timed out") || lower.contains("timeout") => {
            "is JetStream enabled (nats-server -js), and may this user use $JS.API?".into()
        }
        BusError::JetStream { .. } => "check the server's JetStream (nats-server -js)".into(),
        BusError::TooLarge(_) => {
            "send less, or raise the server's max_payload (MessagePack and Protobuf are smaller)"
                .into()
        }
        BusError::Unsupported { .. } => "drop --in-process and connect to a server".into(),
        BusError::Conflict { .. } => {
            "it cannot be replayed as it is: read it with `sdk dlq show` and publish its data \
             again with `sdk pub`"
                .into()
        }
        BusError::Closed | BusError::Connection { .. } | BusError::ReconnectBufferFull { .. } => {
            "the connection to the server was lost; try again".into()
        }
        _ => "see docs/cli.md".into(),
    };
    CliError::new(text).hint(hint)
}

/// What each service error code means to the caller.
pub(crate) fn service_hint(code: u16) -> &'static str {
    match code {
        400 => {
            "the service could not read the request: check the JSON against `sdk schema show <type>`, and --type and --format"
        }
        403 => {
            "refused: ce-tenantid must equal the subject's tenant (drop --tenant), or the caller is not allowed"
        }
        404 => "the service has no handler for this",
        408 => "the handler ran out of time",
        413 => "the request or its answer is too large",
        503 => "the service is overloaded or shutting down; try again",
        _ => "the handler failed; see the service's logs",
    }
}

impl From<BusError> for CliError {
    fn from(e: BusError) -> CliError {
        bus(e)
    }
}

macro_rules! via_bus {
    ($($t:ty),*) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> CliError {
                bus(e.into())
            }
        }
    )*};
}
via_bus!(
    PublishError,
    RequestError,
    SubscribeError,
    JetStreamPublishError,
    sdk_bus::SubjectError,
    sdk_bus::EnvelopeError,
    sdk_bus::HeaderError,
    sdk_bus::ConfigError
);

impl From<sdk_integration::Error> for CliError {
    fn from(e: sdk_integration::Error) -> CliError {
        match e {
            sdk_integration::Error::Bus(b) => bus(b),
            sdk_integration::Error::Codec(c) => codec(c),
            other => CliError::new(chain(&other)),
        }
    }
}

/// A codec failure on the user's input.
pub(crate) fn codec(e: CodecError) -> CliError {
    let hint = match &e {
        CodecError::NoProtobufSchema { .. } => {
            "Protobuf needs --type; use --format json or msgpack for data without one"
        }
        CodecError::Validation { .. } | CodecError::Data { .. } => {
            "see the fields with `sdk schema show <type>`"
        }
        CodecError::TooLarge { .. } => "send less data",
        _ => "check the data and --type",
    };
    CliError::usage(chain(&e)).hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_line_with_its_hint() {
        let e = CliError::new("cannot do\nthis").hint("try  that");
        assert_eq!(e.line().as_deref(), Some("error: cannot do this; try that"));
        assert_eq!(CliError::broken_pipe().line(), None);
    }
}
