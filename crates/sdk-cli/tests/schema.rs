//! `sdk schema list|show|check`, the last against real copies of `proto/` with real
//! edits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;

#[test]
fn schema_list_names_every_type_with_its_id_and_version() {
    let text = Sdk::run(&["schema", "list"], &[]).ok().out();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9, "{text}");
    assert_eq!(
        lines[0],
        "TYPE           SCHEMA                                  VERSION  FIELDS"
    );
    assert!(
        lines[2].starts_with("AgentTask      urn:sdk:schema:sdk.v1.AgentTask:v1      1        11"),
        "{text}"
    );
    let json = Sdk::run(&["schema", "list", "--json"], &[])
        .ok()
        .json_lines();
    let types: Vec<&str> = json.iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "AgentMessage",
            "AgentTask",
            "TaskResult",
            "EventMessage",
            "Document",
            "DocumentChunk",
            "StatusUpdate",
            "ErrorInfo"
        ]
    );
    let status = &json[6];
    assert_eq!(status["version"], 2);
    assert_eq!(status["schema"], "urn:sdk:schema:sdk.v1.StatusUpdate:v2");
}

#[test]
fn schema_show_lists_fields_enums_nested_types_and_an_example() {
    let text = Sdk::run(&["schema", "show", "agenttask"], &[]).ok().out();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "sdk.v1.AgentTask  version 1  urn:sdk:schema:sdk.v1.AgentTask:v1"
    );
    assert_eq!(lines[1], "NUMBER  JSON NAME       PROTO NAME       TYPE");
    assert_eq!(lines[2], "1       taskId          task_id          string");
    assert!(
        text.contains("11      metadata        metadata         map<string, string>"),
        "{text}"
    );
    assert!(
        text.contains("8       deadline        deadline         google.protobuf.Timestamp"),
        "{text}"
    );
    assert!(text.contains("example (JSON):\n{"), "{text}");

    let shown = Sdk::run(&["schema", "show", "sdk.v1.TaskResult", "--json"], &[])
        .ok()
        .json_lines()
        .remove(0);
    assert_eq!(shown["schema"], "urn:sdk:schema:sdk.v1.TaskResult:v1");
    assert!(shown["enums"]["sdk.v1.TaskStatus"]["TASK_STATUS_FAILED"].is_number());
    assert!(shown["messages"]["sdk.v1.TokenUsage"].is_array());
    assert!(shown["messages"]["sdk.v1.ErrorInfo"].is_array());
    assert_eq!(
        shown["example"]["taskId"].as_str().map(str::is_empty),
        Some(false)
    );

    let status = Sdk::run(&["schema", "show", "StatusUpdate", "--json"], &[])
        .ok()
        .json_lines()
        .remove(0);
    assert_eq!(status["reserved_numbers"], serde_json::json!([4]));
    assert_eq!(
        status["reserved_names"],
        serde_json::json!(["progress_percent"])
    );
}

/// A copy of the repository's `proto/` (with its snapshot) in a temporary directory.
fn proto_copy() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&workspace_root().join("proto"), &dir.path().join("proto"));
    dir
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join("proto/sdk/v1").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from:?} is not in {file}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn schema_check_passes_on_the_repository_and_catches_breaking_edits() {
    // From the repository root, with the defaults.
    let ok = Sdk::run_in(&workspace_root(), &["schema", "check"])
        .ok()
        .out();
    assert!(
        ok.starts_with("ok: no change in proto since proto/snapshot.json ("),
        "{ok}"
    );
    let builtin = Sdk::run_in(&workspace_root(), &["schema", "check", "--builtin"])
        .ok()
        .out();
    assert!(
        builtin.starts_with("ok: no change in the schemas compiled into sdk since"),
        "{builtin}"
    );

    // A new field is compatible.
    let added = proto_copy();
    edit(
        added.path(),
        "task.proto",
        "  map<string, string> metadata = 11;\n}",
        "  map<string, string> metadata = 11;\n  string language = 12;\n}",
    );
    let out = Sdk::run_in(added.path(), &["schema", "check"]).ok().out();
    assert!(
        out.starts_with("ok: proto changed compatibly since proto/snapshot.json"),
        "{out}"
    );
    assert!(out.contains("UPDATE_PROTO_SNAPSHOT=1"), "{out}");

    // A removed field and a renumbered enum value are not.
    let broken = proto_copy();
    edit(broken.path(), "task.proto", "  string agent_id = 2;\n", "");
    edit(
        broken.path(),
        "task.proto",
        "TASK_STATUS_CANCELLED = 5;",
        "TASK_STATUS_CANCELLED = 50;",
    );
    let proto = broken.path().join("proto");
    let failed = Sdk::run(
        &["schema", "check", "--proto-dir", proto.to_str().unwrap()],
        &[],
    );
    let line = failed.one_line_error(1);
    assert!(
        line.starts_with("error: 2 breaking change(s) in "),
        "{line}"
    );
    assert!(
        line.contains("give each broken type a new version"),
        "{line}"
    );
    let report = failed.out();
    assert!(
        report.contains("breaking: breaking change in sdk.v1.AgentTask (still at version 1): field agent_id (2) was removed."),
        "{report}"
    );
    assert!(
        report.contains("breaking: enum value sdk.v1.TaskStatus.TASK_STATUS_CANCELLED was renumbered from 5 to 50"),
        "{report}"
    );

    // A file that does not compile, and a directory that is not there.
    let bad = proto_copy();
    edit(
        bad.path(),
        "task.proto",
        "string task_id = 1;",
        "strin task_id = 1;",
    );
    let line = Sdk::run_in(bad.path(), &["schema", "check"]).one_line_error(1);
    assert!(line.starts_with("error: proto does not compile:"), "{line}");
    let empty = tempfile::tempdir().unwrap();
    let line = Sdk::run_in(empty.path(), &["schema", "check"]).one_line_error(2);
    assert!(
        line.starts_with("error: cannot read the snapshot proto/snapshot.json"),
        "{line}"
    );
}
