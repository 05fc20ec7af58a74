//! Attacks against tenant isolation and secrets, run against a real nats-server.
//! Each was seen to succeed before its fix (see docs/nats.md, "What the tests prove").

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::StreamExt as _;
use sdk_bus::jetstream::stream::StreamSpec;
use sdk_bus::{
    Auth, Bus, BusConfig, BusEvent, Envelope, EventSource, ReconnectPolicy, Secret, SubjectPattern,
};
use sdk_testkit::{NatsServer, NatsUser, Permissions};

fn tenant_user(t: &str) -> NatsUser {
    NatsUser::password(t, &format!("{t}-pw"), Some(Permissions::tenant(t)))
}

async fn raw(server: &NatsServer, user: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .user_and_password(user.into(), format!("{user}-pw"))
        .connect(server.url())
        .await
        .unwrap()
}

/// A round trip through the server on `client`'s connection: once it returns, the
/// server has processed everything the client sent before it.
async fn settled(client: &async_nats::Client, inbox_tenant: &str) {
    let probe = format!("_INBOX.{inbox_tenant}.probe-{}", sdk_bus::new_id());
    let mut sub = client.subscribe(probe.clone()).await.unwrap();
    client.publish(probe, Bytes::new()).await.unwrap();
    tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
}

/// Asserts that the next message on `sub` is the marker `who` publishes now: nothing
/// the attacker sent before reached it.
async fn nothing_before_marker(sub: &mut async_nats::Subscriber, who: &async_nats::Client) {
    who.publish("sdk.beta.events.marker", "marker".into())
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&first.payload),
        "marker",
        "beta received something else first: {:?}",
        first.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_forge_a_reply_into_another_tenant() {
    let server = NatsServer::builder()
        .user(tenant_user("alpha"))
        .user(tenant_user("beta"))
        .start();
    let beta = raw(&server, "beta").await;
    let mut beta_sub = beta.subscribe("sdk.beta.events.>").await.unwrap();
    settled(&beta, "beta").await;
    // Alpha asks itself, naming beta's subject as the reply...
    let asker = raw(&server, "alpha").await;
    let answerer = raw(&server, "alpha").await;
    let mut requests = answerer.subscribe("sdk.alpha.x").await.unwrap();
    settled(&answerer, "alpha").await;
    asker
        .publish_with_reply("sdk.alpha.x", "sdk.beta.events.x", Bytes::new())
        .await
        .unwrap();
    let request = tokio::time::timeout(WAIT, requests.next())
        .await
        .unwrap()
        .unwrap();
    // ...and answers it with a forged beta envelope.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("ce-tenantid", "beta");
    answerer
        .publish_with_headers(request.reply.unwrap(), headers, "forged".into())
        .await
        .unwrap();
    settled(&answerer, "alpha").await;
    nothing_before_marker(&mut beta_sub, &beta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_service_cannot_be_used_to_answer_into_another_tenant() {
    let server = NatsServer::builder()
        .user(tenant_user("alpha"))
        .user(tenant_user("beta"))
        .user(NatsUser::password(
            "rag",
            "rag-pw",
            Some(Permissions::shared_service("rag", &["sdk.*.rag.query"])),
        ))
        .start();
    let beta = raw(&server, "beta").await;
    let mut beta_sub = beta.subscribe("sdk.beta.events.>").await.unwrap();
    settled(&beta, "beta").await;

    // The SDK service refuses to answer outside the request tenant's inbox.
    let rag = Bus::connect(
        BusConfig::builder()
            .servers(&server.url())
            .auth(Auth::UserPassword {
                user: "rag".into(),
                password: Secret::new("rag-pw"),
            })
            .inbox_tenant(&tenant("rag"))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let mut rag_events = rag.events();
    let service = rag
        .serve(
            &SubjectPattern::all_tenants("rag", "query").unwrap(),
            ServeOptions::new(),
            |d| async move { Ok(envelope(d.subject.tenant().as_str(), "answer")) },
        )
        .await
        .unwrap();
    let alpha = raw(&server, "alpha").await;
    let request = envelope("alpha", "q");
    let (headers, payload) = request.into_parts();
    let mut h = async_nats::HeaderMap::new();
    for (k, v) in headers.iter() {
        h.insert(k, v);
    }
    alpha
        .publish_with_reply_and_headers("sdk.alpha.rag.query", "sdk.beta.events.x", h, payload)
        .await
        .unwrap();
    let refused = wait_event(&mut rag_events, |e| match e {
        BusEvent::ReplyRefused { reply, .. } => Some(reply.clone()),
        _ => None,
    })
    .await;
    assert_eq!(refused, "sdk.beta.events.x");
    assert_eq!(rag.stats().refused_replies, 1);

    // And the server refuses it too, for a client that does not use the SDK.
    let rogue = async_nats::ConnectOptions::new()
        .user_and_password("rag".into(), "rag-pw".into())
        .connect(server.url())
        .await
        .unwrap();
    let mut requests = rogue.subscribe("sdk.*.rag.query").await.unwrap();
    // A flush does not wait for the server: a round trip proves it has the SUB.
    settled(&rogue, "rag").await;
    alpha
        .publish_with_reply("sdk.alpha.rag.query", "sdk.beta.events.y", Bytes::new())
        .await
        .unwrap();
    alpha.flush().await.unwrap();
    let m = tokio::time::timeout(WAIT, requests.next())
        .await
        .unwrap()
        .unwrap();
    rogue
        .publish(m.reply.unwrap(), "forged".into())
        .await
        .unwrap();
    rogue.flush().await.unwrap();
    // The shared-service user may publish only into tenant inboxes: its probe goes to
    // one, and once it is back the forged publish was handled (and dropped) first.
    let probe = format!("_INBOX.alpha.{}", sdk_bus::new_id());
    let mut alpha_probe = alpha.subscribe(probe.clone()).await.unwrap();
    settled(&alpha, "alpha").await;
    rogue.publish(probe, Bytes::new()).await.unwrap();
    rogue.flush().await.unwrap();
    tokio::time::timeout(WAIT, alpha_probe.next())
        .await
        .unwrap()
        .unwrap();
    nothing_before_marker(&mut beta_sub, &beta).await;
    service.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_answers_only_into_the_request_tenants_inbox() {
    let server = NatsServer::builder().jetstream().start();
    let bus = nats_bus(&server.url(), |b| b).await;
    let js = bus.jetstream().unwrap();
    js.ensure_stream(&StreamSpec::events()).await.unwrap();
    let service = bus
        .serve(
            &SubjectPattern::all_tenants("rag", "query").unwrap(),
            ServeOptions::new(),
            |_d| async move { Ok(envelope("alpha", "answer")) },
        )
        .await
        .unwrap();
    let attacker = async_nats::connect(server.url()).await.unwrap();
    let mut beta_sub = attacker.subscribe("sdk.beta.>").await.unwrap();
    attacker.flush().await.unwrap();
    // A malformed request (400) and a good one (a reply), both naming beta's subject.
    attacker
        .publish_with_reply("sdk.alpha.rag.query", "sdk.beta.events.x", "garbage".into())
        .await
        .unwrap();
    let (headers, payload) = envelope("alpha", "q").into_parts();
    let mut h = async_nats::HeaderMap::new();
    for (k, v) in headers.iter() {
        h.insert(k, v);
    }
    attacker
        .publish_with_reply_and_headers("sdk.alpha.rag.query", "sdk.beta.events.y", h, payload)
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        while bus.stats().refused_replies < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both replies were refused");
    nothing_before_marker(&mut beta_sub, &attacker).await;
    // Beta's stream holds only the marker.
    let raw_js = async_nats::jetstream::new(attacker.clone());
    let mut stream = raw_js.get_stream("SDK_EVENTS").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    service.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_whose_ids_differ_in_punctuation_get_separate_streams() {
    let server = NatsServer::builder().jetstream().start();
    let bus = nats_bus(&server.url(), |b| b).await;
    let js = bus.jetstream().unwrap();
    for t in ["acme-eu", "acme_eu"] {
        js.ensure_stream(&StreamSpec::events().for_tenant(&tenant(t)))
            .await
            .unwrap();
    }
    for t in ["acme-eu", "acme_eu"] {
        let ack = js
            .publish(&tenant(t).scope().event("x").unwrap(), envelope(t, t))
            .await
            .unwrap();
        assert_eq!(ack.stream, format!("SDK_EVENTS_{t}"));
        assert_eq!(ack.sequence, 1, "{t}'s stream holds only its own message");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_with_the_same_message_id_are_both_stored() {
    let server = NatsServer::builder().jetstream().start();
    let bus = nats_bus(&server.url(), |b| b).await;
    let js = bus.jetstream().unwrap();
    js.ensure_stream(&StreamSpec::events()).await.unwrap();
    let with_id = |t: &str| {
        let source = EventSource::new(&tenant(t), "c", "i").unwrap();
        Envelope::builder(&source, "x")
            .id("same-id")
            .build()
            .unwrap()
    };
    let a = js
        .publish(
            &tenant("alpha").scope().event("x").unwrap(),
            with_id("alpha"),
        )
        .await
        .unwrap();
    let b = js
        .publish(&tenant("beta").scope().event("x").unwrap(), with_id("beta"))
        .await
        .unwrap();
    assert!(!a.duplicate && !b.duplicate, "{a:?} {b:?}");
    assert_ne!(a.sequence, b.sequence);
    // Within one tenant the id still de-duplicates.
    let again = js
        .publish(&tenant("beta").scope().event("x").unwrap(), with_id("beta"))
        .await
        .unwrap();
    assert!(again.duplicate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_never_collide() {
    let server = NatsServer::builder().jetstream().start();
    let bus = nats_bus(&server.url(), |b| b).await;
    let seen = bus
        .jetstream()
        .unwrap()
        .idempotency("IDEM", Duration::from_secs(60))
        .await
        .unwrap();
    let alpha = tenant("alpha");
    for id in ["a/b", "a b", "a_b", "a.b", "a=2Fb"] {
        assert!(seen.first_time(&alpha, id).await.unwrap(), "{id} was taken");
    }
    assert!(!seen.first_time(&alpha, "a/b").await.unwrap());
    assert!(seen.first_time(&tenant("beta"), "a/b").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_errors_or_debug_output() {
    let unreachable = format!("127.0.0.1:{}", sdk_testkit::free_port());
    for (url, secret) in [
        (format!("nats://user:pa55word@{unreachable}"), "pa55word"),
        (format!("nats://s3cr3t-token@{unreachable}"), "s3cr3t-token"),
    ] {
        let config = BusConfig::builder()
            .servers(&url)
            .connect_timeout(Duration::from_millis(300))
            .reconnect(ReconnectPolicy::default().max_attempts(1))
            .build()
            .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(
            shown.contains(&format!("nats://***@{unreachable}")),
            "{shown}"
        );
        let err = Bus::connect(config).await.unwrap_err();
        let text = format!("{}\n{err:?}", error_chain(&err));
        assert!(!text.contains(secret), "{text}");
    }
    // A bad URL with credentials: the config error names it without them.
    let err = BusConfig::builder()
        .servers("nats://user:pa55word@127.0.0.1:0")
        .build()
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("pa55word"), "{text}");
    assert!(text.contains("invalid port"), "{text}");
    // Secrets given as settings print as ***.
    let config = BusConfig::builder()
        .servers(&format!("nats://{unreachable}"))
        .auth(Auth::Token(Secret::new("tok-123")))
        .build()
        .unwrap();
    assert!(!format!("{config:?}").contains("tok-123"));
}
