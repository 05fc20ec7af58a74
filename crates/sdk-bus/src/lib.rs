#![doc = include_str!("../README.md")]

mod bus;
mod config;
mod envelope;
mod error;
mod events;
mod headers;
pub mod jetstream;
mod micro;
mod service;
mod settle;
mod subject;
mod subscription;
mod transport;
mod worker_pool;

pub use bus::Bus;
pub use config::{Auth, BusConfig, BusConfigBuilder, ConfigError, ReconnectPolicy, Secret, Tls};
pub use envelope::{
    Envelope, EnvelopeBuilder, EnvelopeError, EventSource, SPEC_VERSION, new_id, new_time,
};
pub use error::{
    BusError, Cause, JetStreamPublishError, PublishError, RequestError, SubscribeError, TooLarge,
};
pub use events::{AckOperation, BusEvent, BusStats, Operation};
pub use headers::{HeaderError, Headers};
pub use jetstream::JetStream;
pub use jetstream::consumer::{ConsumerSpec, JetStreamDelivery, Outcome, Settlement, Worker};
pub use jetstream::publish::PublishOptions;
pub use jetstream::stream::StreamSpec;
pub use micro::MicroService;
pub use service::{ServeOptions, Service, ServiceCode, ServiceFailure};
pub use subject::{Family, Subject, SubjectError, SubjectPattern, TenantId, TenantScope, Token};
pub use subscription::{Delivery, Subscription};
pub use transport::{ConnectionStatus, ServerDetails};

pub(crate) use envelope::names;
