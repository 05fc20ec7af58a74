//! The NATS connection.

use bytes::Bytes;
use futures::StreamExt;

use crate::{BusError, Subject};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct BusConfig {
    url: String,
}

impl BusConfig {
    /// Settings for the server(s) at `url`.
    pub fn new(url: &str) -> BusConfig {
        BusConfig {
            url: url.to_owned(),
        }
    }
}

/// A message as it arrived.
#[derive(Debug, Clone)]
pub struct Message {
    /// The subject it arrived on.
    pub subject: String,
    /// Its headers, as `(name, value)` pairs in arrival order.
    pub headers: Vec<(String, String)>,
    /// Its payload.
    pub payload: Bytes,
}

/// A live subscription.
#[derive(Debug)]
pub struct Subscription {
    inner: async_nats::Subscriber,
}

impl Subscription {
    /// The next message; `None` once the subscription has ended.
    pub async fn next(&mut self) -> Option<Message> {
        let msg = self.inner.next().await?;
        let headers = msg
            .headers
            .iter()
            .flat_map(|h| h.iter())
            .flat_map(|(name, values)| {
                values
                    .iter()
                    .map(move |v| (name.to_string(), v.as_str().to_owned()))
            })
            .collect();
        Some(Message {
            subject: msg.subject.to_string(),
            headers,
            payload: msg.payload,
        })
    }
}

/// A connection to NATS.
#[derive(Debug, Clone)]
pub struct Bus {
    client: async_nats::Client,
}

impl Bus {
    /// Connects.
    ///
    /// # Errors
    /// [`BusError::Connect`] when no server answers.
    pub async fn connect(config: BusConfig) -> Result<Bus, BusError> {
        let client = async_nats::connect(config.url.as_str())
            .await
            .map_err(|source| BusError::Connect {
                url: config.url.clone(),
                source,
            })?;
        Ok(Bus { client })
    }

    /// Publishes `payload` on `subject` and flushes.
    ///
    /// # Errors
    /// [`BusError::Publish`] or [`BusError::Flush`].
    pub async fn publish(&self, subject: &Subject, payload: Bytes) -> Result<(), BusError> {
        self.client
            .publish(subject.as_str().to_owned(), payload)
            .await
            .map_err(|source| BusError::Publish {
                subject: subject.to_string(),
                source,
            })?;
        self.client.flush().await.map_err(BusError::Flush)
    }

    /// Subscribes to `subject`.
    ///
    /// # Errors
    /// [`BusError::Subscribe`].
    pub async fn subscribe(&self, subject: &Subject) -> Result<Subscription, BusError> {
        let inner = self
            .client
            .subscribe(subject.as_str().to_owned())
            .await
            .map_err(|source| BusError::Subscribe {
                subject: subject.to_string(),
                source,
            })?;
        Ok(Subscription { inner })
    }
}
