#![doc = include_str!("../README.md")]

pub use sdk_bus;
pub use sdk_codec;
pub use sdk_telemetry;

mod context;
mod core;
mod describe;
#[cfg(doctest)]
mod doc_tests;
mod durable;
mod messenger;
mod subscribe;
mod traced;

pub use context::MessageContext;
pub use messenger::Messenger;
pub use subscribe::{Received, TypedSubscription, Undecodable};
pub use traced::{Extract, Inject};

use sdk_bus::{
    BusError, JetStreamPublishError, PublishError, RequestError, ServiceCode, ServiceFailure,
    SubscribeError,
};
use sdk_codec::CodecError;

/// A failure of either side of the wiring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Encoding or decoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl Error {
    /// A short, low-cardinality name of the failure, for `error.type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Codec(_) => "codec",
            Error::Bus(b) => b.kind(),
        }
    }
}

macro_rules! bus_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::Bus(e.into())
            }
        }
    )*};
}
bus_error_from!(
    PublishError,
    RequestError,
    SubscribeError,
    JetStreamPublishError
);

/// A codec or bus failure inside a handler answers 500 (a request that cannot be
/// decoded is answered 400 before the handler runs), or passes on the code another
/// service answered with.
impl From<Error> for ServiceFailure {
    fn from(e: Error) -> ServiceFailure {
        match e {
            Error::Bus(b) => ServiceFailure::from(b),
            Error::Codec(c) => ServiceFailure::new(ServiceCode::HandlerFailed, c.to_string()),
        }
    }
}
