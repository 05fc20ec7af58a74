//! Test support for the SDK workspace: real servers on loopback ports.
//!
//! Tests never mock NATS or the OpenTelemetry collector. This crate starts the real
//! programs (`nats-server` and `rotel-agent`) on free `127.0.0.1` ports, waits until
//! they are ready by polling, and stops them when the handle is dropped.
//!
//! The binaries are found through an environment variable, then the project's
//! `.tools/bin` folder (filled by `scripts/install-tools`), then `PATH`.
//!
//! ```no_run
//! let server = sdk_testkit::NatsServer::builder().jetstream().start();
//! println!("nats at {}", server.url());
//! let collector = sdk_testkit::Collector::start();
//! println!("otlp grpc at {}", collector.grpc_endpoint());
//! ```
//!
//! This is test code: failures to start a server panic with a message that says what
//! to do, because a test cannot go on without its server.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod collector;
mod nats;
mod tls;
mod tools;

pub use collector::{Collector, LogRecord, Metric, MetricPoint, Received, Span};
pub use nats::{NatsCluster, NatsServer, NatsServerBuilder, NatsUser, Permissions};
pub use tls::TlsMaterial;
pub use tools::{Tool, free_port, locate, wait_until};
