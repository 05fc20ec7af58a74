//! Authentication and TLS against real servers configured for each: token,
//! user/password, NKey, creds (JWT), TLS with a custom CA, and mutual TLS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sdk_bus::{Auth, Bus, BusConfig, BusError, Secret, SubjectPattern, Tls};
use sdk_testkit::{JwtAuth, NatsServer, NatsUser};

/// Connects with `auth`/`tls`, then proves the connection works with a round trip.
async fn round_trip(url: &str, auth: Auth, tls: Tls) -> Result<(), BusError> {
    let config = BusConfig::builder()
        .servers(url)
        .auth(auth)
        .tls(tls)
        .reconnect(sdk_bus::ReconnectPolicy::default().max_attempts(1))
        .build()
        .unwrap();
    let bus = Bus::connect(config).await?;
    let subject = tenant("acme").scope().event("ping").unwrap();
    let mut sub = bus.subscribe(&SubjectPattern::from(&subject)).await?;
    bus.publish_and_flush(&subject, envelope("acme", "pong"))
        .await?;
    assert_eq!(body(&next(&mut sub).await), "pong");
    Ok(())
}

#[tokio::test]
async fn token() {
    let server = NatsServer::builder().token("s3cret-token").start();
    round_trip(
        &server.url(),
        Auth::Token(Secret::new("s3cret-token")),
        Tls::default(),
    )
    .await
    .unwrap();
    let err = round_trip(
        &server.url(),
        Auth::Token(Secret::new("wrong")),
        Tls::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BusError::Connect { .. }), "{err:?}");
    let text = error_chain(&err).to_lowercase();
    assert!(text.contains("authorization violation"), "{text}");
    assert!(!text.contains("wrong"), "the token leaked: {text}");
}

#[tokio::test]
async fn user_and_password() {
    let server = NatsServer::builder()
        .user(NatsUser::password("alice", "pw-1", None))
        .start();
    round_trip(
        &server.url(),
        Auth::UserPassword {
            user: "alice".into(),
            password: Secret::new("pw-1"),
        },
        Tls::default(),
    )
    .await
    .unwrap();
    let err = round_trip(
        &server.url(),
        Auth::UserPassword {
            user: "alice".into(),
            password: Secret::new("nope"),
        },
        Tls::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BusError::Connect { .. }), "{err:?}");
    let text = error_chain(&err).to_lowercase();
    assert!(text.contains("authorization violation"), "{text}");
    assert!(!text.contains("nope"), "the password leaked: {text}");
}

#[tokio::test]
async fn nkey() {
    let key = nkeys::KeyPair::new_user();
    let server = NatsServer::builder()
        .user(NatsUser::nkey(&key.public_key(), None))
        .start();
    round_trip(
        &server.url(),
        Auth::NKey(Secret::new(key.seed().unwrap())),
        Tls::default(),
    )
    .await
    .unwrap();
    let other = nkeys::KeyPair::new_user();
    let err = round_trip(
        &server.url(),
        Auth::NKey(Secret::new(other.seed().unwrap())),
        Tls::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BusError::Connect { .. }), "{err:?}");
    let text = error_chain(&err).to_lowercase();
    assert!(text.contains("authorization violation"), "{text}");
}

#[tokio::test]
async fn creds_file_with_a_user_jwt() {
    let dir = tempfile::tempdir().unwrap();
    let jwt = JwtAuth::generate(dir.path());
    let server = NatsServer::builder()
        .extra_config(&jwt.server_config)
        .start();
    round_trip(
        &server.url(),
        Auth::CredsFile(jwt.creds_file.clone()),
        Tls::default(),
    )
    .await
    .unwrap();
    // Without credentials the operator-mode server refuses the connection.
    let err = round_trip(&server.url(), Auth::None, Tls::default())
        .await
        .unwrap_err();
    let text = error_chain(&err).to_lowercase();
    assert!(text.contains("authorization violation"), "{text}");
    // A missing creds file is a configuration error naming the path.
    let err = round_trip(
        &server.url(),
        Auth::CredsFile(dir.path().join("missing.creds")),
        Tls::default(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid bus setting auth.creds_file: cannot read "),
        "{err}"
    );
}

#[tokio::test]
async fn tls_with_a_custom_ca() {
    let server = NatsServer::builder().tls().start();
    let ca = server.tls().unwrap().ca_cert.clone();
    round_trip(&server.url(), Auth::None, Tls::default().required().ca(ca))
        .await
        .unwrap();
    // Without the CA the server certificate is not trusted.
    let err = round_trip(&server.url(), Auth::None, Tls::default().required())
        .await
        .unwrap_err();
    let text = error_chain(&err);
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test]
async fn mutual_tls() {
    let server = NatsServer::builder().mutual_tls().start();
    let tls = server.tls().unwrap().clone();
    round_trip(
        &server.url(),
        Auth::None,
        Tls::default()
            .required()
            .ca(tls.ca_cert.clone())
            .client_cert(tls.client_cert.clone(), tls.client_key.clone()),
    )
    .await
    .unwrap();
    // A client without a certificate is refused by the server.
    let err = round_trip(
        &server.url(),
        Auth::None,
        Tls::default().required().ca(tls.ca_cert),
    )
    .await
    .unwrap_err();
    let text = error_chain(&err).to_lowercase();
    assert!(text.contains("certificate"), "{text}");
}
