//! Certificates generated inside the test: a CA, a server certificate for
//! `127.0.0.1`/`localhost`, and a client certificate for mutual TLS.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// PEM files of a throw-away PKI, written into a directory the caller owns.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// The CA certificate that signed both leaf certificates.
    pub ca_cert: PathBuf,
    /// The server certificate (SANs `127.0.0.1` and `localhost`), also valid as a
    /// client certificate, so cluster nodes can present it on routes with `verify`.
    pub server_cert: PathBuf,
    /// The server key.
    pub server_key: PathBuf,
    /// A client certificate for mutual TLS.
    pub client_cert: PathBuf,
    /// The client key.
    pub client_key: PathBuf,
}

impl TlsMaterial {
    /// Generates a CA and two leaf certificates into `dir`.
    pub fn generate(dir: &Path) -> TlsMaterial {
        std::fs::create_dir_all(dir).expect("create tls dir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sdk test CA");
        let ca_key = KeyPair::generate().expect("ca key");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca cert");

        let leaf = |names: Vec<String>, purposes: Vec<ExtendedKeyUsagePurpose>, cn: &str| {
            let mut params = CertificateParams::new(names).expect("leaf params");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = purposes;
            let key = KeyPair::generate().expect("leaf key");
            let cert = params.signed_by(&key, &ca).expect("sign leaf");
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key_pem) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            // A cluster node also dials the other nodes with it, as a client.
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            "127.0.0.1",
        );
        let (client_pem, client_key_pem) = leaf(
            vec!["client.sdk.test".into()],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
            "sdk test client",
        );

        let write = |name: &str, contents: &str| {
            let path = dir.join(name);
            std::fs::write(&path, contents).expect("write pem");
            path
        };
        TlsMaterial {
            ca_cert: write("ca.pem", &ca.pem()),
            server_cert: write("server.pem", &server_pem),
            server_key: write("server-key.pem", &server_key_pem),
            client_cert: write("client.pem", &client_pem),
            client_key: write("client-key.pem", &client_key_pem),
        }
    }
}
