#![doc = include_str!("../README.md")]

pub use sdk_bus;
pub use sdk_codec;
pub use sdk_telemetry;

use sdk_bus::{Bus, BusError, Envelope, Source, Subject};
use sdk_codec::{Codec, CodecError, Payload, PayloadMeta};

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

/// Typed messaging: the codec's output goes into CloudEvents envelopes on the bus,
/// and back.
#[derive(Debug, Clone)]
pub struct Messenger {
    bus: Bus,
    codec: Codec,
    source: Source,
}

impl Messenger {
    /// Sends as `source` over `bus`, encoding with `codec`.
    pub fn new(bus: Bus, codec: Codec, source: Source) -> Messenger {
        Messenger { bus, codec, source }
    }

    /// The bus.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Encodes `value` into an envelope of `event_type`, with content type, content
    /// encoding and schema in the `ce-*` headers.
    ///
    /// # Errors
    /// [`Error::Codec`], or [`Error::Bus`] for an invalid header.
    pub fn envelope<T: Payload>(&self, event_type: &str, value: &T) -> Result<Envelope, Error> {
        let encoded = self.codec.encode(value)?;
        let mut builder = Envelope::builder(&self.source, event_type)
            .content_type(encoded.content_type)
            .payload(encoded.bytes);
        if let Some(encoding) = encoded.content_encoding {
            builder = builder.content_encoding(encoding);
        }
        if let Some(schema) = &encoded.schema {
            builder = builder.schema(&schema.to_string());
        }
        Ok(builder.build().map_err(BusError::from)?)
    }

    /// Decodes an envelope's payload as `T`, using its content type, encoding and schema.
    ///
    /// # Errors
    /// [`Error::Codec`], including a missing content type.
    pub fn decode<T: Payload>(&self, envelope: &Envelope) -> Result<T, Error> {
        let content_type = envelope.data_content_type().unwrap_or_default();
        let encoding = envelope.content_encoding();
        let schema = envelope.data_schema();
        let meta = PayloadMeta::new(&content_type)
            .with_encoding(encoding.as_deref())
            .with_schema(schema.as_deref());
        Ok(self.codec.decode(envelope.payload().clone(), &meta)?)
    }

    /// Encodes and publishes `value` on `subject`.
    ///
    /// # Errors
    /// As [`Messenger::envelope`] and [`Bus::publish`].
    pub async fn publish<T: Payload>(
        &self,
        subject: &Subject,
        event_type: &str,
        value: &T,
    ) -> Result<(), Error> {
        let envelope = self.envelope(event_type, value)?;
        Ok(self.bus.publish(subject, envelope).await?)
    }

    /// Sends `value` as a request and decodes the reply as `R`.
    ///
    /// # Errors
    /// As [`Messenger::envelope`], [`Bus::request`] and [`Messenger::decode`].
    pub async fn request<T: Payload, R: Payload>(
        &self,
        subject: &Subject,
        event_type: &str,
        value: &T,
    ) -> Result<R, Error> {
        let envelope = self.envelope(event_type, value)?;
        let reply = self.bus.request(subject, envelope).await?;
        self.decode(&reply)
    }
}
