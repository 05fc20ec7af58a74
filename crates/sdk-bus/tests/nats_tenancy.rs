//! Tenant isolation, enforced by the server: one user per tenant with permissions
//! `sdk.<t>.>` plus `_INBOX.<t>.>`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use sdk_bus::{Auth, Bus, BusConfig, BusEvent, Secret, SubjectPattern};
use sdk_testkit::{NatsServer, NatsUser, Permissions};

fn server() -> NatsServer {
    let tenant_user =
        |t: &str| NatsUser::password(t, &format!("{t}-pw"), Some(Permissions::tenant(t)));
    NatsServer::builder()
        .user(tenant_user("alpha"))
        .user(tenant_user("beta"))
        // A shared RAG service that serves every tenant.
        .user(NatsUser::password(
            "rag",
            "rag-pw",
            Some(Permissions::shared_service("rag", &["sdk.*.rag.query"])),
        ))
        .start()
}

async fn connect(server: &NatsServer, user: &str, inbox_tenant: bool) -> Bus {
    let mut b = BusConfig::builder()
        .servers(&server.url())
        .auth(Auth::UserPassword {
            user: user.into(),
            password: Secret::new(format!("{user}-pw")),
        })
        .request_timeout(Duration::from_secs(2));
    if inbox_tenant {
        b = b.inbox_tenant(&tenant(user));
    }
    Bus::connect(b.build().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_publish_into_another() {
    let server = server();
    let alpha = connect(&server, "alpha", true).await;
    let beta = connect(&server, "beta", true).await;
    let mut beta_events = beta
        .subscribe(&tenant("beta").scope().pattern(&["events", ">"]).unwrap())
        .await
        .unwrap();
    beta.flush().await.unwrap();
    let mut alpha_events = alpha.events();

    let target = tenant("beta").scope().event("task.completed").unwrap();
    alpha
        .publish_and_flush(&target, envelope("beta", "forged"))
        .await
        .unwrap();
    let (operation, subject) = wait_event(&mut alpha_events, |e| match e {
        BusEvent::PermissionViolation { operation, subject } => Some((*operation, subject.clone())),
        _ => None,
    })
    .await;
    assert_eq!(
        (operation, subject.as_str()),
        (Operation::Publish, "sdk.beta.events.task.completed")
    );
    assert_eq!(alpha.stats().permission_violations, 1);

    // Beta never sees the forged message: the next one it gets is its own.
    beta.publish_and_flush(&target, envelope("beta", "genuine"))
        .await
        .unwrap();
    assert_eq!(body(&next(&mut beta_events).await), "genuine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_subscribe_to_another() {
    let server = server();
    let alpha = connect(&server, "alpha", true).await;
    let mut sub = alpha
        .subscribe(&SubjectPattern::new("sdk.beta.>").unwrap())
        .await
        .unwrap();
    let err = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, sdk_bus::SubscribeError::PermissionDenied { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "permission denied: this connection may not subscribe to \"sdk.beta.>\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_into_another_tenant_fails_clearly() {
    let server = server();
    let alpha = connect(&server, "alpha", true).await;
    let err = alpha
        .request(
            &tenant("beta").scope().component("rag", "query").unwrap(),
            envelope("beta", "q"),
        )
        .await
        .unwrap_err();
    // Refused by the server: the publish into beta, or the subscription to beta's
    // reply inbox, whichever the server reports first.
    match &err {
        sdk_bus::RequestError::PermissionDenied { subject, .. } => assert!(
            subject.starts_with("sdk.beta.") || subject.starts_with("_INBOX.beta."),
            "{err}"
        ),
        other => panic!("expected a permission refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_works_under_tenant_permissions_with_and_without_an_inbox_setting() {
    let server = server();
    // The shared service uses its own inbox for readiness probes (`_INBOX.rag.>`).
    let rag = connect(&server, "rag", true).await;
    let service = rag
        .serve(
            &SubjectPattern::all_tenants("rag", "query").unwrap(),
            ServeOptions::new().group("rag").concurrency(8),
            |d| async move {
                Ok(envelope(
                    d.subject.tenant().as_str(),
                    &format!("results for {}", d.subject.tenant()),
                ))
            },
        )
        .await
        .unwrap();
    rag.flush().await.unwrap();
    for t in ["alpha", "beta"] {
        let bus = connect(&server, t, true).await;
        let reply = bus
            .request(
                &tenant(t).scope().component("rag", "query").unwrap(),
                envelope(t, "q"),
            )
            .await
            .unwrap();
        assert_eq!(
            reply.payload().as_ref(),
            format!("results for {t}").as_bytes()
        );
    }
    // Without any inbox setting the reply still comes back to the subject tenant's
    // inbox, `_INBOX.alpha.…`, which the tenant template allows.
    let plain = connect(&server, "alpha", false).await;
    let reply = plain
        .request(
            &tenant("alpha").scope().component("rag", "query").unwrap(),
            envelope("alpha", "q"),
        )
        .await
        .unwrap();
    assert_eq!(reply.payload().as_ref(), b"results for alpha");
    // The service's own probes stayed inside its permissions, through the drain too.
    rag.drain().await.unwrap();
    assert_eq!(rag.stats().permission_violations, 0);
    service.wait().await.unwrap();
}

/// `subscribe_many` claims what `subscribe` claims, for all of them at once: when it
/// returns, the server holds every subscription. A message published from another
/// connection right after it returns reaches each tenant's subscription, and only
/// that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_many_holds_every_subscription_once_it_returns() {
    let server = NatsServer::start();
    let url = server.url();
    let config = || BusConfig::builder().servers(&url).build().unwrap();
    let listener = Bus::connect(config()).await.unwrap();
    let sender = Bus::connect(config()).await.unwrap();
    let names: Vec<String> = (0..200).map(|i| format!("t{i}")).collect();
    let patterns: Vec<SubjectPattern> = names
        .iter()
        .map(|t| tenant(t).scope().pattern(&["events", ">"]).unwrap())
        .collect();
    let mut subs = listener.subscribe_many(&patterns).await.unwrap();
    assert_eq!(subs.len(), names.len());
    for t in &names {
        let subject = tenant(t).scope().event("task.completed").unwrap();
        sender.publish(&subject, envelope(t, t)).await.unwrap();
    }
    sender.flush().await.unwrap();
    for (t, sub) in names.iter().zip(subs.iter_mut()) {
        assert_eq!(&body(&next(sub).await), t, "{t}'s subscription");
    }
    // Nothing else arrived on any of them: the next message each one sees is the
    // second one sent to its own tenant.
    for t in &names {
        let subject = tenant(t).scope().event("task.completed").unwrap();
        sender
            .publish(&subject, envelope(t, &format!("again {t}")))
            .await
            .unwrap();
    }
    sender.flush().await.unwrap();
    for (t, sub) in names.iter().zip(subs.iter_mut()) {
        assert_eq!(body(&next(sub).await), format!("again {t}"));
    }
}

/// One refused pattern among many is reported on its own subscription; the others
/// work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_many_reports_a_refused_pattern_on_that_subscription_only() {
    let server = server();
    let alpha = connect(&server, "alpha", true).await;
    let own = tenant("alpha").scope().pattern(&["events", ">"]).unwrap();
    let foreign = SubjectPattern::new("sdk.beta.>").unwrap();
    let mut subs = alpha.subscribe_many(&[own.clone(), foreign]).await.unwrap();
    let err = tokio::time::timeout(WAIT, subs[1].next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, sdk_bus::SubscribeError::PermissionDenied { ref subject } if subject == "sdk.beta.>"),
        "{err:?}"
    );
    let subject = tenant("alpha").scope().event("task.completed").unwrap();
    alpha
        .publish_and_flush(&subject, envelope("alpha", "mine"))
        .await
        .unwrap();
    assert_eq!(body(&next(&mut subs[0]).await), "mine");
}
