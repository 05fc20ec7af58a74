//! Request-reply over one reply subscription per tenant: `_INBOX.<t>.<id>.*` is
//! subscribed once, and each request waits on its own token under it. Replies go to
//! the tenant's inbox, as services require, without a SUB and UNSUB per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::oneshot;

use super::RawMessage;
use super::nats::raw_message;
use crate::{RequestError, TenantId};

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<async_nats::Message>>>>;

/// The reply subscription of one tenant on one connection.
#[derive(Debug)]
pub(crate) struct TenantMux {
    /// `_INBOX.<t>.<id>`; replies come to `<prefix>.<token>`.
    prefix: String,
    next: AtomicU64,
    waiters: Waiters,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TenantMux {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TenantMux {
    /// The wildcard this mux subscribes to, as a permission refusal names it.
    pub(crate) fn pattern(&self) -> String {
        format!("{}.*", self.prefix)
    }
}

/// The muxes of one connection, made on first use per tenant.
#[derive(Debug, Default)]
pub(crate) struct RequestMuxes {
    by_tenant: tokio::sync::Mutex<HashMap<TenantId, Arc<TenantMux>>>,
}

impl RequestMuxes {
    /// The mux for `tenant`, subscribing its inbox on first use.
    pub(crate) async fn get(
        &self,
        client: &async_nats::Client,
        tenant: &TenantId,
    ) -> Result<Arc<TenantMux>, RequestError> {
        let mut map = self.by_tenant.lock().await;
        if let Some(m) = map.get(tenant) {
            return Ok(Arc::clone(m));
        }
        let prefix = format!("{}.{}", tenant.inbox_prefix(), nuid::next());
        let mut sub =
            client
                .subscribe(format!("{prefix}.*"))
                .await
                .map_err(|e| RequestError::Client {
                    subject: format!("{prefix}.*"),
                    source: Box::new(e),
                })?;
        let waiters: Waiters = Arc::default();
        let routes = Arc::clone(&waiters);
        let task = tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let token = m
                    .subject
                    .as_str()
                    .rsplit('.')
                    .next()
                    .and_then(|t| t.parse::<u64>().ok());
                let waiter = token.and_then(|t| routes.lock().ok().and_then(|mut w| w.remove(&t)));
                if let Some(w) = waiter {
                    // The requester may have given up (timed out): nothing to do then.
                    w.send(m).ok();
                }
            }
        });
        let mux = Arc::new(TenantMux {
            prefix,
            next: AtomicU64::new(0),
            waiters,
            task,
        });
        map.insert(tenant.clone(), Arc::clone(&mux));
        Ok(mux)
    }

    /// Forgets `tenant`'s mux (its subscription was refused), so the next request
    /// tries again.
    pub(crate) async fn forget(&self, tenant: &TenantId) {
        self.by_tenant.lock().await.remove(tenant);
    }
}

/// Sends `msg` with a reply subject of `mux` and waits for the reply.
pub(crate) async fn request(
    client: &async_nats::Client,
    mux: &TenantMux,
    msg: RawMessage,
    timeout: Duration,
) -> Result<RawMessage, RequestError> {
    let token = mux.next.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    if let Ok(mut w) = mux.waiters.lock() {
        w.insert(token, tx);
    }
    let forget = || {
        if let Ok(mut w) = mux.waiters.lock() {
            w.remove(&token);
        }
    };
    let subject = msg.subject;
    let reply = format!("{}.{token}", mux.prefix);
    let sent = client
        .publish_with_reply_and_headers(
            subject.clone(),
            reply,
            msg.headers.into_nats(),
            msg.payload,
        )
        .await;
    if let Err(e) = sent {
        forget();
        return Err(RequestError::Client {
            subject,
            source: Box::new(e),
        });
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(m)) if m.status == Some(async_nats::StatusCode::NO_RESPONDERS) => {
            Err(RequestError::NoResponders { subject })
        }
        Ok(Ok(m)) => Ok(raw_message(m)),
        Ok(Err(_)) => Err(RequestError::Closed),
        Err(_) => {
            forget();
            Err(RequestError::Timeout {
                subject,
                after: timeout,
            })
        }
    }
}
