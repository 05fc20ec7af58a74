//! `sdk micro ls|info|stats` against services registered with async-nats' own micro
//! service API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use async_nats::service::ServiceExt as _;
use common::*;
use futures::StreamExt as _;
use sdk_testkit::NatsServer;

/// Starts `name` with one endpoint `subject` that answers `answer`, or fails when the
/// request is `fail`.
async fn service(
    client: &async_nats::Client,
    name: &str,
    version: &str,
    subject: &str,
) -> async_nats::service::Service {
    let service = client
        .service_builder()
        .description(format!("{name} for the CLI tests"))
        .metadata(HashMap::from([("team".to_owned(), "platform".to_owned())]))
        .start(name, version)
        .await
        .unwrap();
    let mut endpoint = service.endpoint(subject).await.unwrap();
    tokio::spawn(async move {
        while let Some(request) = endpoint.next().await {
            let answer = if request.message.payload.as_ref() == b"fail" {
                Err(async_nats::service::error::Error {
                    status: "out of stock".into(),
                    code: 409,
                })
            } else {
                Ok("42".into())
            };
            request.respond(answer).await.ok();
        }
    });
    service
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn micro_lists_describes_and_counts_registered_services() {
    let server = NatsServer::start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    // None yet: the server says there are no responders, at once.
    let none = Sdk::run(&["micro", "ls", "--wait", "30s"], &env).ok().out();
    assert_eq!(none, "no micro service answered $SRV.PING within 30s");

    let client = async_nats::connect(server.url()).await.unwrap();
    let _inventory = service(&client, "inventory", "1.2.3", "inventory.count").await;
    let _billing = service(&client, "billing", "0.9.0", "billing.charge").await;
    client.request("inventory.count", "".into()).await.unwrap();
    client.request("inventory.count", "".into()).await.unwrap();
    let failed = client
        .request("inventory.count", "fail".into())
        .await
        .unwrap();
    assert!(failed.headers.is_some());
    client.flush().await.unwrap();

    let listed = Sdk::run(&["micro", "ls", "--expect", "2", "--wait", "30s"], &env)
        .ok()
        .out();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(lines[0].starts_with("NAME       VERSION  ID"), "{listed}");
    assert!(lines[1].starts_with("billing    0.9.0    "), "{listed}");
    assert!(lines[2].starts_with("inventory  1.2.3    "), "{listed}");
    assert!(lines[2].ends_with("team=platform"), "{listed}");

    let info = Sdk::run(
        &[
            "micro",
            "info",
            "inventory",
            "--expect",
            "1",
            "--wait",
            "30s",
            "--json",
        ],
        &env,
    )
    .ok()
    .json_lines();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0]["name"], "inventory");
    assert_eq!(info[0]["description"], "inventory for the CLI tests");
    assert_eq!(info[0]["endpoints"][0]["subject"], "inventory.count");
    let id = info[0]["id"].as_str().unwrap().to_owned();

    let stats = Sdk::run(
        &[
            "micro",
            "stats",
            "inventory",
            &id,
            "--expect",
            "1",
            "--wait",
            "30s",
            "--json",
        ],
        &env,
    )
    .ok()
    .json_lines();
    assert_eq!(stats.len(), 1);
    let endpoint = &stats[0]["endpoints"][0];
    assert_eq!(endpoint["num_requests"], 3);
    assert_eq!(endpoint["num_errors"], 1);
    assert!(
        endpoint["last_error"].to_string().contains("out of stock"),
        "{endpoint}"
    );

    let text = Sdk::run(&["micro", "stats", "--expect", "2", "--wait", "30s"], &env)
        .ok()
        .out();
    assert!(text.contains("inventory 1.2.3  id "), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("inventory.count"))
        .unwrap_or_else(|| panic!("no endpoint row in {text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..4], ["inventory.count", "3", "1"], "{text}");
    assert!(row.ends_with("409:out of stock"), "{text}");
    let text = Sdk::run(
        &["micro", "info", "billing", "--expect", "1", "--wait", "30s"],
        &env,
    )
    .ok()
    .out();
    assert!(text.starts_with("billing 0.9.0  id "), "{text}");
    assert!(text.contains("  billing for the CLI tests"), "{text}");
    assert!(text.contains("billing.charge"), "{text}");

    let line = Sdk::run(&["micro", "info", "inventory", "some id"], &env).one_line_error(2);
    assert!(
        line.starts_with("error: invalid service name or id"),
        "{line}"
    );
}

#[test]
fn serve_echo_is_discoverable_as_sdk_echo() {
    let server = NatsServer::start();
    let env = url_env(&server.url());
    let env = env_refs(&env);
    let echo = Sdk::start(&["serve", "echo", "--type", "AgentTask"], &env);
    echo.wait_stderr("serving echo");
    let task = r#"{"taskId":"t-1","agentId":"researcher","taskType":"find_papers"}"#;
    for _ in 0..2 {
        Sdk::run(
            &["req", "sdk.acme.echo.call", task, "--type", "AgentTask"],
            &env,
        )
        .ok();
    }
    let wrong = r#"{"messageId":"m","senderId":"s","receiverId":"r"}"#;
    Sdk::run(
        &["req", "sdk.acme.echo.call", wrong, "--type", "AgentMessage"],
        &env,
    )
    .one_line_error(1);

    let ping = Sdk::run(
        &[
            "micro", "ls", "sdk-echo", "--expect", "1", "--wait", "30s", "--json",
        ],
        &env,
    )
    .ok()
    .json_lines();
    assert_eq!(ping.len(), 1, "{ping:?}");
    assert_eq!(ping[0]["name"], "sdk-echo");
    assert_eq!(ping[0]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        ping[0]["metadata"]["schema"],
        "urn:sdk:schema:sdk.v1.AgentTask:v1"
    );
    let stats = Sdk::run(
        &[
            "micro", "stats", "sdk-echo", "--expect", "1", "--wait", "30s", "--json",
        ],
        &env,
    )
    .ok()
    .json_lines();
    let endpoint = &stats[0]["endpoints"][0];
    assert_eq!(endpoint["subject"], "sdk.*.echo.call");
    assert_eq!(endpoint["num_requests"], 3, "{endpoint}");
    assert_eq!(endpoint["num_errors"], 1, "{endpoint}");
    // The echo serves every tenant: the failure's code, not its text.
    assert_eq!(
        endpoint["last_error"], "400:withheld: the service serves every tenant",
        "{endpoint}"
    );
}

#[test]
fn a_tenant_discovers_its_own_echo_service() {
    use sdk_testkit::{NatsUser, Permissions};
    let server = NatsServer::builder()
        .user(NatsUser::password(
            "acme",
            "acme-pw",
            Some(Permissions::tenant("acme")),
        ))
        .user(NatsUser::password(
            "beta",
            "beta-pw",
            Some(Permissions::tenant("beta")),
        ))
        .start();
    let url = server.url();
    let as_user = |user: &'static str, password: &'static str| {
        [
            ("NATS_URL", url.clone()),
            ("NATS_USER", user.to_owned()),
            ("NATS_PASSWORD", password.to_owned()),
        ]
    };
    let acme = as_user("acme", "acme-pw");
    let acme = env_refs(&acme);
    let beta = as_user("beta", "beta-pw");
    let beta = env_refs(&beta);
    let echo = Sdk::start(&["serve", "echo", "--subject", "sdk.acme.echo.call"], &acme);
    echo.wait_stderr("serving echo");
    let found = Sdk::run(
        &[
            "micro", "ls", "--tenant", "acme", "--expect", "1", "--wait", "30s", "--json",
        ],
        &acme,
    )
    .ok()
    .json_lines();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["name"], "sdk-echo");
    assert_eq!(found[0]["metadata"]["sdk.tenant"], "acme");
    // Another tenant asks too, and gets no answer from acme's service.
    let none = Sdk::run(&["micro", "ls", "--tenant", "beta", "--wait", "1s"], &beta)
        .ok()
        .out();
    assert_eq!(none, "no micro service answered $SRV.PING within 1s");
}
