//! The NATS transport, on async-nats.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::RawMessage;
use crate::config::Auth;
use crate::error::Scrubbed;
use crate::events::{BusEvent, Monitor, permission_violation};
use crate::{
    BusConfig, BusError, ConfigError, Headers, PublishError, RequestError, SubscribeError,
};

pub(crate) async fn connect(
    config: &BusConfig,
    monitor: Arc<Monitor>,
) -> Result<async_nats::Client, BusError> {
    if config.servers.is_empty() {
        return Err(ConfigError {
            field: "servers".into(),
            reason: "no NATS server is configured (set NATS_URL, or use Bus::in_process)".into(),
        }
        .into());
    }
    let servers_text = crate::config::redact_urls(&config.servers.join(","));
    let mut addrs = Vec::with_capacity(config.servers.len());
    for url in &config.servers {
        let addr: async_nats::ServerAddr = url.parse().map_err(|e| ConfigError {
            field: "servers".into(),
            reason: format!("{:?}: {e}", crate::config::redact_urls(url)),
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
        .event_callback(event_handler(monitor));
    if let Some(name) = &config.name {
        options = options.name(name);
    }
    if let Some(tenant) = &config.inbox_tenant {
        options = options.custom_inbox_prefix(tenant.inbox_prefix());
    }
    // Credentials in the URL (`nats://user:pass@host`, or `nats://token@host`): the
    // client library parses them but does not send them, so they are passed on here.
    let in_url = url_credentials(&addrs)?;
    if in_url.is_some() && !matches!(config.auth, Auth::None) {
        return Err(ConfigError {
            field: "servers".into(),
            reason: "credentials are given both in a server URL and as auth; give them once".into(),
        }
        .into());
    }
    options = match &config.auth {
        Auth::None => match in_url {
            Some((user, Some(password))) => options.user_and_password(user, password),
            Some((token, None)) => options.token(token),
            None => options,
        },
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
        source: Box::new(Scrubbed::new(&e.to_string(), &config.auth.secrets())),
    })
}

fn event_handler(
    monitor: Arc<Monitor>,
) -> impl Fn(async_nats::Event) -> std::future::Ready<()> + Send + Sync + 'static {
    let was_connected = Arc::new(AtomicBool::new(false));
    move |event| {
        let mapped = match event {
            async_nats::Event::Connected => {
                monitor
                    .counters
                    .buffered_while_down
                    .store(0, Ordering::Relaxed);
                if was_connected.swap(true, Ordering::Relaxed) {
                    Monitor::bump(&monitor.counters.reconnects);
                    BusEvent::Reconnected
                } else {
                    BusEvent::Connected
                }
            }
            async_nats::Event::Disconnected => BusEvent::Disconnected,
            async_nats::Event::LameDuckMode => BusEvent::LameDuck,
            async_nats::Event::SlowConsumer(sid) => {
                Monitor::bump(&monitor.counters.slow_consumers);
                BusEvent::SlowConsumer {
                    subscription: sid.to_string(),
                }
            }
            async_nats::Event::ServerError(e) => {
                let text = e.to_string();
                match permission_violation(&text) {
                    Some((operation, subject)) => {
                        Monitor::bump(&monitor.counters.permission_violations);
                        BusEvent::PermissionViolation { operation, subject }
                    }
                    None => BusEvent::ServerError(text),
                }
            }
            async_nats::Event::ClientError(e) => BusEvent::ClientError(e.to_string()),
            async_nats::Event::Closed => BusEvent::Closed,
            async_nats::Event::Draining => return std::future::ready(()),
        };
        monitor.emit(mapped);
        std::future::ready(())
    }
}

/// A received async-nats message as the transport hands it on.
pub(crate) fn raw_message(m: async_nats::Message) -> RawMessage {
    RawMessage {
        subject: m.subject.to_string(),
        reply: m.reply.map(|r| r.to_string()),
        headers: Headers::from_nats(m.headers.as_ref()),
        payload: m.payload,
    }
}

pub(crate) async fn publish(
    client: &async_nats::Client,
    msg: RawMessage,
    config: &BusConfig,
    monitor: &Monitor,
) -> Result<(), PublishError> {
    if client.connection_state() != async_nats::connection::State::Connected {
        let limit = config.reconnect_buffer;
        let buffered = &monitor.counters.buffered_while_down;
        if buffered.fetch_add(1, Ordering::Relaxed) >= limit {
            buffered.fetch_sub(1, Ordering::Relaxed);
            return Err(PublishError::ReconnectBufferFull {
                subject: msg.subject,
                limit,
            });
        }
    }
    let RawMessage {
        subject,
        reply,
        headers,
        payload,
    } = msg;
    let fail = |e: async_nats::PublishError, subject: &str| PublishError::Client {
        subject: subject.to_owned(),
        source: Box::new(e),
    };
    let result = match (reply, headers.is_empty()) {
        (None, true) => client.publish(subject.clone(), payload).await,
        (None, false) => {
            client
                .publish_with_headers(subject.clone(), headers.into_nats(), payload)
                .await
        }
        (Some(r), true) => client.publish_with_reply(subject.clone(), r, payload).await,
        (Some(r), false) => {
            client
                .publish_with_reply_and_headers(subject.clone(), r, headers.into_nats(), payload)
                .await
        }
    };
    result.map_err(|e| fail(e, &subject))
}

pub(crate) async fn subscribe(
    client: &async_nats::Client,
    pattern: &str,
    group: Option<&str>,
) -> Result<async_nats::Subscriber, SubscribeError> {
    let result = match group {
        Some(g) => {
            client
                .queue_subscribe(pattern.to_owned(), g.to_owned())
                .await
        }
        None => client.subscribe(pattern.to_owned()).await,
    };
    result.map_err(|e| SubscribeError::Client {
        subject: pattern.to_owned(),
        source: Box::new(e),
    })
}

/// A request. Without `own_inbox` the reply comes back through the client's shared
/// reply subscription; with it, to that inbox (one SUB and UNSUB more).
pub(crate) async fn request(
    client: &async_nats::Client,
    msg: RawMessage,
    own_inbox: Option<String>,
    timeout: Duration,
) -> Result<RawMessage, RequestError> {
    let subject = msg.subject;
    let mut request = async_nats::Request::new()
        .headers(msg.headers.into_nats())
        .payload(msg.payload)
        .timeout(Some(timeout));
    if let Some(inbox) = own_inbox {
        request = request.inbox(inbox);
    }
    match client.send_request(subject.clone(), request).await {
        Ok(m) => Ok(raw_message(m)),
        Err(e) => Err(match e.kind() {
            async_nats::RequestErrorKind::TimedOut => RequestError::Timeout {
                subject,
                after: timeout,
            },
            async_nats::RequestErrorKind::NoResponders => RequestError::NoResponders { subject },
            _ => RequestError::Client {
                subject,
                source: Box::new(e),
            },
        }),
    }
}

/// A message through the server and back on this connection. The server handles a
/// connection's commands in order, so once it returns, everything sent before it has
/// been processed, and everything the server sent before it has been read. It rides
/// an inbox under `inbox_prefix`, which the connection may use; if it cannot (no
/// permission), it gives up after `limit`. Returns whether the probe came back.
pub(crate) async fn round_trip(
    client: &async_nats::Client,
    inbox_prefix: &str,
    limit: Duration,
) -> bool {
    let probe = format!("{inbox_prefix}.{}", nuid::next());
    let trip = async {
        let Ok(mut sub) = client.subscribe(probe.clone()).await else {
            return false;
        };
        client.publish(probe, Bytes::new()).await.is_ok()
            && client.flush().await.is_ok()
            && futures::StreamExt::next(&mut sub).await.is_some()
    };
    // The whole trip is bounded: while disconnected, even the flush waits. Running out
    // of time means the probe proved nothing: the caller reports it and goes on.
    tokio::time::timeout(limit, trip).await.unwrap_or(false)
}

/// The user and password (or the token: a user without a password) the server URLs
/// carry, percent-decoded. URLs that carry different ones are refused: one connection
/// authenticates one way to every server of a cluster.
fn url_credentials(
    addrs: &[async_nats::ServerAddr],
) -> Result<Option<(String, Option<String>)>, ConfigError> {
    let refuse = |reason: &str| ConfigError {
        field: "servers".into(),
        reason: reason.into(),
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|d| d.into_owned())
            .map_err(|_| refuse("a server URL's user or password is not UTF-8 once decoded"))
    };
    let mut found: Option<(String, Option<String>)> = None;
    for a in addrs {
        let Some(user) = a.username() else { continue };
        let these = (decode(user)?, a.password().map(decode).transpose()?);
        match &found {
            Some(first) if *first != these => {
                return Err(refuse(
                    "the server URLs carry different credentials; give them once",
                ));
            }
            _ => found = Some(these),
        }
    }
    Ok(found)
}
