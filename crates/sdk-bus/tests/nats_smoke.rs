//! Smoke test: one message through a real nats-server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use sdk_bus::{Bus, BusConfig, Subject, TenantId};
use sdk_testkit::NatsServer;

#[tokio::test]
async fn one_message_goes_through_a_real_server() {
    let server = NatsServer::start();
    let bus = Bus::connect(BusConfig::new(&server.url())).await.unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let inbox = Subject::agent_inbox(&tenant, "planner").unwrap();

    let mut sub = bus.subscribe(&inbox).await.unwrap();
    bus.publish(&inbox, Bytes::from_static(b"hello"))
        .await
        .unwrap();

    let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("no message within 5 s")
        .expect("subscription ended");
    assert_eq!(msg.subject, "sdk.acme.agent.planner.inbox");
    assert_eq!(msg.payload, Bytes::from_static(b"hello"));
}
