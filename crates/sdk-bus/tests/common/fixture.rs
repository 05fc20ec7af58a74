//! The conformance fixture: the same case against a real nats-server and against the
//! in-process transport.

use sdk_bus::{Bus, BusConfig, BusConfigBuilder};
use sdk_testkit::NatsServer;

use super::nats_bus;

/// A way to get connected buses; the server (if any) lives as long as the fixture.
pub struct Fixture {
    server: Option<NatsServer>,
    memory: Option<Bus>,
}

impl Fixture {
    pub fn nats() -> Fixture {
        Fixture {
            server: Some(NatsServer::builder().max_payload(64 * 1024).start()),
            memory: None,
        }
    }
    pub fn memory() -> Fixture {
        Fixture {
            server: None,
            memory: None,
        }
    }
    /// A new connection; on the in-process transport all buses of a fixture share
    /// one router, as connections share one server.
    pub async fn bus(&mut self, tweak: impl FnOnce(BusConfigBuilder) -> BusConfigBuilder) -> Bus {
        match &self.server {
            Some(server) => nats_bus(&server.url(), tweak).await,
            None => {
                let config = tweak(BusConfig::builder().max_payload(64 * 1024))
                    .build()
                    .unwrap();
                match &self.memory {
                    Some(first) => first.in_process_peer(config).unwrap(),
                    None => {
                        let bus = Bus::in_process(config);
                        self.memory = Some(bus.clone());
                        bus
                    }
                }
            }
        }
    }
}
