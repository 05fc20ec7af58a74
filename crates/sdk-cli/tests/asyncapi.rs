//! `sdk asyncapi`, validated by the real `@asyncapi/parser` (installed by
//! `scripts/install-tools` into `.tools/node`): no diagnostic of severity error, and
//! the YAML and JSON forms parse to the same document.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;

#[test]
fn the_asyncapi_document_passes_the_asyncapi_parser() {
    let modules = workspace_root().join(".tools/node/node_modules");
    assert!(
        modules.join("@asyncapi/parser").is_dir(),
        "@asyncapi/parser is not installed in {}; run scripts/install-tools",
        modules.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("asyncapi.yaml");
    let json = dir.path().join("asyncapi.json");
    Sdk::run(
        &[
            "asyncapi",
            "--output",
            yaml.to_str().unwrap(),
            "--server-url",
            "nats://127.0.0.1:4222",
        ],
        &[],
    )
    .ok();
    Sdk::run(
        &[
            "asyncapi",
            "--format",
            "json",
            "--output",
            json.to_str().unwrap(),
            "--server-url",
            "nats://127.0.0.1:4222",
        ],
        &[],
    )
    .ok();

    // What the document holds.
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["servers"]["nats"]["host"], "127.0.0.1:4222");
    assert_eq!(
        doc["channels"]["events"]["address"],
        "sdk.{tenant}.events.{eventType}"
    );
    assert_eq!(
        doc["channels"]["replies"]["address"],
        "_INBOX.{tenant}.{id}"
    );
    for name in [
        "AgentMessage",
        "AgentTask",
        "TaskResult",
        "EventMessage",
        "Document",
        "DocumentChunk",
        "StatusUpdate",
        "ErrorInfo",
    ] {
        let message = &doc["components"]["messages"][name];
        assert_eq!(
            message["payload"]["$ref"],
            format!("#/components/schemas/sdk.v1.{name}")
        );
        assert_eq!(
            message["headers"]["allOf"][0]["$ref"],
            "#/components/schemas/CloudEventsHeaders"
        );
    }
    let task = &doc["components"]["schemas"]["sdk.v1.AgentTask"];
    assert_eq!(
        task["required"],
        serde_json::json!(["taskId", "agentId", "taskType"])
    );
    assert_eq!(task["properties"]["deadline"]["format"], "date-time");
    assert_eq!(
        doc["components"]["schemas"]["sdk.v1.TaskResult"]["properties"]["status"]["$ref"],
        "#/components/schemas/sdk.v1.TaskStatus"
    );
    assert_eq!(
        doc["operations"]["callEcho"]["reply"]["channel"]["$ref"],
        "#/channels/replies"
    );
    // YAML to stdout by default.
    let stdout = Sdk::run(&["asyncapi"], &[]).ok().out();
    assert!(
        stdout.starts_with("asyncapi: \"3.0.0\"\n"),
        "{}",
        &stdout[..200]
    );

    // The parser's verdict.
    let node = std::env::var("SDK_NODE").unwrap_or_else(|_| "node".to_owned());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate-asyncapi.cjs");
    let output = Command::new(&node)
        .arg(&script)
        .arg(&yaml)
        .arg(&json)
        .env("NODE_PATH", &modules)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {node} (node 20 or later; SDK_NODE names another): {e}")
        });
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the AsyncAPI parser refused the document:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Warnings are allowed; list them so that they are seen.
    for line in report.lines() {
        eprintln!("asyncapi parser: {line}");
    }
}

#[test]
fn the_document_can_be_written_only_where_it_can_be() {
    let line = Sdk::run(
        &["asyncapi", "--output", "/nonexistent/dir/asyncapi.yaml"],
        &[],
    )
    .one_line_error(2);
    assert!(
        line.starts_with("error: cannot write /nonexistent/dir/asyncapi.yaml"),
        "{line}"
    );
}

/// `NATS_URL` may carry credentials: the document names the host, never them.
#[test]
fn the_document_names_the_server_without_its_credentials() {
    for url in [
        "nats://alice:pa55word@127.0.0.1:4222",
        "nats://s3cret-token@127.0.0.1:4222",
    ] {
        let out = Sdk::run(&["asyncapi", "--format", "json"], &[("NATS_URL", url)])
            .ok()
            .out();
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["servers"]["nats"]["host"], "127.0.0.1:4222");
        assert!(
            !out.contains("pa55word") && !out.contains("s3cret-token"),
            "a credential is in the document"
        );
    }
}
