//! `sdk streams apply|ls` and `sdk dlq list|show|replay` against a JetStream server,
//! with dead letters made by a real SDK consumer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use sdk_bus::{Bus, BusConfig, ConsumerSpec, Outcome};
use sdk_testkit::NatsServer;
use serde_json::Value;

fn task(id: &str) -> String {
    format!(r#"{{"taskId":"{id}","agentId":"researcher","taskType":"find_papers"}}"#)
}

#[test]
fn streams_apply_is_idempotent_and_ls_shows_their_state() {
    let server = NatsServer::builder().jetstream().start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let line = Sdk::run(&["streams", "ls"], &env).one_line_error(1);
    assert!(
        line.contains("no SDK streams; create them with `sdk streams apply`"),
        "{line}"
    );
    let first = Sdk::run(&["streams", "apply"], &env).ok().out();
    let second = Sdk::run(&["streams", "apply"], &env).ok().out();
    for (name, subjects) in [
        ("SDK_EVENTS", "sdk.*.events.>"),
        ("SDK_WORKFLOWS", "sdk.*.workflow.>"),
        ("SDK_DLQ", "sdk.*.dlq.>"),
    ] {
        let row = |text: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name} missing: {text}"))
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(row(&first), [name, subjects, "created"]);
        assert_eq!(row(&second), [name, subjects, "unchanged"]);
    }
    Sdk::run(
        &[
            "pub",
            "sdk.acme.events.task.created",
            &task("t-1"),
            "--type",
            "AgentTask",
            "--jetstream",
        ],
        &env,
    )
    .ok();
    let streams = Sdk::run(&["streams", "ls", "--json"], &env)
        .ok()
        .json_lines();
    let names: Vec<&str> = streams
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["SDK_DLQ", "SDK_EVENTS", "SDK_WORKFLOWS"]);
    let events = &streams[1];
    assert_eq!(events["messages"], 1);
    assert_eq!(events["last_sequence"], 1);
    assert!(events["bytes"].as_u64().unwrap() > 0);
    assert_eq!(events["subjects"][0], "sdk.*.events.>");
    assert_eq!(events["max_age_seconds"], 7 * 24 * 3600);
    let text = Sdk::run(&["streams", "ls"], &env).ok().out();
    assert!(
        text.starts_with("STREAM         SUBJECTS          MESSAGES"),
        "{text}"
    );

    // Per-tenant streams cannot overlap the shared ones: the server refuses, and the
    // line says why.
    let line = Sdk::run(&["streams", "apply", "--tenant", "acme"], &env).one_line_error(1);
    assert!(line.contains("overlap"), "{line}");
}

#[test]
fn per_tenant_streams_are_applied_for_each_tenant() {
    let server = NatsServer::builder().jetstream().start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let text = Sdk::run(
        &["streams", "apply", "--tenant", "acme", "--tenant", "beta"],
        &env,
    )
    .ok()
    .out();
    for expected in [
        "SDK_EVENTS_acme     sdk.acme.events.>    created",
        "SDK_DLQ_beta        sdk.beta.dlq.>       created",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    let names: Vec<String> = Sdk::run(&["streams", "ls", "--json"], &env)
        .ok()
        .json_lines()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    let line = Sdk::run(&["streams", "apply", "--tenant", "Acme"], &env).one_line_error(2);
    assert!(
        line.starts_with("error: invalid tenant id \"Acme\""),
        "{line}"
    );
}

/// Publishes `tasks` (tenant, id, poison?) and runs a consumer that rejects the poison
/// ones (ids starting with `bad-`); returns once their dead letters are stored.
async fn dead_letters(url: &str, env: &[(&str, &str)], tasks: &[(&str, &str, bool)]) {
    Sdk::run(&["streams", "apply"], env).ok();
    for (tenant, id, _) in tasks {
        Sdk::run(
            &[
                "pub",
                &format!("sdk.{tenant}.events.task.created"),
                &task(id),
                "--type",
                "AgentTask",
                "--format",
                "msgpack",
                "--jetstream",
            ],
            env,
        )
        .ok();
    }
    let poisoned = tasks.iter().filter(|t| t.2).count() as u64;
    let bus = Bus::connect(BusConfig::builder().servers(url).build().unwrap())
        .await
        .unwrap();
    let js = bus.jetstream().unwrap();
    let worker = js
        .consume(
            ConsumerSpec::new("SDK_EVENTS", "cli-test")
                .ack_wait(Duration::from_secs(5))
                .max_deliver(1),
            |d| {
                // The poison ones are those whose id starts with "bad-".
                let bad = d.envelope.payload().windows(4).any(|w| w == b"bad-");
                async move {
                    if bad {
                        Outcome::Reject("poison task in payload".into())
                    } else {
                        Outcome::Ack
                    }
                }
            },
        )
        .await
        .unwrap();
    let stored = tokio::time::timeout(WAIT, async {
        while bus.stats().dead_lettered < poisoned {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(stored.is_ok(), "dead letters: {:?}", bus.stats());
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_lists_filters_shows_and_replays_real_dead_letters() {
    let server = NatsServer::builder().jetstream().start();
    let url = server.url();
    let env = url_env(&url);
    let env = env_refs(&env);
    dead_letters(
        &url,
        &env,
        &[
            ("acme", "ok-1", false),
            ("acme", "bad-1", true),
            ("beta", "bad-2", true),
            ("acme", "bad-3", true),
        ],
    )
    .await;

    let all = Sdk::run(&["dlq", "list", "--json"], &env).ok().json_lines();
    assert_eq!(all.len(), 3, "{all:#?}");
    for letter in &all {
        assert_eq!(letter["reason"], "poison task in payload");
        assert_eq!(letter["consumer"], "cli-test");
        assert_eq!(letter["deliveries"], 1);
    }
    let acme = Sdk::run(&["dlq", "list", "--tenant", "acme", "--json"], &env)
        .ok()
        .json_lines();
    let subjects: Vec<&str> = acme
        .iter()
        .map(|l| l["original_subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["sdk.acme.events.task.created"; 2]);
    assert!(acme.iter().all(|l| l["tenant"] == "acme"));
    let none = Sdk::run(&["dlq", "list", "--reason", "timeout"], &env)
        .ok()
        .out();
    assert_eq!(none, "no dead letters in SDK_DLQ match");
    let matching = Sdk::run(&["dlq", "list", "--reason", "POISON", "--json"], &env)
        .ok()
        .json_lines();
    assert_eq!(matching.len(), 3);

    // Pages: one at a time, with the way on.
    let first = Sdk::run(&["dlq", "list", "--limit", "1"], &env).ok().out();
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 3, "{first}");
    assert!(lines[0].starts_with("SEQ  SUBJECT"), "{first}");
    let second_seq = all[1]["sequence"].as_u64().unwrap();
    assert_eq!(lines[2], format!("more: sdk dlq list --from {second_seq}"));
    let rest = Sdk::run(
        &["dlq", "list", "--from", &second_seq.to_string(), "--json"],
        &env,
    )
    .ok()
    .json_lines();
    assert_eq!(rest.len(), 2);

    // One of acme's, decoded, with its facts (the consumer runs handlers in parallel,
    // so which poison task came first is not fixed).
    let seq = acme[0]["sequence"].as_u64().unwrap().to_string();
    let shown = Sdk::run(&["dlq", "show", &seq, "--json"], &env)
        .ok()
        .json_lines()
        .remove(0);
    assert_eq!(shown["reason"], "poison task in payload");
    assert_eq!(shown["subject"], "sdk.acme.events.task.created");
    assert_eq!(
        shown["dead_letter_subject"],
        "sdk.acme.dlq.events.task.created"
    );
    assert_eq!(shown["content_type"], "application/msgpack");
    let id = shown["data"]["taskId"].as_str().unwrap().to_owned();
    assert!(id == "bad-1" || id == "bad-3", "{shown}");
    assert_eq!(shown["headers"]["sdk-dlq-consumer"], "cli-test");
    let text = Sdk::run(&["dlq", "show", &seq], &env).ok().out();
    assert!(
        text.starts_with(&format!(
            "dead letter {seq} in sdk.acme.dlq.events.task.created: poison task in payload"
        )),
        "{text}"
    );
    let line = Sdk::run(&["dlq", "show", "999"], &env).one_line_error(1);
    assert_eq!(
        line,
        "error: no dead letter with sequence 999 in SDK_DLQ; list them with `sdk dlq list`"
    );

    // Replayed: back on its subject, stored again, gone from the dead letters.
    let replayed = Sdk::run(&["dlq", "replay", &seq], &env).ok().out();
    assert!(
        replayed.starts_with(&format!(
            "replayed dead letter {seq} to sdk.acme.events.task.created: stored in SDK_EVENTS at sequence 5;"
        )),
        "{replayed}"
    );
    let left = Sdk::run(&["dlq", "list", "--json"], &env).ok().json_lines();
    assert_eq!(left.len(), 2);
    assert!(
        left.iter()
            .all(|l| l["sequence"].as_u64() != seq.parse().ok())
    );
    let events: Vec<Value> = Sdk::run(&["streams", "ls", "--json"], &env)
        .ok()
        .json_lines();
    let sdk_events = events.iter().find(|s| s["name"] == "SDK_EVENTS").unwrap();
    assert_eq!(sdk_events["last_sequence"], 5);

    let line = Sdk::run(&["dlq", "list", "--stream", "NOPE"], &env).one_line_error(1);
    assert!(line.contains("stream not found"), "{line}");
    assert!(line.contains("sdk streams apply"), "{line}");
}

#[test]
fn jetstream_commands_say_when_the_server_has_no_jetstream() {
    let server = NatsServer::start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    for args in [
        vec!["streams", "ls"],
        vec!["dlq", "list"],
        vec!["streams", "apply"],
    ] {
        let line = Sdk::run(&args, &env).one_line_error(1);
        assert!(line.contains("JetStream"), "{args:?}: {line}");
    }
}
