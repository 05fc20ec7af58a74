//! Decentralised (JWT) auth for a test server: an operator, one account, one user,
//! and the user's `.creds` file, all generated in the test.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use nkeys::KeyPair;

/// The pieces of an operator-mode setup.
#[derive(Debug, Clone)]
pub struct JwtAuth {
    /// Lines for the server config (`operator`, `resolver`, `resolver_preload`).
    pub server_config: String,
    /// A `.creds` file for a user of the account.
    pub creds_file: PathBuf,
}

fn encode(claims: &serde_json::Value, signer: &KeyPair) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = b64.encode(claims.to_string());
    let signing_input = format!("{header}.{body}");
    let signature = signer.sign(signing_input.as_bytes()).expect("sign jwt");
    format!("{signing_input}.{}", b64.encode(signature))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl JwtAuth {
    /// Generates an operator, an account and a user; writes the user's creds in `dir`.
    pub fn generate(dir: &Path) -> JwtAuth {
        let operator = KeyPair::new_operator();
        let account = KeyPair::new_account();
        let user = KeyPair::new_user();
        let operator_jwt = encode(
            &serde_json::json!({
                "jti": nuid_like(), "iat": now(), "iss": operator.public_key(),
                "name": "sdk-test-operator", "sub": operator.public_key(),
                "nats": { "type": "operator", "version": 2 }
            }),
            &operator,
        );
        let account_jwt = encode(
            &serde_json::json!({
                "jti": nuid_like(), "iat": now(), "iss": operator.public_key(),
                "name": "sdk-test-account", "sub": account.public_key(),
                "nats": {
                    "type": "account", "version": 2,
                    "limits": { "subs": -1, "data": -1, "payload": -1, "imports": -1,
                                "exports": -1, "wildcards": true, "conn": -1, "leaf": -1 }
                }
            }),
            &operator,
        );
        let user_jwt = encode(
            &serde_json::json!({
                "jti": nuid_like(), "iat": now(), "iss": account.public_key(),
                "name": "sdk-test-user", "sub": user.public_key(),
                "nats": { "type": "user", "version": 2, "pub": {}, "sub": {},
                          "subs": -1, "data": -1, "payload": -1 }
            }),
            &account,
        );
        let seed = user.seed().expect("user seed");
        let creds = format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        );
        std::fs::create_dir_all(dir).expect("creds dir");
        let creds_file = dir.join("user.creds");
        std::fs::write(&creds_file, creds).expect("write creds");
        let server_config = format!(
            "operator: {operator_jwt}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {account_jwt}\n}}\n",
            account.public_key()
        );
        JwtAuth {
            server_config,
            creds_file,
        }
    }
}

fn nuid_like() -> String {
    let user = KeyPair::new_user();
    user.public_key()[1..21].to_owned()
}
