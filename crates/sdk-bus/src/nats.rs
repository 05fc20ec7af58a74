//! The NATS transport, on async-nats.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::bus::RawMessage;
use crate::config::Auth;
use crate::events::{BusEvent, Shared, permission_violation};
use crate::{BusConfig, BusError, ConfigError, Headers};

pub(crate) async fn connect(
    config: &BusConfig,
    shared: Arc<Shared>,
) -> Result<async_nats::Client, BusError> {
    if config.servers.is_empty() {
        return Err(ConfigError {
            field: "servers".into(),
            reason: "no NATS server is configured (set NATS_URL, or use Bus::in_process)".into(),
        }
        .into());
    }
    let servers_text = config.servers.join(",");
    let mut addrs = Vec::with_capacity(config.servers.len());
    for url in &config.servers {
        let addr: async_nats::ServerAddr = url.parse().map_err(|e| ConfigError {
            field: "servers".into(),
            reason: format!("{url:?}: {e}"),
        })?;
        addrs.push(addr);
    }
    let policy = config.reconnect;
    let mut options = async_nats::ConnectOptions::new()
        .ping_interval(config.ping_interval)
        .connection_timeout(config.connect_timeout)
        .subscription_capacity(config.subscription_capacity)
        // Our own reconnect-buffer check trips first; this only bounds the channel.
        .client_capacity(config.reconnect_buffer.saturating_add(1024))
        .request_timeout(Some(config.request_timeout))
        .max_reconnects(policy.max_attempts)
        .reconnect_delay_callback(move |attempt| policy.delay(attempt))
        .event_callback(event_handler(shared));
    if let Some(name) = &config.name {
        options = options.name(name);
    }
    if let Some(tenant) = &config.inbox_tenant {
        options = options.custom_inbox_prefix(tenant.inbox_prefix());
    }
    options = match &config.auth {
        Auth::None => options,
        Auth::Token(t) => options.token(t.expose().to_owned()),
        Auth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.expose().to_owned())
        }
        Auth::NKey(seed) => options.nkey(seed.expose().to_owned()),
        Auth::CredsFile(path) => options
            .credentials_file(path)
            .await
            .map_err(|e| ConfigError {
                field: "auth.creds_file".into(),
                reason: format!("cannot read {}: {e}", path.display()),
            })?,
    };
    if config.tls.required {
        options = options.require_tls(true);
    }
    if let Some(ca) = &config.tls.ca {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &config.tls.client_cert {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    options.connect(addrs).await.map_err(|e| BusError::Connect {
        servers: servers_text,
        reason: e.to_string(),
    })
}

fn event_handler(
    shared: Arc<Shared>,
) -> impl Fn(async_nats::Event) -> std::future::Ready<()> + Send + Sync + 'static {
    let was_connected = Arc::new(AtomicBool::new(false));
    move |event| {
        let mapped = match event {
            async_nats::Event::Connected => {
                shared
                    .counters
                    .buffered_while_down
                    .store(0, Ordering::Relaxed);
                if was_connected.swap(true, Ordering::Relaxed) {
                    Shared::bump(&shared.counters.reconnects);
                    BusEvent::Reconnected
                } else {
                    BusEvent::Connected
                }
            }
            async_nats::Event::Disconnected => BusEvent::Disconnected,
            async_nats::Event::LameDuckMode => BusEvent::LameDuck,
            async_nats::Event::SlowConsumer(sid) => {
                Shared::bump(&shared.counters.slow_consumers);
                BusEvent::SlowConsumer {
                    subscription: sid.to_string(),
                }
            }
            async_nats::Event::ServerError(e) => {
                let text = e.to_string();
                match permission_violation(&text) {
                    Some((operation, subject)) => {
                        Shared::bump(&shared.counters.permission_violations);
                        BusEvent::PermissionViolation { operation, subject }
                    }
                    None => BusEvent::ServerError(text),
                }
            }
            async_nats::Event::ClientError(e) => BusEvent::ClientError(e.to_string()),
            async_nats::Event::Closed => BusEvent::Closed,
            async_nats::Event::Draining => return std::future::ready(()),
        };
        shared.emit(mapped);
        std::future::ready(())
    }
}

pub(crate) async fn publish(
    client: &async_nats::Client,
    subject: &str,
    reply: Option<String>,
    headers: Headers,
    payload: Bytes,
) -> Result<(), BusError> {
    let fail = |e: async_nats::PublishError| BusError::Publish {
        subject: subject.to_owned(),
        reason: e.to_string(),
    };
    let subject_owned = subject.to_owned();
    match (reply, headers.is_empty()) {
        (None, true) => client.publish(subject_owned, payload).await.map_err(fail),
        (None, false) => client
            .publish_with_headers(subject_owned, headers.into_nats(), payload)
            .await
            .map_err(fail),
        (Some(r), true) => client
            .publish_with_reply(subject_owned, r, payload)
            .await
            .map_err(fail),
        (Some(r), false) => client
            .publish_with_reply_and_headers(subject_owned, r, headers.into_nats(), payload)
            .await
            .map_err(fail),
    }
}

pub(crate) async fn request(
    client: &async_nats::Client,
    subject: &str,
    headers: Headers,
    payload: Bytes,
    timeout: Duration,
) -> Result<RawMessage, BusError> {
    let request = async_nats::Request::new()
        .headers(headers.into_nats())
        .payload(payload)
        .timeout(Some(timeout));
    match client.send_request(subject.to_owned(), request).await {
        Ok(m) => Ok(RawMessage {
            subject: m.subject.to_string(),
            reply: None,
            headers: Headers::from_nats(m.headers.as_ref()),
            payload: m.payload,
        }),
        Err(e) => Err(match e.kind() {
            async_nats::RequestErrorKind::TimedOut => BusError::Timeout {
                subject: subject.to_owned(),
                after: timeout,
            },
            async_nats::RequestErrorKind::NoResponders => BusError::NoResponders {
                subject: subject.to_owned(),
            },
            _ => BusError::Request {
                subject: subject.to_owned(),
                reason: e.to_string(),
            },
        }),
    }
}
