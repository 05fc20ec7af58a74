//! Discovery with the NATS micro protocol: a named service answers `$SRV.PING`,
//! `$SRV.INFO` and `$SRV.STATS`, read here with async-nats' own micro types (a client
//! we did not write), and a tenant's service is discovered only by that tenant.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::service::{Info, PingResponse, Stats};
use bytes::Bytes;
use common::*;
use futures::StreamExt as _;
use sdk_bus::{Auth, Bus, BusConfig, MicroService, Secret, SubjectPattern};
use sdk_testkit::{NatsServer, NatsUser, Permissions};

/// The answers to `subject`, replied to `inbox`: waits (up to `WAIT`) for `expect`
/// of them, then a short while for any more. Discovery has no count of answers, so
/// the extra ones (and the absence of any, for `expect == 0`) are judged by a window.
async fn gather(
    client: &async_nats::Client,
    subject: &str,
    inbox: &str,
    expect: usize,
) -> Vec<Bytes> {
    let mut sub = client.subscribe(inbox.to_owned()).await.unwrap();
    client
        .publish_with_reply(subject.to_owned(), inbox.to_owned(), Bytes::new())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let mut out = Vec::new();
    loop {
        let wait = if out.len() < expect {
            WAIT
        } else {
            Duration::from_millis(500)
        };
        let Ok(Some(m)) = tokio::time::timeout(wait, sub.next()).await else {
            break;
        };
        // A status message (503: no responders) is the server's, not an answer.
        if m.status.is_none() {
            out.push(m.payload);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_service_answers_ping_info_and_stats_by_name_and_id() {
    let server = NatsServer::start();
    let bus = nats_bus(&server.url(), |b| b).await;
    let service = bus
        .serve(
            &SubjectPattern::all_tenants("rag", "query").unwrap(),
            ServeOptions::new().group("rag").service(
                MicroService::new("rag", "1.2.0")
                    .description("answers RAG queries")
                    .metadata("schema", "urn:sdk:schema:sdk.v1.AgentTask:v1"),
            ),
            |d| async move {
                if body(&d) == "fail" {
                    return Err(sdk_bus::ServiceFailure::new(
                        ServiceCode::NotFound,
                        "no index",
                    ));
                }
                Ok(envelope(d.subject.tenant().as_str(), "ok"))
            },
        )
        .await
        .unwrap();
    let client = nats_bus(&server.url(), |b| b).await;
    let subject = tenant("acme").scope().component("rag", "query").unwrap();
    for q in ["a", "b", "fail"] {
        client.request(&subject, envelope("acme", q)).await.ok();
    }
    let raw = async_nats::connect(server.url()).await.unwrap();

    let pings = gather(&raw, "$SRV.PING", "_INBOX.x.1", 1).await;
    assert_eq!(pings.len(), 1);
    let ping: PingResponse = serde_json::from_slice(&pings[0]).unwrap();
    assert_eq!(ping.kind, "io.nats.micro.v1.ping_response");
    assert_eq!(
        (ping.name.as_str(), ping.version.as_str()),
        ("rag", "1.2.0")
    );
    assert_eq!(
        ping.metadata["schema"],
        "urn:sdk:schema:sdk.v1.AgentTask:v1"
    );

    let infos = gather(&raw, "$SRV.INFO.rag", "_INBOX.x.2", 1).await;
    let info: Info = serde_json::from_slice(&infos[0]).unwrap();
    assert_eq!(info.kind, "io.nats.micro.v1.info_response");
    assert_eq!(info.description, "answers RAG queries");
    assert_eq!(info.endpoints[0].subject, "sdk.*.rag.query");
    assert_eq!(info.endpoints[0].queue_group, "rag");

    let by_id = format!("$SRV.STATS.rag.{}", ping.id);
    let stats = gather(&raw, &by_id, "_INBOX.x.3", 1).await;
    let stats: Stats = serde_json::from_slice(&stats[0]).unwrap();
    assert_eq!(stats.kind, "io.nats.micro.v1.stats_response");
    let endpoint = &stats.endpoints[0];
    assert_eq!((endpoint.requests, endpoint.errors), (3, 1));
    assert!(endpoint.processing_time > Duration::ZERO);
    let last = endpoint.last_error.clone().unwrap();
    // A shared service answers `$SRV` to every tenant: its last error names the code,
    // and keeps one tenant's failure text from the others.
    assert_eq!(
        (last.code, last.status.as_str()),
        (404, "withheld: the service serves every tenant")
    );

    // Another name, or another id, gets no answer.
    let other = gather(&raw, "$SRV.PING.other", "_INBOX.x.4", 0).await;
    assert!(other.is_empty(), "{other:?}");
    assert!(
        gather(&raw, "$SRV.PING.rag.not-its-id", "_INBOX.x.5", 0)
            .await
            .is_empty()
    );
    // An answer never goes outside an inbox.
    assert!(
        gather(&raw, "$SRV.PING", "sdk.beta.events.x", 0)
            .await
            .is_empty()
    );
    tokio::time::timeout(WAIT, async {
        while bus.stats().refused_replies < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the refused reply was counted");
    service.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_service_is_discovered_by_that_tenant_only() {
    let user = |t: &str| NatsUser::password(t, &format!("{t}-pw"), Some(Permissions::tenant(t)));
    let server = NatsServer::builder()
        .user(user("alpha"))
        .user(user("beta"))
        .start();
    let connect = |t: &'static str| {
        let url = server.url();
        async move {
            let config = BusConfig::builder()
                .servers(&url)
                .auth(Auth::UserPassword {
                    user: t.into(),
                    password: Secret::new(format!("{t}-pw")),
                })
                .inbox_tenant(&tenant(t))
                .build()
                .unwrap();
            Bus::connect(config).await.unwrap()
        }
    };
    let mut services = Vec::new();
    for t in ["alpha", "beta"] {
        let bus: Bus = connect(t).await;
        services.push(
            bus.serve(
                &tenant(t).scope().pattern(&["tools", "run"]).unwrap(),
                ServeOptions::new().service(MicroService::new(&format!("{t}-tools"), "1.0.0")),
                |d| async move {
                    if body(&d) == "fail" {
                        return Err(sdk_bus::ServiceFailure::new(
                            ServiceCode::NotFound,
                            "no such tool",
                        ));
                    }
                    Ok(envelope(d.subject.tenant().as_str(), "ok"))
                },
            )
            .await
            .unwrap(),
        );
    }
    // A tenant's own service keeps its failure text: only that tenant can ask.
    let alpha = connect("alpha").await;
    let run = tenant("alpha").scope().component("tools", "run").unwrap();
    assert!(
        alpha
            .request(&run, envelope("alpha", "fail"))
            .await
            .is_err()
    );
    let raw = async_nats::ConnectOptions::new()
        .user_and_password("alpha".into(), "alpha-pw".into())
        .connect(server.url())
        .await
        .unwrap();
    let stats = gather(&raw, "$SRV.STATS.alpha-tools", "_INBOX.alpha.stats", 1).await;
    let stats: Stats = serde_json::from_slice(&stats[0]).unwrap();
    let last = stats.endpoints[0].last_error.clone().unwrap();
    assert_eq!((last.code, last.status.as_str()), (404, "no such tool"));
    for (t, expected) in [("alpha", "alpha-tools"), ("beta", "beta-tools")] {
        let raw = async_nats::ConnectOptions::new()
            .user_and_password(t.into(), format!("{t}-pw"))
            .connect(server.url())
            .await
            .unwrap();
        let answers = gather(&raw, "$SRV.PING", &format!("_INBOX.{t}.discover"), 1).await;
        let names: BTreeSet<String> = answers
            .iter()
            .map(|a| serde_json::from_slice::<PingResponse>(a).unwrap().name)
            .collect();
        assert_eq!(
            names,
            BTreeSet::from([expected.to_owned()]),
            "{t} sees only its own"
        );
        assert!(answers.iter().all(
            |a| serde_json::from_slice::<PingResponse>(a).unwrap().metadata["sdk.tenant"] == t
        ));
    }
    for s in &services {
        s.abort();
    }
}
