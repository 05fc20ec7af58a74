//! `sdk bench` against a real JetStream server: every row is measured, raw is the
//! baseline of its test, and bad input is one line. No timing is asserted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sdk_testkit::NatsServer;
use serde_json::Value;

#[test]
fn bench_measures_every_layer_next_to_raw() {
    let server = NatsServer::builder().jetstream().start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let run = Sdk::run(
        &[
            "bench",
            "--messages",
            "300",
            "--requests",
            "30",
            "--jetstream",
            "--json",
        ],
        &env,
    )
    .ok();
    let rows: Vec<Value> = serde_json::from_str(run.out().trim()).unwrap();
    let names: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["test"].as_str().unwrap().to_owned(),
                r["layer"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("pub/sub", "raw"),
        ("pub/sub", "envelope"),
        ("pub/sub", "codec"),
        ("pub/sub", "tracing"),
        ("request-reply", "raw"),
        ("request-reply", "envelope"),
        ("request-reply", "codec"),
        ("request-reply", "tracing"),
        ("jetstream publish", "raw"),
        ("jetstream publish", "envelope"),
    ]
    .iter()
    .map(|(t, l)| ((*t).to_owned(), (*l).to_owned()))
    .collect();
    assert_eq!(names, expected);
    for r in &rows {
        assert!(r["per_second"].as_f64().unwrap() > 0.0, "{r}");
        if r["layer"] == "raw" {
            assert_eq!(r["vs_raw"].as_f64(), Some(1.0), "{r}");
        }
        if r["test"] == "request-reply" {
            let (p50, p99) = (r["p50_us"].as_f64().unwrap(), r["p99_us"].as_f64().unwrap());
            assert!(p50 <= p99, "{r}");
        }
    }
}

#[test]
fn bench_prints_a_table_and_refuses_bad_input_in_one_line() {
    let server = NatsServer::start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let table = Sdk::run(&["bench", "--messages", "50", "--requests", "5"], &env)
        .ok()
        .out();
    assert!(table.starts_with("test"), "{table}");
    assert!(table.contains("vs raw"), "{table}");
    let line = Sdk::run(&["bench", "--messages", "0"], &env).one_line_error(2);
    assert!(
        line.contains("--messages and --requests must be at least 1"),
        "{line}"
    );
    let line = Sdk::run(&["--in-process", "bench"], &[]).one_line_error(2);
    assert!(
        line.contains("does not run on the in-process transport"),
        "{line}"
    );
}
