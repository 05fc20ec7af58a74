//! The bus's own counters become metrics: a reconnect, a slow consumer and a refused
//! message on a real nats-server, read back from a real collector.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sdk_integration::Messenger;
use sdk_integration::sdk_bus::{
    Bus, BusConfig, BusEvent, Envelope, EventSource, ReconnectPolicy, SubjectPattern, TenantId,
};
use sdk_integration::sdk_codec::Codec;
use sdk_testkit::{Collector, NatsServer};

mod common;

use common::{Signals, telemetry};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_slow_consumers_and_refusals_become_metrics() {
    let mut server = NatsServer::start();
    let collector = Collector::start();
    let telemetry = telemetry("bus-metrics", &collector, Signals::Metrics);
    let config = BusConfig::builder()
        .servers(&server.url())
        .subscription_capacity(4)
        .reconnect(
            ReconnectPolicy::default()
                .delays(Duration::from_millis(20), Duration::from_millis(200)),
        )
        .build()
        .unwrap();
    let bus = Bus::connect(config).await.unwrap();
    let acme = TenantId::new("acme").unwrap();
    let _m = Messenger::new(
        bus.clone(),
        Codec::default(),
        EventSource::new(&acme, "a", "1").unwrap(),
    )
    .with_telemetry(&telemetry);

    // A reconnect: the server dies, the bus notices, the server comes back.
    let mut events = bus.events();
    server.kill();
    tokio::time::timeout(WAIT, async {
        while !matches!(events.recv().await, Ok(BusEvent::Disconnected)) {}
    })
    .await
    .expect("the bus noticed the disconnect");
    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    tokio::time::timeout(WAIT, async {
        while bus.stats().reconnects == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the bus reconnected");

    // A slow consumer: a subscription of 4 that nobody reads, and a flood.
    let subject = acme.scope().event("tick").unwrap();
    let mut slow = bus
        .subscribe(&SubjectPattern::from(&subject))
        .await
        .unwrap();
    let flood = Bus::connect(BusConfig::builder().servers(&server.url()).build().unwrap())
        .await
        .unwrap();
    // A refused message: another tenant's envelope on acme's subject.
    let beta = EventSource::new(&TenantId::new("beta").unwrap(), "a", "3").unwrap();
    flood
        .publish(&subject, Envelope::builder(&beta, "t").build().unwrap())
        .await
        .unwrap();
    flood.flush().await.unwrap();
    tokio::time::timeout(WAIT, async {
        while bus.stats().tenant_mismatches == 0 {
            // The refusal happens while the subscription is read.
            let _ = tokio::time::timeout(Duration::from_millis(50), slow.next()).await;
        }
    })
    .await
    .expect("the refused message was counted");
    // Then the flood, which nobody reads.
    let source = EventSource::new(&acme, "a", "2").unwrap();
    for _ in 0..200 {
        flood
            .publish(&subject, Envelope::builder(&source, "t").build().unwrap())
            .await
            .unwrap();
    }
    flood.flush().await.unwrap();
    tokio::time::timeout(WAIT, async {
        while bus.stats().slow_consumers == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the slow consumer was reported");
    for name in [
        "sdk.messaging.reconnects",
        "sdk.messaging.slow_consumer.drops",
        "sdk.messaging.rejected",
    ] {
        collector.wait_for(WAIT, name, |r| {
            r.last_metric(name)
                .filter(|m| {
                    m.points.iter().any(|p| {
                        p.fields
                            .get("Value")
                            .and_then(|v| v.parse::<u64>().ok())
                            .is_some_and(|v| v >= 1)
                    })
                })
                .cloned()
        });
    }
    // Every counter of the wire contract is exported, whether or not it moved.
    let all = [
        "sdk.messaging.reconnects",
        "sdk.messaging.slow_consumer.drops",
        "sdk.messaging.dead_letters",
        "sdk.messaging.dead_letter.failures",
        "sdk.messaging.permission_violations",
        "sdk.messaging.settle.failures",
        "sdk.messaging.ack.failures",
        "sdk.messaging.replies.refused",
        "sdk.messaging.rejected",
        "sdk.messaging.header.failures",
        "sdk.messaging.handler.timeouts",
        "sdk.messaging.overloaded",
    ];
    collector.wait_for(WAIT, "every bus counter", |r| {
        all.iter().all(|n| r.last_metric(n).is_some()).then_some(())
    });
    telemetry.shutdown(Duration::from_secs(10)).unwrap();
    drop(server);
}
