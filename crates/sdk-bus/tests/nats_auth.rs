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

/// Credentials in the URL and as a setting, on a bus that connected with them:
/// neither is in the bus's or its configuration's Debug output.
#[tokio::test]
async fn a_connected_bus_shows_no_secret_in_debug() {
    let server = NatsServer::builder()
        .user(NatsUser::password("alice", "pw-in-url", None))
        .start();
    let url = server.url().replace("nats://", "nats://alice:pw-in-url@");
    let config = BusConfig::builder().servers(&url).build().unwrap();
    let bus = Bus::connect(config.clone()).await.unwrap();
    for text in [format!("{bus:?}"), format!("{config:?}")] {
        assert!(!text.contains("pw-in-url"), "{text}");
    }
    let config = BusConfig::builder()
        .servers(&server.url())
        .auth(Auth::UserPassword {
            user: "alice".into(),
            password: Secret::new("pw-in-url"),
        })
        .build()
        .unwrap();
    let bus = Bus::connect(config).await.unwrap();
    assert!(!format!("{bus:?}").contains("pw-in-url"), "{bus:?}");
}

/// `nats://user:password@host` and `nats://token@host` (as `NATS_URL` often carries
/// them) authenticate; a wrong password in the URL fails without showing it.
#[tokio::test]
async fn credentials_in_the_url_authenticate() {
    let with_user = NatsServer::builder()
        .user(NatsUser::password("bob", "p@ss word", None))
        .start();
    // Percent-encoded in the URL, as a URL requires for '@' and ' '.
    let url = with_user
        .url()
        .replace("nats://", "nats://bob:p%40ss%20word@");
    round_trip(&url, Auth::None, Tls::default()).await.unwrap();
    let wrong = with_user.url().replace("nats://", "nats://bob:not-it@");
    let err = round_trip(&wrong, Auth::None, Tls::default())
        .await
        .unwrap_err();
    let text = format!("{}\n{err:?}", error_chain(&err));
    assert!(
        text.to_lowercase().contains("authorization violation"),
        "{text}"
    );
    assert!(!text.contains("not-it"), "the password leaked: {text}");

    let with_token = NatsServer::builder().token("url-token").start();
    let url = with_token.url().replace("nats://", "nats://url-token@");
    round_trip(&url, Auth::None, Tls::default()).await.unwrap();

    // Ambiguous credentials are refused, not guessed at, and not shown.
    let two = format!(
        "{},{}",
        with_user.url().replace("nats://", "nats://bob:first@"),
        with_token.url().replace("nats://", "nats://bob:second@")
    );
    let both = with_user.url().replace("nats://", "nats://bob:in-url@");
    let cases = [
        (
            two.as_str(),
            Auth::None,
            "invalid bus setting servers: the server URLs carry different credentials; give them once",
        ),
        (
            both.as_str(),
            Auth::Token(Secret::new("as-auth")),
            "invalid bus setting servers: credentials are given both in a server URL and as auth; give them once",
        ),
    ];
    for (servers, auth, message) in cases {
        let err = round_trip(servers, auth, Tls::default()).await.unwrap_err();
        assert_eq!(err.to_string(), message);
    }
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
    let seed = other.seed().unwrap();
    let auth = Auth::NKey(Secret::new(seed.clone()));
    assert!(!format!("{auth:?}").contains(&seed), "the seed is in Debug");
    let err = round_trip(&server.url(), auth, Tls::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::Connect { .. }), "{err:?}");
    let text = error_chain(&err);
    assert!(
        text.to_lowercase().contains("authorization violation"),
        "{text}"
    );
    assert!(!text.contains(&seed) && !format!("{err:?}").contains(&seed));
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
    // A creds file whose seed is broken: the error names the file, never its secret.
    let broken = dir.path().join("broken.creds");
    let secret = "SUAPARTOFASEEDTHATMUSTNOTLEAK";
    std::fs::write(
        &broken,
        format!(
            "-----BEGIN NATS USER JWT-----\nnot.a.jwt\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{secret}\n------END USER NKEY SEED------\n"
        ),
    )
    .unwrap();
    let err = round_trip(&server.url(), Auth::CredsFile(broken), Tls::default())
        .await
        .unwrap_err();
    let text = error_chain(&err);
    assert!(!text.contains(secret), "the seed leaked: {text}");
    assert!(
        !format!("{err:?}").contains(secret),
        "the seed leaked: {err:?}"
    );
    assert!(!text.contains("not.a.jwt"), "the JWT leaked: {text}");
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
