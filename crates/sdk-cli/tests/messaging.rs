//! `sdk pub`, `sub`, `req` and `serve echo` against a real nats-server, as separate
//! processes, the way people use them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sdk_testkit::NatsServer;
use serde_json::{Value, json};

const TASK: &str = r#"{"taskId":"t-1","agentId":"researcher","taskType":"find_papers","priority":2,"createdAt":"2025-06-02T09:30:00Z","metadata":{"k":"v"}}"#;

fn task() -> Value {
    serde_json::from_str(TASK).unwrap()
}

/// The fields of `sent` carry the same values in `got` (which adds the defaults).
fn assert_contains(got: &Value, sent: &Value) {
    for (k, v) in sent.as_object().unwrap() {
        assert_eq!(&got[k], v, "field {k} in {got}");
    }
}

#[test]
fn serve_echo_answers_every_format_and_continues_the_trace() {
    let server = NatsServer::start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let echo = Sdk::start(
        &[
            "serve",
            "echo",
            "--type",
            "AgentTask",
            "--count",
            "3",
            "--json",
        ],
        &env,
    );
    echo.wait_stderr("serving echo on sdk.*.echo.call (sdk.v1.AgentTask)");
    let mut replies = Vec::new();
    for format in ["json", "msgpack", "protobuf"] {
        let reply = Sdk::run(
            &[
                "req",
                "sdk.acme.echo.call",
                TASK,
                "--type",
                "AgentTask",
                "--format",
                format,
                "--correlation-id",
                &format!("conv-{format}"),
                "--json",
            ],
            &env,
        )
        .ok()
        .json_lines()
        .remove(0);
        assert_eq!(reply["is_reply"], true);
        assert_eq!(
            reply["content_type"],
            format!("application/{format}"),
            "{reply}"
        );
        assert_eq!(reply["schema"], "urn:sdk:schema:sdk.v1.AgentTask:v1");
        assert_eq!(reply["tenant"], "acme");
        assert_eq!(reply["type"], "sdk.reply");
        assert_eq!(reply["correlation_id"], format!("conv-{format}"));
        assert_eq!(reply["flags"], json!([]), "{reply}");
        assert_contains(&reply["data"], &task());
        replies.push(reply);
    }
    // The service logged each request inside the caller's trace, and stopped by itself
    // after the third.
    let log = echo.finish().ok().json_lines();
    assert_eq!(log.len(), 3, "{log:?}");
    for (logged, reply) in log.iter().zip(&replies) {
        let trace = reply["trace_id"].as_str().unwrap();
        assert_eq!(trace.len(), 32);
        assert_eq!(
            logged["trace_id"], trace,
            "the reply continues the request's trace"
        );
        assert_eq!(logged["content_type"], reply["content_type"]);
        assert_eq!(logged["correlation_id"], reply["correlation_id"]);
        assert_eq!(logged["tenant"], "acme");
    }
}

#[test]
fn serve_echo_of_any_type_echoes_data_without_a_schema() {
    let server = NatsServer::start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let echo = Sdk::start(&["serve", "echo", "--count", "3"], &env);
    echo.wait_stderr("serving echo on sdk.*.echo.call (any)");
    let free_form = r#"{"note":"free-form","n":[1,2.5,true,null]}"#;
    for format in ["json", "msgpack"] {
        let reply = Sdk::run(
            &[
                "req",
                "sdk.beta.echo.call",
                free_form,
                "--format",
                format,
                "--json",
            ],
            &env,
        )
        .ok()
        .json_lines()
        .remove(0);
        assert_eq!(
            reply["data"],
            serde_json::from_str::<Value>(free_form).unwrap()
        );
        assert_eq!(reply["content_type"], format!("application/{format}"));
        assert_eq!(reply["schema"], Value::Null);
        assert_eq!(reply["tenant"], "beta");
    }
    // Protobuf goes back as the same bytes; without a schema on the reply, `req` reads
    // it as the type it sent, and says so.
    let reply = Sdk::run(
        &[
            "req",
            "sdk.acme.echo.call",
            TASK,
            "--type",
            "AgentTask",
            "--format",
            "protobuf",
            "--json",
        ],
        &env,
    )
    .ok()
    .json_lines()
    .remove(0);
    assert_contains(&reply["data"], &task());
    assert_eq!(reply["flags"][0]["kind"], "assumed_schema", "{reply}");
    let text = echo.finish().ok().out();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("echo sdk.beta.echo.call  format application/msgpack  tenant beta"),
        "{text}"
    );
}

#[test]
fn req_prints_the_service_error_with_its_code_and_fails() {
    let server = NatsServer::start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let echo = Sdk::start(&["serve", "echo", "--type", "AgentTask"], &env);
    echo.wait_stderr("serving echo");
    // The wrong type: the service cannot decode it.
    let message = r#"{"messageId":"m-1","senderId":"planner","receiverId":"researcher"}"#;
    let failed = Sdk::run(
        &[
            "req",
            "sdk.acme.echo.call",
            message,
            "--type",
            "AgentMessage",
            "--json",
        ],
        &env,
    );
    let line = failed.one_line_error(1);
    assert!(
        line.starts_with("error: the service answered 400: schema mismatch: expected urn:sdk:schema:sdk.v1.AgentTask:v1"),
        "{line}"
    );
    let printed = failed.json_lines().remove(0);
    assert_eq!(printed["error"]["code"], 400);
    // Another tenant in ce-tenantid than in the subject: refused before any handler.
    let line = Sdk::run(
        &[
            "req",
            "sdk.acme.echo.call",
            TASK,
            "--type",
            "AgentTask",
            "--tenant",
            "beta",
        ],
        &env,
    )
    .one_line_error(1);
    assert!(
        line.starts_with("error: the service answered 403: ce-tenantid \"beta\" does not match the tenant \"acme\""),
        "{line}"
    );
    assert!(line.contains("drop --tenant"), "{line}");
    // Nobody serves this subject.
    let line = Sdk::run(&["req", "sdk.acme.nobody.call", "{}"], &env).one_line_error(1);
    assert!(
        line.starts_with("error: no responders for sdk.acme.nobody.call"),
        "{line}"
    );
    assert!(line.contains("sdk serve echo"), "{line}");
}

fn by_subject<'a>(messages: &'a [Value], subject: &str) -> &'a Value {
    messages
        .iter()
        .find(|m| m["subject"] == subject)
        .unwrap_or_else(|| panic!("nothing on {subject} in {messages:#?}"))
}

fn flag_kinds(message: &Value) -> Vec<String> {
    message["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_decodes_every_format_and_flags_problems_without_stopping() {
    let server = NatsServer::start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let tail = Sdk::start(
        &[
            "tail",
            "sdk.acme.>",
            "_INBOX.acme.>",
            "--json",
            "--count",
            "6",
        ],
        &env,
    );
    tail.wait_stderr("listening on sdk.acme.>, _INBOX.acme.>");

    let result = r#"{"taskId":"t-1","status":"TASK_STATUS_SUCCEEDED","costUsd":0.25,"usage":{"promptTokens":10,"completionTokens":5,"totalTokens":15}}"#;
    Sdk::run(
        &[
            "pub",
            "sdk.acme.events.task.created",
            TASK,
            "--type",
            "AgentTask",
            "--format",
            "msgpack",
        ],
        &env,
    )
    .ok();
    Sdk::run(
        &[
            "pub",
            "sdk.acme.events.task.completed",
            result,
            "--type",
            "TaskResult",
            "--format",
            "protobuf",
        ],
        &env,
    )
    .ok();
    Sdk::run(
        &[
            "pub",
            "sdk.acme.events.forged",
            TASK,
            "--type",
            "AgentTask",
            "--tenant",
            "beta",
        ],
        &env,
    )
    .ok();
    // Written by another client: a payload that does not decode as its schema, and an
    // error reply.
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    for (k, v) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "bad-1"),
        ("ce-source", "/acme/py/1"),
        ("ce-type", "sdk.task.created"),
        ("ce-tenantid", "acme"),
        ("ce-datacontenttype", "application/protobuf"),
        ("ce-dataschema", "urn:sdk:schema:sdk.v1.AgentTask:v1"),
        ("traceparent", "not-a-trace"),
        // A control character the server passes and the SDK refuses: shown as a flag.
        ("x-note", "bell\u{7}"),
    ] {
        headers.insert(k, v);
    }
    client
        .publish_with_headers(
            "sdk.acme.events.broken",
            headers,
            vec![0xff, 0xff, 0xff].into(),
        )
        .await
        .unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "Nats-Service-Error",
        "the handler ran past its timeout of 30s",
    );
    headers.insert("Nats-Service-Error-Code", "408");
    client
        .publish_with_headers(
            "_INBOX.acme.abc",
            headers,
            "the handler ran past its timeout of 30s".into(),
        )
        .await
        .unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("content-type", "application/cloudevents+json");
    client
        .publish_with_headers(
            "sdk.acme.events.structured",
            headers,
            r#"{"specversion":"1.0","id":"s-1","source":"/acme/py/1","type":"sdk.note","tenantid":"acme","data":{"note":"structured"}}"#.into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();

    let messages = tail.finish().ok().json_lines();
    assert_eq!(messages.len(), 6, "{messages:#?}");

    let created = by_subject(&messages, "sdk.acme.events.task.created");
    assert_eq!(created["content_type"], "application/msgpack");
    assert_eq!(created["schema"], "urn:sdk:schema:sdk.v1.AgentTask:v1");
    assert_eq!(created["type"], "sdk.task.created");
    assert_eq!(created["tenant"], "acme");
    assert_eq!(created["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(created["flags"], json!([]));
    assert_contains(&created["data"], &task());
    assert_eq!(created["headers"]["ce-specversion"], "1.0");

    let completed = by_subject(&messages, "sdk.acme.events.task.completed");
    assert_eq!(completed["content_type"], "application/protobuf");
    assert_eq!(completed["data"]["status"], "TASK_STATUS_SUCCEEDED");
    assert_eq!(completed["data"]["usage"]["totalTokens"], 15);

    let forged = by_subject(&messages, "sdk.acme.events.forged");
    assert_eq!(flag_kinds(forged), ["tenant_mismatch"]);
    assert_contains(&forged["data"], &task());

    let broken = by_subject(&messages, "sdk.acme.events.broken");
    assert_eq!(
        flag_kinds(broken),
        ["invalid_traceparent", "undecodable", "invalid_header"]
    );
    assert_eq!(broken["raw_base64"], "////");

    let error = by_subject(&messages, "_INBOX.acme.abc");
    assert_eq!(error["error"]["code"], 408);
    assert_eq!(flag_kinds(error), ["service_error"]);

    let structured = by_subject(&messages, "sdk.acme.events.structured");
    assert_eq!(structured["id"], "s-1");
    assert_eq!(structured["data"], json!({"note": "structured"}));
}

#[test]
fn sub_shows_people_the_headers_and_the_pretty_data() {
    let server = NatsServer::start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let tail = Sdk::start(&["sub", "sdk.acme.agent.*.inbox", "--count", "1"], &env);
    tail.wait_stderr("listening on");
    let message = r#"{"messageId":"m-1","senderId":"planner","receiverId":"researcher","content":"find three papers"}"#;
    Sdk::run(
        &[
            "pub",
            "sdk.acme.agent.researcher.inbox",
            message,
            "--type",
            "sdk.v1.AgentMessage",
            "--correlation-id",
            "conversation 7",
        ],
        &env,
    )
    .ok();
    let text = tail.finish().ok().out();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "sdk.acme.agent.researcher.inbox", "{text}");
    for part in [
        "schema sdk.v1.AgentMessage v1",
        "format application/json",
        "tenant acme",
        "type sdk.agent.researcher.inbox",
        "correlation conversation 7",
        "trace ",
    ] {
        assert!(lines[1].contains(part), "{part:?} missing from {text}");
    }
    assert_eq!(lines[2], "  headers:", "{text}");
    assert_eq!(lines[3], "    ce-specversion: 1.0", "{text}");
    assert!(
        text.contains("    ce-correlationid: conversation%207"),
        "{text}"
    );
    assert!(text.contains("  data:\n    {\n"), "{text}");
    assert!(
        text.contains("      \"content\": \"find three papers\","),
        "{text}"
    );
}

#[test]
fn pub_to_jetstream_prints_stream_and_sequence() {
    let server = NatsServer::builder().jetstream().start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    // Without the stream, it says how to make it.
    let line = Sdk::run(
        &[
            "pub",
            "sdk.acme.events.task.created",
            TASK,
            "--type",
            "AgentTask",
            "--jetstream",
        ],
        &env,
    )
    .one_line_error(1);
    assert!(
        line.contains("no JetStream stream captures sdk.acme.events.task.created"),
        "{line}"
    );
    assert!(line.contains("sdk streams apply"), "{line}");
    Sdk::run(&["streams", "apply"], &env).ok();
    for sequence in [1, 2] {
        let stored = Sdk::run(
            &[
                "pub",
                "sdk.acme.events.task.created",
                TASK,
                "--type",
                "AgentTask",
                "--jetstream",
                "--json",
            ],
            &env,
        )
        .ok()
        .json_lines()
        .remove(0);
        assert_eq!(stored["stream"], "SDK_EVENTS");
        assert_eq!(stored["sequence"], sequence);
        assert_eq!(stored["duplicate"], false);
    }
    let text = Sdk::run(
        &[
            "pub",
            "sdk.acme.workflow.wf-1.step_done",
            "{\"step\":1}",
            "--jetstream",
        ],
        &env,
    )
    .ok()
    .out();
    assert!(
        text.starts_with("stored sdk.acme.workflow.wf-1.step_done in SDK_WORKFLOWS at sequence 1: data without a schema as application/json"),
        "{text}"
    );
}

#[test]
fn pub_reads_json_from_stdin_and_files() {
    let server = NatsServer::start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let tail = Sdk::start(
        &["sub", "sdk.acme.events.>", "--json", "--count", "2"],
        &env,
    );
    tail.wait_stderr("listening on");
    Sdk::run_with_stdin(
        &[
            "pub",
            "sdk.acme.events.from-stdin",
            "-",
            "--type",
            "AgentTask",
        ],
        &env,
        TASK,
    )
    .ok();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("task.json");
    std::fs::write(&file, TASK).unwrap();
    Sdk::run(
        &[
            "pub",
            "sdk.acme.events.from-file",
            &format!("@{}", file.display()),
            "--type",
            "AgentTask",
        ],
        &env,
    )
    .ok();
    let messages = tail.finish().ok().json_lines();
    for subject in ["sdk.acme.events.from-stdin", "sdk.acme.events.from-file"] {
        assert_contains(&by_subject(&messages, subject)["data"], &task());
    }
}

#[test]
fn in_process_pub_and_req_need_no_server() {
    // No NATS_URL, no server: the in-process transport.
    let shown = Sdk::run(
        &[
            "--in-process",
            "pub",
            "sdk.acme.events.task.created",
            TASK,
            "--type",
            "AgentTask",
            "--json",
        ],
        &[],
    )
    .ok()
    .json_lines()
    .remove(0);
    assert_eq!(shown["schema"], "urn:sdk:schema:sdk.v1.AgentTask:v1");
    assert_contains(&shown["data"], &task());
    let reply = Sdk::run(
        &[
            "--in-process",
            "req",
            "sdk.acme.echo.call",
            TASK,
            "--type",
            "AgentTask",
            "--format",
            "msgpack",
            "--json",
        ],
        &[],
    )
    .ok()
    .json_lines()
    .remove(0);
    assert_eq!(reply["is_reply"], true);
    assert_eq!(reply["content_type"], "application/msgpack");
    assert_contains(&reply["data"], &task());
    let text = Sdk::run(
        &[
            "--in-process",
            "req",
            "sdk.acme.echo.call",
            TASK,
            "--type",
            "AgentTask",
            "--no-headers",
        ],
        &[],
    )
    .ok()
    .out();
    assert!(text.starts_with("reply to sdk.acme.echo.call\n  schema sdk.v1.AgentTask v1  format application/json  tenant acme  type sdk.reply  trace "), "{text}");
    assert!(!text.contains("headers:"), "{text}");
    assert!(text.contains("  data:\n"), "{text}");
    // What needs a server says so.
    for args in [
        vec!["--in-process", "sub", "sdk.acme.>"],
        vec!["--in-process", "serve", "echo"],
        vec!["--in-process", "streams", "ls"],
        vec!["--in-process", "dlq", "list"],
        vec!["--in-process", "micro", "ls"],
        vec![
            "--in-process",
            "pub",
            "sdk.acme.events.x",
            "{}",
            "--jetstream",
        ],
    ] {
        let line = Sdk::run(&args, &[]).one_line_error(2);
        assert!(line.contains("--in-process"), "{args:?}: {line}");
    }
}

#[test]
fn serve_and_tail_stop_cleanly_on_a_signal() {
    let server = NatsServer::start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let echo = Sdk::start(&["serve", "echo"], &env);
    echo.wait_stderr("serving echo");
    let tail = Sdk::start(&["tail", "sdk.>"], &env);
    tail.wait_stderr("listening on sdk.>");
    Sdk::run(&["req", "sdk.acme.echo.call", "{\"n\":1}"], &env).ok();
    // The tail saw the request; the echo answered it.
    let first = tail.wait_stdout_lines(1).remove(0);
    assert!(
        first.starts_with("sdk.acme.echo.call  reply-to _INBOX.acme."),
        "{first}"
    );
    echo.signal("TERM");
    tail.signal("INT");
    let echo = echo.finish();
    assert!(echo.status.success(), "{echo:#?}");
    assert_eq!(echo.stdout.len(), 1, "{echo:#?}");
    let tail = tail.finish();
    assert!(tail.status.success(), "{tail:#?}");
}

#[test]
fn serve_with_the_server_gone_says_its_drain_did_not_finish() {
    let mut server = NatsServer::start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let echo = Sdk::start(&["serve", "echo", "--drain-timeout", "1s"], &env);
    echo.wait_stderr("serving echo");
    server.kill();
    echo.signal("TERM");
    let ended = echo.finish();
    assert_eq!(ended.status.code(), Some(1), "{ended:#?}");
    // After its status line, one error line.
    assert_eq!(ended.stderr.len(), 2, "{ended:#?}");
    assert!(ended.stderr[0].starts_with("serving echo"), "{ended:#?}");
    assert!(
        ended.stderr[1].starts_with("error: the drain did not finish within 1s; "),
        "{ended:#?}"
    );
}
