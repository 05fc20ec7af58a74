#![doc = include_str!("../README.md")]
// The invariant behind every `expect` here: this crate is a dev-dependency only. It
// sets up real servers for tests (temp dirs, certificates, spawned processes, ports),
// and a set-up step that fails must stop the test at once with the step named in its
// `expect`, rather than return an error every test would unwrap anyway. No product
// crate depends on it (`cargo deny` and the workspace layout, decision 0001).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod collector;
mod dev;
mod jwt;
mod nats;
mod tls;
mod tools;

pub use collector::{Collector, LogRecord, Metric, MetricPoint, Received, Span};
pub use dev::DevStack;
pub use jwt::JwtAuth;
pub use nats::{NatsCluster, NatsServer, NatsServerBuilder, NatsUser, Permissions};
pub use tls::TlsMaterial;
pub use tools::{Tool, free_port, locate, wait_until};
