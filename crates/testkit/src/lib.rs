#![doc = include_str!("../README.md")]
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
