//! Bad input, an unreachable server, wrong credentials and permission refusals: each
//! is one line on stderr that says what went wrong and what to try, and a non-zero
//! exit, never a panic or a backtrace.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sdk_testkit::{NatsServer, NatsUser, Permissions};

const TASK: &str = r#"{"taskId":"t-1","agentId":"researcher","taskType":"find_papers"}"#;

#[test]
fn bad_arguments_are_one_line_and_exit_2() {
    // None of these reaches a server: there is none.
    let env = [("NATS_URL", "nats://127.0.0.1:1")];
    let cases: [(&[&str], &str); 14] = [
        (
            &["pub", "sdk.acme.events.x", TASK, "--type", "AgentTaks"],
            "error: unknown type \"AgentTaks\"; use one of AgentMessage, AgentTask,",
        ),
        (
            &[
                "pub",
                "sdk.acme.events.x",
                "{\"taskId\":",
                "--type",
                "AgentTask",
            ],
            "error: invalid JSON: EOF while parsing a value at line 1 column 10; quote it",
        ),
        (
            &["req", "sdk.acme.echo.call", "not json"],
            "error: invalid JSON: expected ident at line 1 column 2;",
        ),
        (
            &["pub", "acme.events.x", TASK],
            "error: invalid subject \"acme.events.x\": must start with \"sdk.\"; subjects are sdk.<tenant>",
        ),
        (
            &["pub", "sdk.Acme.events.x", TASK],
            "error: invalid tenant id \"Acme\": character 'A' at byte 0 is not allowed",
        ),
        (
            &["sub", "sdk.acme.>.x"],
            "error: invalid subject \"sdk.acme.>.x\": \">\" may only be the last token; watch sdk.<tenant>",
        ),
        (
            &["tail", "orders.>"],
            "error: invalid pattern \"orders.>\"; watch sdk.<tenant>",
        ),
        (
            &["pub", "sdk.acme.events.x", "{}", "--format", "protobuf"],
            "error: Protobuf needs --type: the sdk.v1 type the JSON is; pass --type",
        ),
        (
            &[
                "pub",
                "sdk.acme.events.x",
                "{\"taskId\":\"\"}",
                "--type",
                "AgentTask",
            ],
            "error: validation failed for sdk.v1.AgentTask at `taskId`: is required and must not be empty; see the fields",
        ),
        (
            &["pub", "sdk.acme.events.x", TASK, "--format", "xml"],
            "error: invalid value 'xml' for '--format <FORMAT>' [possible values: json, msgpack, protobuf]; see `sdk pub --help`",
        ),
        (
            &["req", "sdk.acme.echo.call", TASK, "--timeout", "soon"],
            "error: invalid value 'soon' for '--timeout <DURATION>': \"soon\" is not a duration",
        ),
        (&["schema", "show", "Nope"], "error: unknown type \"Nope\""),
        // Past a day the clock could overflow (`micro` waited with `now + wait`).
        (
            &["micro", "ls", "--wait", "10000000000000000000s"],
            "error: invalid value '10000000000000000000s' for '--wait <DURATION>': \"10000000000000000000s\" is longer than a day",
        ),
        // A payload size past any server's limit (it panicked allocating it).
        (
            &["bench", "--size", "10000000000000000000"],
            "error: --messages and --requests may be at most 100000000, --size at most 67108864 bytes",
        ),
    ];
    for (args, expected) in cases {
        let line = Sdk::run(args, &env).one_line_error(2);
        assert!(
            line.starts_with(expected),
            "{args:?}:\n  got      {line}\n  expected {expected}…"
        );
    }
    let line = Sdk::run(&["frobnicate"], &env).one_line_error(2);
    assert!(
        line.contains("unrecognized subcommand 'frobnicate'"),
        "{line}"
    );
    let line = Sdk::run(&["pub", "sdk.acme.events.x"], &env).one_line_error(2);
    assert!(line.contains("<JSON>"), "{line}");
    let line = Sdk::run(&["--server", "http://[::1", "streams", "ls"], &[]).one_line_error(2);
    assert!(
        line.starts_with("error: invalid bus setting NATS_URL"),
        "{line}"
    );
}

#[test]
fn an_unreachable_server_is_one_line() {
    let port = sdk_testkit::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    for args in [
        vec!["pub", "sdk.acme.events.x", TASK],
        vec!["sub", "sdk.acme.>"],
        vec!["req", "sdk.acme.echo.call", TASK],
        vec!["streams", "ls"],
        vec!["micro", "ls"],
    ] {
        let line = Sdk::run(&args, &[("NATS_URL", url.as_str())]).one_line_error(1);
        assert!(
            line.starts_with(&format!("error: cannot connect to NATS at {url}")),
            "{args:?}: {line}"
        );
        assert!(
            line.contains("is nats-server running there? Set NATS_URL or --server"),
            "{line}"
        );
    }
    // --server wins over NATS_URL.
    let line = Sdk::run(
        &["--server", &url, "pub", "sdk.acme.events.x", TASK],
        &[("NATS_URL", "nats://127.0.0.1:1")],
    )
    .one_line_error(1);
    assert!(line.contains(&url), "{line}");
}

fn tenant_server() -> NatsServer {
    NatsServer::builder()
        .user(NatsUser::password(
            "acme",
            "acme-pw",
            Some(Permissions::tenant("acme")),
        ))
        .start()
}

#[test]
fn wrong_credentials_are_one_line() {
    let server = tenant_server();
    let url = server.url();
    let line = Sdk::run(
        &["pub", "sdk.acme.events.x", TASK],
        &[
            ("NATS_URL", url.as_str()),
            ("NATS_USER", "acme"),
            ("NATS_PASSWORD", "wrong"),
        ],
    )
    .one_line_error(1);
    assert!(
        line.starts_with("error: cannot connect to NATS at"),
        "{line}"
    );
    assert!(
        line.contains("check the credentials in NATS_USER and NATS_PASSWORD"),
        "{line}"
    );
    assert!(!line.contains("wrong"), "the password leaked: {line}");
    let line = Sdk::run(
        &["pub", "sdk.acme.events.x", TASK],
        &[("NATS_URL", url.as_str()), ("NATS_USER", "acme")],
    )
    .one_line_error(2);
    assert!(
        line.starts_with("error: invalid bus setting NATS_PASSWORD"),
        "{line}"
    );
}

#[test]
fn permission_refusals_under_the_tenant_template_are_one_line() {
    let server = tenant_server();
    let url = server.url();
    let env = [
        ("NATS_URL", url.as_str()),
        ("NATS_USER", "acme"),
        ("NATS_PASSWORD", "acme-pw"),
    ];
    // Its own tenant works, end to end: serve, request, tail, publish.
    let echo = Sdk::start(
        &[
            "serve",
            "echo",
            "--subject",
            "sdk.acme.echo.call",
            "--count",
            "1",
        ],
        &env,
    );
    echo.wait_stderr("serving echo");
    let tail = Sdk::start(&["sub", "sdk.acme.events.>", "--count", "1"], &env);
    tail.wait_stderr("listening on");
    Sdk::run(
        &["req", "sdk.acme.echo.call", TASK, "--type", "AgentTask"],
        &env,
    )
    .ok();
    Sdk::run(&["pub", "sdk.acme.events.x", TASK], &env).ok();
    echo.finish().ok();
    assert!(tail.finish().ok().out().starts_with("sdk.acme.events.x"));

    // Another tenant's subjects are refused by the server, and said so.
    let line = Sdk::run(&["pub", "sdk.beta.events.x", TASK], &env).one_line_error(1);
    assert_eq!(
        line,
        "error: permission denied: this connection may not publish to \"sdk.beta.events.x\"; the server refused it under this user's permissions: use a subject of your own tenant, or connect as a user that may (NATS_USER and NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED or NATS_CREDS)"
    );
    let line = Sdk::run(&["sub", "sdk.beta.>"], &env).one_line_error(1);
    assert!(
        line.starts_with(
            "error: permission denied: this connection may not subscribe to \"sdk.beta.>\";"
        ),
        "{line}"
    );
    let line = Sdk::run(&["req", "sdk.beta.echo.call", TASK], &env).one_line_error(1);
    assert!(
        line.starts_with("error: permission denied: this connection may not"),
        "{line}"
    );
    assert!(line.contains("beta"), "{line}");
    let line =
        Sdk::run(&["serve", "echo", "--subject", "sdk.beta.echo.call"], &env).one_line_error(1);
    assert!(
        line.starts_with(
            "error: permission denied: this connection may not subscribe to \"sdk.beta.echo.call\""
        ),
        "{line}"
    );
    let line = Sdk::run(&["tail", "sdk.acme.>", "_INBOX.beta.>"], &env).one_line_error(1);
    assert!(line.contains("\"_INBOX.beta.>\""), "{line}");
}

#[test]
fn help_shows_an_example_for_every_command() {
    let commands: [&[&str]; 18] = [
        &[],
        &["pub"],
        &["sub"],
        &["tail"],
        &["req"],
        &["serve", "echo"],
        &["micro", "ls"],
        &["micro", "info"],
        &["micro", "stats"],
        &["schema", "list"],
        &["schema", "show"],
        &["schema", "check"],
        &["dlq", "list"],
        &["dlq", "show"],
        &["dlq", "replay"],
        &["streams", "apply"],
        &["streams", "ls"],
        &["asyncapi"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let help = Sdk::run(&args, &[]).ok().out();
        let examples = help
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("no examples in `sdk {}`", args.join(" ")));
        let first = examples.lines().next().unwrap_or_default();
        assert!(first.trim_start().starts_with("sdk "), "{args:?}: {first}");
    }
    let help = Sdk::run(&["completions", "--help"], &[]).ok().out();
    assert!(help.contains("sdk completions bash"), "{help}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    let bash = Sdk::run(&["completions", "bash"], &[]).ok().out();
    assert!(bash.contains("_sdk()"), "{bash}");
    assert!(bash.contains("complete -F _sdk"), "{bash}");
    let zsh = Sdk::run(&["completions", "zsh"], &[]).ok().out();
    assert!(zsh.starts_with("#compdef sdk"), "{zsh}");
    let fish = Sdk::run(&["completions", "fish"], &[]).ok().out();
    assert!(fish.contains("complete -c sdk"), "{fish}");
    Sdk::run(&["completions", "nushell"], &[]).one_line_error(2);
}

/// `sdk … | head`: the reader went away. That is not a failure, and nothing is said.
#[test]
fn a_closed_stdout_ends_quietly_with_0() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = run_with_stdout(&["asyncapi"], writer.into());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// A stdout that cannot take the output (a full disk) is a failure, said on stderr:
/// the output is lost, and a script must not read exit 0.
#[test]
fn a_stdout_that_cannot_be_written_fails_with_1() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = run_with_stdout(&["asyncapi"], full.into());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: cannot write to stdout: No space left on device"),
        "{stderr}"
    );
}
