//! Connection settings: a builder, and `from_env()` for the standard variables.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::TenantId;

/// A setting that is missing or wrong; `field` names it (a builder method or an
/// environment variable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bus setting {field}: {reason}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The setting.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

fn err(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// A secret string: prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the client proves who it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// A shared token.
    Token(Secret),
    /// A user name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
    /// An NKey seed (`SU...`).
    NKey(Secret),
    /// A `.creds` file with a user JWT and its NKey seed (decentralised auth).
    CredsFile(PathBuf),
}

impl Auth {
    /// The secret strings, to scrub from error texts.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        match self {
            Auth::Token(t) | Auth::NKey(t) => vec![t.expose()],
            Auth::UserPassword { password, .. } => vec![password.expose()],
            Auth::None | Auth::CredsFile(_) => Vec::new(),
        }
    }
}

/// TLS settings: `Tls::default()` (TLS when the server asks for it), then the setters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Tls {
    /// Refuse to talk without TLS.
    pub required: bool,
    /// A CA certificate (PEM) to trust, for servers with a private CA.
    pub ca: Option<PathBuf>,
    /// A client certificate and key (PEM), for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// How to reconnect after the connection drops: `ReconnectPolicy::default()`, then
/// the setters.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Give up after this many attempts; `None` retries forever.
    pub max_attempts: Option<usize>,
    /// The first delay.
    pub initial_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Up to this fraction of each delay is random, so clients do not reconnect in step.
    pub jitter: f64,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            max_attempts: None,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
            jitter: 0.2,
        }
    }
}

impl Tls {
    /// Refuse to talk without TLS.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Trust this CA certificate (PEM).
    pub fn ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(path.into());
        self
    }
    /// Present this client certificate and key (PEM), for mutual TLS.
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }
}

impl ReconnectPolicy {
    /// Give up after `attempts` (the default retries forever).
    pub fn max_attempts(mut self, attempts: usize) -> Self {
        self.max_attempts = Some(attempts);
        self
    }
    /// The first and the longest delay.
    pub fn delays(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_delay = initial;
        self.max_delay = max;
        self
    }
    /// The random fraction of each delay (0 to 1).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// The delay before attempt `attempt` (from 1): doubling from `initial_delay`,
    /// capped at `max_delay`, minus up to `jitter` of it.
    pub fn delay(&self, attempt: usize) -> Duration {
        let exp = u32::try_from(attempt.saturating_sub(1).min(20)).unwrap_or(20);
        let base = self
            .initial_delay
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.max_delay);
        let random = random_fraction(attempt);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        base.mul_f64(1.0 - jitter * random)
    }
}

/// A number in 0..1 that differs per call, without a random-number dependency.
fn random_fraction(seed: usize) -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(seed);
    // The top 53 bits as a fraction.
    #[allow(clippy::cast_precision_loss)]
    let f = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    f
}

/// The most messages a subscription or the reconnect buffer may hold: 16 Mi.
const MAX_BUFFERED: usize = 1 << 24;

/// Replaces the user, password or token of every URL in `text` with `***`:
/// `nats://user:pass@host:4222` becomes `nats://***@host:4222`.
pub(crate) fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        match word.rfind('@') {
            Some(at) => {
                // Both are byte positions of ASCII characters in `word` (after "://",
                // and at '@'), so slicing there stays on character boundaries.
                let start = word.find("://").map_or(0, |i| i + 3);
                if start <= at {
                    out.push_str(&word[..start]);
                    out.push_str("***");
                    out.push_str(&word[at..]);
                } else {
                    out.push_str(word);
                }
            }
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, ',' | '"' | '\'' | '(' | ')' | '[' | ']' | '<' | '>') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Everything needed to connect. Build it with [`BusConfig::builder`] or
/// [`BusConfig::from_env`]. Its `Debug` output hides credentials, including any
/// written into a server URL.
#[derive(Clone)]
#[non_exhaustive]
pub struct BusConfig {
    pub(crate) servers: Vec<String>,
    pub(crate) auth: Auth,
    pub(crate) tls: Tls,
    pub(crate) name: Option<String>,
    pub(crate) ping_interval: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) reconnect_buffer: usize,
    pub(crate) subscription_capacity: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) inbox_tenant: Option<TenantId>,
    pub(crate) max_payload: usize,
}

impl fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let servers: Vec<String> = self.servers.iter().map(|s| redact_urls(s)).collect();
        f.debug_struct("BusConfig")
            .field("servers", &servers)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("name", &self.name)
            .field("ping_interval", &self.ping_interval)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect", &self.reconnect)
            .field("reconnect_buffer", &self.reconnect_buffer)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("request_timeout", &self.request_timeout)
            .field("drain_timeout", &self.drain_timeout)
            .field("inbox_tenant", &self.inbox_tenant)
            .field("max_payload", &self.max_payload)
            .finish()
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            servers: Vec::new(),
            auth: Auth::None,
            tls: Tls::default(),
            name: None,
            ping_interval: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(5),
            reconnect: ReconnectPolicy::default(),
            reconnect_buffer: 8 * 1024,
            subscription_capacity: 4 * 1024,
            request_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            inbox_tenant: None,
            max_payload: 1024 * 1024,
        }
    }
}

/// Builds a [`BusConfig`]; [`BusConfigBuilder::build`] checks every field.
#[derive(Clone, Default)]
pub struct BusConfigBuilder {
    config: BusConfig,
    servers_text: Option<String>,
}

impl fmt::Debug for BusConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusConfigBuilder")
            .field("config", &self.config)
            .field("servers", &self.servers_text.as_deref().map(redact_urls))
            .finish()
    }
}

impl BusConfig {
    /// A builder with safe defaults: no servers (the in-process transport), 20 s
    /// pings, reconnect forever with backoff from 50 ms to 5 s and 20% jitter, an
    /// 8192-message reconnect buffer, 4096 messages per subscription, 10 s requests.
    pub fn builder() -> BusConfigBuilder {
        BusConfigBuilder::default()
    }

    /// Reads the standard variables:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `NATS_URL` | server URL, or several separated by commas (a cluster) |
    /// | `NATS_TOKEN` | token |
    /// | `NATS_USER`, `NATS_PASSWORD` | user and password |
    /// | `NATS_NKEY_SEED` | NKey seed |
    /// | `NATS_CREDS` | path of a `.creds` file |
    /// | `NATS_CA`, `NATS_CERT`, `NATS_KEY` | TLS CA, client certificate and key |
    /// | `NATS_TLS_REQUIRED` | `true` to require TLS |
    /// | `NATS_CONNECTION_NAME` | the connection's name |
    /// | `NATS_PING_INTERVAL_MS`, `NATS_REQUEST_TIMEOUT_MS` | durations |
    /// | `NATS_MAX_RECONNECTS` | attempts; unset retries forever |
    /// | `NATS_RECONNECT_BUFFER`, `NATS_SUBSCRIPTION_CAPACITY` | message counts |
    /// | `NATS_INBOX_TENANT` | use `_INBOX.<tenant>` for replies |
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that is wrong.
    pub fn from_env() -> Result<BusConfig, ConfigError> {
        BusConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`BusConfig::from_env`], reading from `lookup` instead of the process
    /// environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that is wrong.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<BusConfig, ConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let mut b = BusConfig::builder();
        if let Some(url) = get("NATS_URL") {
            b.servers_text = Some(url);
        }
        let field = |name: &str, e: ConfigError| err(name, e.reason);
        b.config.auth = match (
            get("NATS_TOKEN"),
            get("NATS_USER"),
            get("NATS_NKEY_SEED"),
            get("NATS_CREDS"),
        ) {
            (Some(t), None, None, None) => Auth::Token(Secret::new(t)),
            (None, Some(user), None, None) => Auth::UserPassword {
                user,
                password: Secret::new(
                    get("NATS_PASSWORD")
                        .ok_or_else(|| err("NATS_PASSWORD", "is required when NATS_USER is set"))?,
                ),
            },
            (None, None, Some(seed), None) => Auth::NKey(Secret::new(seed)),
            (None, None, None, Some(path)) => Auth::CredsFile(PathBuf::from(path)),
            (None, None, None, None) => Auth::None,
            _ => {
                return Err(err(
                    "NATS_TOKEN/NATS_USER/NATS_NKEY_SEED/NATS_CREDS",
                    "set only one way to authenticate",
                ));
            }
        };
        b.config.tls.ca = get("NATS_CA").map(PathBuf::from);
        match (get("NATS_CERT"), get("NATS_KEY")) {
            (Some(c), Some(k)) => b.config.tls.client_cert = Some((c.into(), k.into())),
            (None, None) => {}
            (Some(_), None) => return Err(err("NATS_KEY", "is required when NATS_CERT is set")),
            (None, Some(_)) => return Err(err("NATS_CERT", "is required when NATS_KEY is set")),
        }
        if let Some(v) = get("NATS_TLS_REQUIRED") {
            b.config.tls.required = parse_bool("NATS_TLS_REQUIRED", &v)?;
        }
        b.config.name = get("NATS_CONNECTION_NAME");
        if let Some(v) = get("NATS_PING_INTERVAL_MS") {
            b.config.ping_interval = Duration::from_millis(parse_num("NATS_PING_INTERVAL_MS", &v)?);
        }
        if let Some(v) = get("NATS_REQUEST_TIMEOUT_MS") {
            b.config.request_timeout =
                Duration::from_millis(parse_num("NATS_REQUEST_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("NATS_MAX_RECONNECTS") {
            b.config.reconnect.max_attempts =
                Some(usize::try_from(parse_num("NATS_MAX_RECONNECTS", &v)?).unwrap_or(usize::MAX));
        }
        if let Some(v) = get("NATS_RECONNECT_BUFFER") {
            b.config.reconnect_buffer =
                usize::try_from(parse_num("NATS_RECONNECT_BUFFER", &v)?).unwrap_or(usize::MAX);
        }
        if let Some(v) = get("NATS_SUBSCRIPTION_CAPACITY") {
            b.config.subscription_capacity =
                usize::try_from(parse_num("NATS_SUBSCRIPTION_CAPACITY", &v)?).unwrap_or(usize::MAX);
        }
        if let Some(v) = get("NATS_INBOX_TENANT") {
            b.config.inbox_tenant =
                Some(TenantId::new(&v).map_err(|e| err("NATS_INBOX_TENANT", e.to_string()))?);
        }
        b.build().map_err(|e| match e.field.as_str() {
            "servers" => field("NATS_URL", e),
            "tls" => field("NATS_CERT/NATS_KEY", e),
            _ => e,
        })
    }

    /// Whether any server is configured; without one the bus runs in-process.
    pub fn has_servers(&self) -> bool {
        !self.servers.is_empty()
    }

    /// The server URLs.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The default request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

fn parse_bool(field: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(err(
            field,
            format!("{v:?} is not a boolean (true or false)"),
        )),
    }
}

fn parse_num(field: &str, v: &str) -> Result<u64, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| err(field, format!("{v:?} is not a whole number")))
}

/// Checks one server URL: `nats://`, `tls://`, `ws://` or `wss://` (or a bare
/// `host:port`), a host, and a port if one is given.
fn check_url(url: &str) -> Result<(), String> {
    // Errors name the URL without its credentials.
    let shown = redact_urls(url);
    let rest = match url.split_once("://") {
        Some((scheme, rest)) => {
            if !matches!(scheme, "nats" | "tls" | "ws" | "wss") {
                return Err(format!(
                    "{shown:?} has scheme {scheme:?}; use nats, tls, ws or wss"
                ));
            }
            rest
        }
        None => url,
    };
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, hp)| hp);
    let host_port = host_port.trim_end_matches('/');
    if host_port.contains(char::is_whitespace) {
        return Err(format!("{shown:?} contains whitespace"));
    }
    // `[v6-address]:port`, `host:port` or `host`.
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, rest)) => (h, rest.strip_prefix(':')),
            None => return Err(format!("{shown:?} has an unclosed [")),
        },
        None => match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return Err(format!("{shown:?} has no host"));
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("{shown:?} has an invalid port {port:?}"));
    }
    Ok(())
}

impl BusConfigBuilder {
    /// One server URL, or several separated by commas (`NATS_URL` form).
    pub fn servers(mut self, urls: &str) -> Self {
        self.servers_text = Some(urls.to_owned());
        self
    }
    /// Credentials.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.config.auth = auth;
        self
    }
    /// TLS settings.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.config.tls = tls;
        self
    }
    /// The connection name the server shows.
    pub fn name(mut self, name: &str) -> Self {
        self.config.name = Some(name.to_owned());
        self
    }
    /// How often to ping the server.
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.config.ping_interval = every;
        self
    }
    /// How long the first connect may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }
    /// The reconnect policy.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.config.reconnect = policy;
        self
    }
    /// How many messages may be published while disconnected before publishing fails.
    pub fn reconnect_buffer(mut self, messages: usize) -> Self {
        self.config.reconnect_buffer = messages;
        self
    }
    /// How many messages each subscription buffers before it drops (and reports) them.
    pub fn subscription_capacity(mut self, messages: usize) -> Self {
        self.config.subscription_capacity = messages;
        self
    }
    /// The default request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }
    /// How long [`crate::Bus::drain`] waits for running handlers to finish before it
    /// closes the connection anyway (default 30 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.config.drain_timeout = timeout;
        self
    }
    /// This connection's own inbox, `_INBOX.<tenant>`: its readiness probes go there.
    /// A shared service sets its own name, which its permissions allow. Requests need
    /// no setting: each uses the inbox of its subject's tenant.
    pub fn inbox_tenant(mut self, tenant: &TenantId) -> Self {
        self.config.inbox_tenant = Some(tenant.clone());
        self
    }
    /// The largest message the in-process transport accepts (NATS reads it from the
    /// server).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.max_payload = bytes;
        self
    }

    /// Checks every field and finishes.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad field.
    pub fn build(mut self) -> Result<BusConfig, ConfigError> {
        if let Some(text) = self.servers_text.take() {
            let servers: Vec<String> = text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if servers.is_empty() {
                return Err(err(
                    "servers",
                    format!("{:?} lists no server", redact_urls(&text)),
                ));
            }
            for url in &servers {
                check_url(url).map_err(|reason| err("servers", reason))?;
            }
            self.config.servers = servers;
        }
        let c = &self.config;
        for (field, n) in [
            ("subscription_capacity", c.subscription_capacity),
            ("reconnect_buffer", c.reconnect_buffer),
        ] {
            if n == 0 {
                return Err(err(field, "must be at least 1"));
            }
            // A channel this large would never be filled, and past the runtime's own
            // limit it could not even be made.
            if n > MAX_BUFFERED {
                return Err(err(
                    field,
                    format!("{n} is over the limit of {MAX_BUFFERED}"),
                ));
            }
        }
        if c.max_payload == 0 {
            return Err(err("max_payload", "must be at least 1"));
        }
        for (field, d) in [
            ("ping_interval", c.ping_interval),
            ("request_timeout", c.request_timeout),
            ("connect_timeout", c.connect_timeout),
        ] {
            if d.is_zero() {
                return Err(err(field, "must be longer than zero"));
            }
        }
        if !(0.0..=1.0).contains(&c.reconnect.jitter) {
            return Err(err(
                "reconnect.jitter",
                format!("{} is not within 0..=1", c.reconnect.jitter),
            ));
        }
        if c.reconnect.initial_delay > c.reconnect.max_delay {
            return Err(err(
                "reconnect.initial_delay",
                "is longer than reconnect.max_delay",
            ));
        }
        if let Auth::UserPassword { user, .. } = &c.auth
            && user.is_empty()
        {
            return Err(err("auth.user", "must not be empty"));
        }
        if let Some((cert, key)) = &c.tls.client_cert
            && (cert.as_os_str().is_empty() || key.as_os_str().is_empty())
        {
            return Err(err(
                "tls",
                "a client certificate needs both a certificate and a key path",
            ));
        }
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests;
