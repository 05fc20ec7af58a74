//! Helpers shared by the bus tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::time::Duration;

pub mod fixture;

/// Runs each case against a real nats-server (`nats::<case>`) and in-process
/// (`in_process::<case>`).
#[allow(unused_macros)]
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod nats {
            use super::*;
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { super::$case(common::fixture::Fixture::nats()).await } )*
        }
        mod in_process {
            use super::*;
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { super::$case(common::fixture::Fixture::memory()).await } )*
        }
    };
}

use bytes::Bytes;
#[allow(unused_imports)]
pub use sdk_bus::jetstream::dead_letter::{DeadLetter, DeadLetterQuery};
use sdk_bus::{Bus, BusConfig, BusEvent, Delivery, Envelope, EventSource, Subscription, TenantId};
#[allow(unused_imports)]
pub use sdk_bus::{Operation, ServeOptions, ServiceCode};

pub const WAIT: Duration = Duration::from_secs(10);

pub fn tenant(t: &str) -> TenantId {
    TenantId::new(t).unwrap()
}

/// The text body of an envelope made by [`envelope`].
pub fn body_of(envelope: &Envelope) -> String {
    String::from_utf8(envelope.payload().to_vec()).unwrap()
}

/// An envelope from `/<tenant>/test/t-1` with `body` as its payload.
pub fn envelope(tenant_id: &str, body: &str) -> Envelope {
    let source = EventSource::new(&tenant(tenant_id), "test", "t-1").unwrap();
    Envelope::builder(&source, "sdk.test.message")
        .content_type("text/plain")
        .payload(Bytes::from(body.to_owned()))
        .build()
        .unwrap()
}

pub async fn next(sub: &mut Subscription) -> Delivery {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("no message within the wait")
        .expect("subscription ended")
        .expect("subscription failed")
}

pub fn body(d: &Delivery) -> String {
    String::from_utf8(d.envelope.payload().to_vec()).unwrap()
}

/// Waits until `bus` has begun to drain.
pub async fn until_draining(bus: &Bus) {
    tokio::time::timeout(WAIT, async {
        while !bus.is_draining() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the drain began");
}

/// Waits for the first event that `pick` accepts.
pub async fn wait_event<T>(
    events: &mut tokio::sync::broadcast::Receiver<BusEvent>,
    mut pick: impl FnMut(&BusEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(e) => {
                    if let Some(v) = pick(&e) {
                        return v;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .expect("event did not arrive")
}

pub async fn nats_bus(
    url: &str,
    tweak: impl FnOnce(sdk_bus::BusConfigBuilder) -> sdk_bus::BusConfigBuilder,
) -> Bus {
    let config = tweak(BusConfig::builder().servers(url)).build().unwrap();
    Bus::connect(config).await.unwrap()
}

/// An error and its sources, one per line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str("\n  caused by: ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
