//! The test servers themselves: JetStream, auth, TLS, clusters, kill and restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpStream;
use std::time::Duration;

use sdk_testkit::{Collector, NatsCluster, NatsServer, NatsUser, Permissions, wait_until};

fn varz(server: &NatsServer) -> serde_json::Value {
    serde_json::from_str(&server.monitor("/varz").expect("varz")).expect("varz json")
}

#[test]
fn jetstream_runs_in_the_temporary_store() {
    let server = NatsServer::builder().jetstream().start();
    let jsz: serde_json::Value = serde_json::from_str(&server.monitor("/jsz").unwrap()).unwrap();
    let store = jsz["config"]["store_dir"].as_str().unwrap();
    assert!(
        store.starts_with(server.store_dir().to_str().unwrap()),
        "{store}"
    );
}

#[test]
fn a_killed_server_restarts_on_the_same_port_with_its_store() {
    let mut server = NatsServer::builder().jetstream().start();
    let port = server.port();
    server.kill();
    assert!(!server.is_running());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    server.restart();
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert_eq!(varz(&server)["port"], port);
}

#[test]
fn a_three_node_cluster_forms_routes() {
    let cluster = NatsCluster::start(3);
    for server in &cluster.servers {
        let routed = wait_until(Duration::from_secs(15), || {
            let routez: serde_json::Value =
                serde_json::from_str(&server.monitor("/routez")?).ok()?;
            // Each node reaches the two others (route pooling may add more).
            (routez["num_routes"].as_u64()? >= 2).then_some(())
        });
        assert!(
            routed.is_some(),
            "{} did not route: {}",
            server.name(),
            server.log()
        );
    }
    assert_eq!(cluster.urls().split(',').count(), 3);
}

#[tokio::test]
async fn password_users_are_enforced() {
    let server = NatsServer::builder()
        .user(NatsUser::password(
            "acme",
            "s3cret",
            Some(Permissions::both(&["sdk.acme.>", "_INBOX.acme.>"])),
        ))
        .start();
    let ok = async_nats::ConnectOptions::with_user_and_password("acme".into(), "s3cret".into())
        .connect(server.url())
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let bad = async_nats::ConnectOptions::with_user_and_password("acme".into(), "wrong".into())
        .max_reconnects(Some(1))
        .connect(server.url())
        .await;
    assert!(bad.is_err(), "a wrong password must be refused");
}

#[tokio::test]
async fn mutual_tls_accepts_the_generated_client_certificate() {
    let server = NatsServer::builder().mutual_tls().start();
    assert_eq!(varz(&server)["tls_verify"], true);
    let tls = server.tls().unwrap();
    let client = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(tls.ca_cert.clone())
        .add_client_certificate(tls.client_cert.clone(), tls.client_key.clone())
        .connect(server.url())
        .await
        .unwrap();
    client.publish("sdk.acme.ping", "x".into()).await.unwrap();
    client.flush().await.unwrap();
    let no_cert = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(tls.ca_cert.clone())
        .max_reconnects(Some(1))
        .connect(server.url())
        .await;
    assert!(
        no_cert.is_err(),
        "a client without a certificate must be refused"
    );
}

#[test]
fn the_collector_restarts_on_the_same_ports() {
    let mut collector = Collector::start();
    let endpoint = collector.grpc_endpoint();
    collector.kill();
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    collector.restart();
    assert_eq!(collector.grpc_endpoint(), endpoint);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
}
