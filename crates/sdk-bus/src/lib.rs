#![doc = include_str!("../README.md")]

mod bus;
mod config;
mod envelope;
mod error;
mod events;
mod headers;
mod jetstream;
mod memory;
mod nats;
mod subject;

pub use bus::{
    Bus, ConnectionStatus, Delivery, ServerDetails, Service, ServiceFailure, Subscription, codes,
};
pub use config::{Auth, BusConfig, BusConfigBuilder, ConfigError, ReconnectPolicy, Secret, Tls};
pub use envelope::{
    Envelope, EnvelopeBuilder, EnvelopeError, SPEC_VERSION, Source, names, new_id, new_time,
    percent_decode, percent_encode,
};
pub use error::BusError;
pub use events::{BusEvent, BusStats};
pub use headers::{HeaderError, Headers};
pub use jetstream::{
    ConsumerSpec, DeadLetter, Discard, Idempotency, JetStream, JsDelivery, Outcome, PendingAck,
    PublishAck, PublishOptions, StateChange, StateStore, Storage, StreamSpec, Worker, dlq_headers,
};
pub use subject::{Family, Subject, SubjectError, SubjectPattern, TenantId, TenantScope, Token};
