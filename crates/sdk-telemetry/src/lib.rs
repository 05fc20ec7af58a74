//! One-call OpenTelemetry setup for the agent SDK.
//!
//! ```
//! use sdk_telemetry::{Telemetry, TelemetryConfig};
//! let telemetry = Telemetry::init(TelemetryConfig::builder("doc-service").build())?;
//! let _tracer = telemetry.tracer("agent");
//! telemetry.shutdown()?;
//! # Ok::<(), sdk_telemetry::TelemetryError>(())
//! ```

mod setup;

pub use setup::{Protocol, Telemetry, TelemetryConfig, TelemetryConfigBuilder, TelemetryError};
