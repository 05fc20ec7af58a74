//! A real `nats-server` on loopback ports, from a generated config.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;

use crate::tls::TlsMaterial;
use crate::tools::{Tool, free_port, locate_or_panic, wait_until};

/// How long a server may take to report healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Subject permissions of one user, as in the server's `permissions` block.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    /// Subjects the user may publish to.
    pub publish: Vec<String>,
    /// Subjects the user may subscribe to.
    pub subscribe: Vec<String>,
    /// Whether the user may publish replies to requests it received (`allow_responses`).
    pub allow_responses: bool,
}

impl Permissions {
    /// The same allow-list for publish and subscribe, without `allow_responses`.
    pub fn both(subjects: &[&str]) -> Permissions {
        let subjects: Vec<String> = subjects.iter().map(|s| (*s).to_owned()).collect();
        Permissions {
            publish: subjects.clone(),
            subscribe: subjects,
            allow_responses: false,
        }
    }

    /// The tenant template of docs/nats.md: `sdk.<t>.>` and `_INBOX.<t>.>` for both
    /// publish and subscribe, and no `allow_responses` (a tenant's replies go to its
    /// own inbox, which it may publish to anyway; `allow_responses` would let it answer
    /// into another tenant's subjects).
    /// `$SRV.>` lets the tenant discover services (NATS micro); a tenant's service
    /// answers discovery only into that tenant's inbox.
    pub fn tenant(tenant: &str) -> Permissions {
        Permissions::both(&[
            &format!("sdk.{tenant}.>"),
            &format!("_INBOX.{tenant}.>"),
            "$SRV.>",
        ])
    }

    /// The shared-service template of docs/nats.md: subscribe to `subjects` (for
    /// example `sdk.*.rag.query`) and to its own inbox `_INBOX.<name>.>` (the service
    /// sets `inbox_tenant(<name>)`, so its readiness probes have somewhere to go),
    /// publish only into inboxes `_INBOX.*.>`, and no `allow_responses`.
    pub fn shared_service(name: &str, subjects: &[&str]) -> Permissions {
        let mut subscribe: Vec<String> = subjects.iter().map(|s| (*s).to_owned()).collect();
        subscribe.push(format!("_INBOX.{name}.>"));
        subscribe.push("$SRV.>".to_owned());
        Permissions {
            publish: vec!["_INBOX.*.>".to_owned()],
            subscribe,
            allow_responses: false,
        }
    }

    fn render(&self) -> String {
        let list = |items: &[String]| {
            items
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = format!(
            "permissions: {{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [{}] }}",
            list(&self.publish),
            list(&self.subscribe)
        );
        if self.allow_responses {
            out.push_str(", allow_responses: true");
        }
        out.push_str(" }");
        out
    }
}

/// One entry of the server's `authorization.users` list.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum NatsUser {
    /// A user name and password.
    Password {
        /// The user name.
        user: String,
        /// The password.
        password: String,
        /// What the user may do; `None` allows everything.
        permissions: Option<Permissions>,
    },
    /// An NKey user, identified by its public key (`U...`).
    Nkey {
        /// The public user key.
        public_key: String,
        /// What the user may do; `None` allows everything.
        permissions: Option<Permissions>,
    },
}

impl NatsUser {
    /// A password user.
    pub fn password(user: &str, password: &str, permissions: Option<Permissions>) -> NatsUser {
        NatsUser::Password {
            user: user.to_owned(),
            password: password.to_owned(),
            permissions,
        }
    }

    /// An NKey user.
    pub fn nkey(public_key: &str, permissions: Option<Permissions>) -> NatsUser {
        NatsUser::Nkey {
            public_key: public_key.to_owned(),
            permissions,
        }
    }

    fn render(&self) -> String {
        let (who, perms) = match self {
            NatsUser::Password {
                user,
                password,
                permissions,
            } => (
                format!("user: {user:?}, password: {password:?}"),
                permissions,
            ),
            NatsUser::Nkey {
                public_key,
                permissions,
            } => (format!("nkey: {public_key:?}"), permissions),
        };
        match perms {
            Some(p) => format!("{{ {who}, {} }}", p.render()),
            None => format!("{{ {who} }}"),
        }
    }
}

/// Builds the configuration of a test server.
#[derive(Debug, Clone, Default)]
pub struct NatsServerBuilder {
    jetstream: bool,
    token: Option<String>,
    users: Vec<NatsUser>,
    tls: bool,
    verify_clients: bool,
    max_payload: Option<u32>,
    extra: Vec<String>,
}

impl NatsServerBuilder {
    /// Enables JetStream with file storage in the server's temporary directory.
    pub fn jetstream(mut self) -> Self {
        self.jetstream = true;
        self
    }

    /// Requires this token from every client.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Adds a user; with any user the server requires authentication.
    pub fn user(mut self, user: NatsUser) -> Self {
        self.users.push(user);
        self
    }

    /// Serves TLS with certificates generated for this server.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Serves TLS and requires a client certificate signed by the test CA.
    pub fn mutual_tls(mut self) -> Self {
        self.tls = true;
        self.verify_clients = true;
        self
    }

    /// Sets `max_payload` in bytes.
    pub fn max_payload(mut self, bytes: u32) -> Self {
        self.max_payload = Some(bytes);
        self
    }

    /// Appends raw lines to the generated configuration (operator mode, accounts, ...).
    pub fn extra_config(mut self, lines: &str) -> Self {
        self.extra.push(lines.to_owned());
        self
    }

    /// Starts one server and waits until `/healthz` answers 200. A server that loses
    /// a port race is started again on other ports.
    pub fn start(self) -> NatsServer {
        let dir = Arc::new(TempDir::new().expect("temp dir"));
        let mut last = String::new();
        for _ in 0..5 {
            let node = Node::allocate("n1");
            let mut server = NatsServer::spawn_new(&self, Arc::clone(&dir), node, None);
            match server.try_wait_ready() {
                Ok(()) => return server,
                Err(e) if e.contains("address already in use") => {
                    server.kill();
                    last = e;
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("nats-server could not find free ports: {last}");
    }

    fn render(&self, dir: &Path, node: &Node, cluster: Option<&ClusterSpec>) -> String {
        let mut cfg = String::new();
        let _ = writeln!(cfg, "server_name: {:?}", node.name);
        let _ = writeln!(cfg, "listen: \"127.0.0.1:{}\"", node.port);
        let _ = writeln!(cfg, "http: \"127.0.0.1:{}\"", node.monitor_port);
        if let Some(max) = self.max_payload {
            let _ = writeln!(cfg, "max_payload: {max}");
        }
        if self.jetstream {
            let store = dir.join(format!("js-{}", node.name));
            let _ = writeln!(
                cfg,
                "jetstream {{ store_dir: {:?} }}",
                store.display().to_string()
            );
        }
        if let Some(token) = &self.token {
            let _ = writeln!(cfg, "authorization {{ token: {token:?} }}");
        } else if !self.users.is_empty() {
            let users: Vec<String> = self.users.iter().map(NatsUser::render).collect();
            let _ = writeln!(
                cfg,
                "authorization {{ users: [\n  {}\n] }}",
                users.join(",\n  ")
            );
        }
        if self.tls {
            let tls = TlsMaterial::generate(&dir.join("tls"));
            let _ = writeln!(
                cfg,
                "tls {{ cert_file: {:?}, key_file: {:?}, ca_file: {:?}, verify: {}, timeout: 5 }}",
                tls.server_cert.display().to_string(),
                tls.server_key.display().to_string(),
                tls.ca_cert.display().to_string(),
                self.verify_clients
            );
        }
        if let Some(spec) = cluster {
            let routes: Vec<String> = spec
                .ports
                .iter()
                .filter(|p| **p != node.cluster_port)
                .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            let _ = writeln!(
                cfg,
                "cluster {{ name: {:?}, listen: \"127.0.0.1:{}\", routes: [{}] }}",
                spec.name,
                node.cluster_port,
                routes.join(", ")
            );
        }
        for extra in &self.extra {
            cfg.push_str(extra);
            cfg.push('\n');
        }
        cfg
    }
}

#[derive(Debug, Clone)]
struct Node {
    name: String,
    port: u16,
    monitor_port: u16,
    cluster_port: u16,
}

impl Node {
    fn allocate(name: &str) -> Node {
        Node {
            name: name.to_owned(),
            port: free_port(),
            monitor_port: free_port(),
            cluster_port: free_port(),
        }
    }
}

#[derive(Debug)]
struct ClusterSpec {
    name: String,
    ports: Vec<u16>,
}

/// A running `nats-server`. Dropping it kills the process and removes its files.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    node: Node,
    config_path: PathBuf,
    log_path: PathBuf,
    tls: Option<TlsMaterial>,
    dir: Arc<TempDir>,
}

impl NatsServer {
    /// A builder for a server with no auth, no TLS and no JetStream.
    pub fn builder() -> NatsServerBuilder {
        NatsServerBuilder::default()
    }

    /// Starts a plain server (no JetStream).
    pub fn start() -> NatsServer {
        NatsServerBuilder::default().start()
    }

    fn spawn_new(
        builder: &NatsServerBuilder,
        dir: Arc<TempDir>,
        node: Node,
        cluster: Option<&ClusterSpec>,
    ) -> NatsServer {
        let config = builder.render(dir.path(), &node, cluster);
        let config_path = dir.path().join(format!("{}.conf", node.name));
        std::fs::write(&config_path, config).expect("write nats config");
        let log_path = dir.path().join(format!("{}.log", node.name));
        let tls = builder.tls.then(|| TlsMaterial {
            ca_cert: dir.path().join("tls/ca.pem"),
            server_cert: dir.path().join("tls/server.pem"),
            server_key: dir.path().join("tls/server-key.pem"),
            client_cert: dir.path().join("tls/client.pem"),
            client_key: dir.path().join("tls/client-key.pem"),
        });
        let mut server = NatsServer {
            child: None,
            node,
            config_path,
            log_path,
            tls,
            dir,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let bin = locate_or_panic(Tool::NatsServer);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open server log");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
    }

    /// Polls `/healthz` on the monitoring port until it answers 200.
    pub fn wait_ready(&self) {
        if let Err(e) = self.try_wait_ready() {
            panic!("{e}");
        }
    }

    fn try_wait_ready(&self) -> Result<(), String> {
        let port = self.node.monitor_port;
        let mut exited = false;
        let ready = wait_until(READY_TIMEOUT, || {
            if !self.is_running_inner() {
                exited = true;
                return Some(false);
            }
            http_status(port, "/healthz")
                .filter(|s| *s == 200)
                .map(|_| true)
        });
        match ready {
            Some(true) => Ok(()),
            Some(false) if exited => Err(format!(
                "nats-server {} exited during start-up; its log:\n{}",
                self.node.name,
                self.log()
            )),
            _ => Err(format!(
                "nats-server {} did not become healthy within {READY_TIMEOUT:?}; its log:\n{}",
                self.node.name,
                self.log()
            )),
        }
    }

    fn is_running_inner(&self) -> bool {
        // `try_wait` needs `&mut`; a zero-signal probe answers the same question.
        self.child
            .as_ref()
            .map(|c| process_alive(c.id()))
            .unwrap_or(false)
    }

    /// The client URL, `nats://127.0.0.1:<port>` (`tls://` when TLS is on).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.node.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.node.port
    }

    /// The HTTP monitoring port.
    pub fn monitor_port(&self) -> u16 {
        self.node.monitor_port
    }

    /// The server's name (`n1`, `n2`, ...).
    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// The generated certificates, when TLS is on.
    pub fn tls(&self) -> Option<&TlsMaterial> {
        self.tls.as_ref()
    }

    /// The JetStream store directory of this server.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join(format!("js-{}", self.node.name))
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        let mut out = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.read_to_string(&mut out);
        }
        out
    }

    /// Fetches a monitoring endpoint (`/varz`, `/jsz`, ...) and returns its body.
    pub fn monitor(&self, path: &str) -> Option<String> {
        http_get(self.node.monitor_port, path).map(|(_, body)| body)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the server gracefully (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), libc::SIGTERM);
            let _ = child.wait();
        }
    }

    /// Kills the server with SIGKILL, as a crash would, and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports, with the same store, and waits until
    /// it is healthy. Stops it first if it is running.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_ready();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A cluster of JetStream-enabled servers joined by routes on loopback.
#[derive(Debug)]
pub struct NatsCluster {
    /// The servers, `n1` first.
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` servers with JetStream, routes between all of them, and waits until
    /// every one is healthy.
    pub fn start(size: usize) -> NatsCluster {
        NatsCluster::start_with(size, NatsServerBuilder::default().jetstream())
    }

    /// Starts a cluster where each node uses `builder`'s settings. A cluster that
    /// loses a port race is started again on other ports.
    pub fn start_with(size: usize, builder: NatsServerBuilder) -> NatsCluster {
        let mut last = String::new();
        for _ in 0..5 {
            let dir = Arc::new(TempDir::new().expect("temp dir"));
            let nodes: Vec<Node> = (1..=size)
                .map(|i| Node::allocate(&format!("n{i}")))
                .collect();
            let spec = ClusterSpec {
                name: "sdk-test".to_owned(),
                ports: nodes.iter().map(|n| n.cluster_port).collect(),
            };
            let mut servers: Vec<NatsServer> = nodes
                .into_iter()
                .map(|node| NatsServer::spawn_new(&builder, Arc::clone(&dir), node, Some(&spec)))
                .collect();
            let failure = servers.iter().find_map(|s| s.try_wait_ready().err());
            match failure {
                None => return NatsCluster { servers },
                Some(e) if e.contains("address already in use") => {
                    for s in &mut servers {
                        s.kill();
                    }
                    last = e;
                }
                Some(e) => panic!("{e}"),
            }
        }
        panic!("the cluster could not find free ports: {last}");
    }

    /// A comma-separated list of every node's client URL, as `NATS_URL` takes it.
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The server with this name (`n1`, ...).
    pub fn server_mut(&mut self, name: &str) -> Option<&mut NatsServer> {
        self.servers.iter_mut().find(|s| s.name() == name)
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, 0) };
    if rc != 0 {
        return false;
    }
    // A zombie still "exists"; check its state in /proc.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn send_signal(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on a child process id we own; no memory is touched.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).map(|(status, _)| status)
}

/// A minimal HTTP/1.0 GET against 127.0.0.1; enough for the monitoring endpoints.
pub(crate) fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}
