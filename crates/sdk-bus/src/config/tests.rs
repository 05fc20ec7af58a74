use super::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> Result<BusConfig, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    BusConfig::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn nats_url_may_list_a_cluster() {
    let c = env(&[("NATS_URL", "nats://127.0.0.1:4222, nats://127.0.0.1:4223")]).unwrap();
    assert_eq!(
        c.servers(),
        ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
    );
    assert!(!env(&[]).unwrap().has_servers());
}

#[test]
fn every_bad_variable_is_named() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("NATS_URL", "http://x:4222")],
            "invalid bus setting NATS_URL: \"http://x:4222\" has scheme \"http\"; use nats, tls, ws or wss",
        ),
        (
            &[("NATS_URL", "nats://x:99999")],
            "invalid bus setting NATS_URL: \"nats://x:99999\" has an invalid port \"99999\"",
        ),
        (
            &[("NATS_URL", " , ")],
            "invalid bus setting NATS_URL: \" , \" lists no server",
        ),
        (
            &[("NATS_USER", "u")],
            "invalid bus setting NATS_PASSWORD: is required when NATS_USER is set",
        ),
        (
            &[("NATS_TOKEN", "t"), ("NATS_CREDS", "/x")],
            "invalid bus setting NATS_TOKEN/NATS_USER/NATS_NKEY_SEED/NATS_CREDS: set only one way to authenticate",
        ),
        (
            &[("NATS_CERT", "c.pem")],
            "invalid bus setting NATS_KEY: is required when NATS_CERT is set",
        ),
        (
            &[("NATS_TLS_REQUIRED", "maybe")],
            "invalid bus setting NATS_TLS_REQUIRED: \"maybe\" is not a boolean (true or false)",
        ),
        (
            &[("NATS_REQUEST_TIMEOUT_MS", "soon")],
            "invalid bus setting NATS_REQUEST_TIMEOUT_MS: \"soon\" is not a whole number",
        ),
        (
            &[("NATS_REQUEST_TIMEOUT_MS", "0")],
            "invalid bus setting request_timeout: must be longer than zero",
        ),
        (
            &[("NATS_SUBSCRIPTION_CAPACITY", "0")],
            "invalid bus setting subscription_capacity: must be at least 1",
        ),
        // Past the runtime's channel limit this panicked at the first subscribe.
        (
            &[("NATS_SUBSCRIPTION_CAPACITY", "18446744073709551615")],
            "invalid bus setting subscription_capacity: 18446744073709551615 is over the limit of 16777216",
        ),
        (
            &[("NATS_RECONNECT_BUFFER", "18446744073709551615")],
            "invalid bus setting reconnect_buffer: 18446744073709551615 is over the limit of 16777216",
        ),
        (
            &[("NATS_INBOX_TENANT", "Bad Tenant")],
            "invalid bus setting NATS_INBOX_TENANT: invalid tenant id \"Bad Tenant\": character 'B' at byte 0 is not allowed; use [a-z0-9_-]",
        ),
    ];
    for (vars, message) in cases {
        assert_eq!(env(vars).unwrap_err().to_string(), *message, "{vars:?}");
    }
}

#[test]
fn secrets_are_hidden_in_debug_output() {
    let c = env(&[
        ("NATS_URL", "nats://127.0.0.1:4222"),
        ("NATS_USER", "alice"),
        ("NATS_PASSWORD", "hunter2"),
    ])
    .unwrap();
    let text = format!("{c:?}");
    assert!(text.contains("alice") && text.contains("***"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let c = env(&[("NATS_TOKEN", "tok-123")]).unwrap();
    assert!(!format!("{c:?}").contains("tok-123"));
}

#[test]
fn backoff_doubles_up_to_the_cap_with_jitter() {
    let p = ReconnectPolicy {
        max_attempts: None,
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        jitter: 0.5,
    };
    for attempt in 1..10 {
        let d = p.delay(attempt);
        let base = Duration::from_millis(100 * 2u64.pow(u32::try_from(attempt - 1).unwrap()))
            .min(Duration::from_secs(1));
        assert!(
            d <= base && d >= base / 2,
            "attempt {attempt}: {d:?} vs {base:?}"
        );
    }
}
