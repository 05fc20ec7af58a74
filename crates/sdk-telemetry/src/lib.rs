#![doc = include_str!("../README.md")]
mod setup;

pub use setup::{Protocol, Telemetry, TelemetryConfig, TelemetryConfigBuilder, TelemetryError};
