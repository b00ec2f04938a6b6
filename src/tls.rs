//! HTTP clients for the services this one calls (Keystone, a mirrored Nova), with https when
//! the build has the `tls` feature (the default). Certificates are checked against a CA file
//! when one is configured, else the system's bundle (`SSL_CERT_FILE`, or where the common
//! distributions keep it); there is deliberately no switch to skip the check.

use std::time::Duration;

/// Where distributions keep the system's CA bundle (Debian/Ubuntu/Alpine, Fedora/RHEL, SUSE).
#[cfg(feature = "tls")]
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Makes clients (awc's are bound to one thread) that share one TLS setup, read once.
#[derive(Clone)]
pub struct Clients {
    timeout: Duration,
    #[cfg(feature = "tls")]
    config: std::sync::Arc<rustls::ClientConfig>,
}

impl Clients {
    /// `ca_file` (PEM) replaces the system's roots when not empty.
    pub fn new(ca_file: &str, timeout: Duration) -> Result<Clients, String> {
        #[cfg(not(feature = "tls"))]
        if !ca_file.is_empty() {
            return Err(format!(
                "ca_file {ca_file} is set, but this build has no https (build with the `tls` feature)"
            ));
        }
        Ok(Clients {
            timeout,
            #[cfg(feature = "tls")]
            config: config(ca_file)?,
        })
    }

    pub fn client(&self) -> awc::Client {
        let builder = awc::Client::builder().timeout(self.timeout);
        #[cfg(feature = "tls")]
        let builder = builder
            .connector(awc::Connector::new().rustls_0_23(std::sync::Arc::clone(&self.config)));
        builder.finish()
    }
}

#[cfg(feature = "tls")]
fn config(ca_file: &str) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use std::sync::Arc;
    let roots = roots(ca_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(feature = "tls")]
fn roots(ca_file: &str) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let from_env = std::env::var("SSL_CERT_FILE").unwrap_or_default();
    let path = if !ca_file.is_empty() {
        ca_file.to_string()
    } else if !from_env.is_empty() {
        from_env
    } else {
        match SYSTEM_BUNDLES
            .iter()
            .find(|p| std::path::Path::new(p).exists())
        {
            Some(p) => (*p).to_string(),
            None => {
                log::warn!(
                    "no CA bundle found (set SSL_CERT_FILE or ca_file): https peers will be refused"
                );
                return Ok(rustls::RootCertStore::empty());
            }
        }
    };
    let unreadable = |e: &dyn std::fmt::Display| format!("CA file {path}: {e}");
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&path).map_err(|e| unreadable(&e))? {
        let cert = cert.map_err(|e| unreadable(&e))?;
        store.add(cert).map_err(|e| unreadable(&e))?;
    }
    if store.is_empty() {
        return Err(unreadable(&"no certificate in it"));
    }
    Ok(store)
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_is_read_and_a_bad_one_is_named() {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
        assert_eq!(roots(fixture).unwrap().len(), 1);
        let missing = roots("/nonexistent/ca.pem").unwrap_err();
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/server.key");
        let not_a_cert = roots(key).unwrap_err();
        assert!(not_a_cert.contains("no certificate"), "{not_a_cert}");
    }
}
