#![doc = include_str!("../README.md")]
pub use sdk_bus as bus;
pub use sdk_codec as codec;
pub use sdk_telemetry as telemetry;
