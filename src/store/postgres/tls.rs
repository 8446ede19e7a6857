//! How the PostgreSQL store reaches its server: plain TCP, or TLS with the server's certificate
//! verified, chosen by the URL's libpq options.
//!
//! - `sslmode=require`, `verify-ca` or `verify-full`: TLS, and the server must prove who it is: its
//!   certificate must chain to a trusted root and name the host of the URL (as libpq's
//!   `verify-full`; Verbatim never makes an unverified TLS connection, which would stop an
//!   eavesdropper but not an impostor).
//! - `sslrootcert=PATH`: the trusted roots are the PEM certificates in PATH (a private CA, e.g. a
//!   cloud provider's RDS bundle); without it, or with `sslrootcert=system`, Mozilla's roots.
//! - `sslcert=PATH&sslkey=PATH`: Verbatim proves who *it* is too, with this PEM certificate (chain)
//!   and private key (PKCS#8, PKCS#1 or SEC1), for servers whose `pg_hba.conf` asks for `cert`
//!   authentication or `clientcert=verify-full`.
//! - No `sslmode`, or `disable` / `allow` / `prefer`: plain TCP, for a private network or a
//!   loopback tunnel (libpq's `prefer` would try unverified TLS first).

use std::sync::Arc;

use ::postgres::config::SslMode;
use ::postgres::{Client, Config, NoTls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::{StoreError, StoreResult};

/// A parsed URL and how to connect to it.
#[derive(Clone)]
pub(super) struct Target {
    pub config: Config,
    transport: Transport,
    /// The URL without its password, for errors.
    name: String,
}

#[derive(Clone)]
enum Transport {
    Plain,
    Tls(MakeRustlsConnect),
}

impl Target {
    /// Parses `url` (`postgres://…`, with libpq's `sslmode` and `sslrootcert` options if wanted);
    /// errors name `name`, the URL without its password.
    pub fn parse(url: &str, name: &str) -> StoreResult<Self> {
        let open_error = |detail: String| StoreError::Open { path: name.to_string(), detail };
        let (url, options) = take_tls_options(url);
        let mut config = url.parse::<Config>().map_err(|e| open_error(e.to_string()))?;
        let tls = match options.mode.as_deref() {
            None | Some("disable" | "allow" | "prefer") => false,
            Some("require" | "verify-ca" | "verify-full") => true,
            Some(other) => {
                return Err(open_error(format!(
                    "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )))
            }
        };
        if !tls {
            for (given, option) in [(&options.root_cert, "sslrootcert"), (&options.cert, "sslcert"), (&options.key, "sslkey")] {
                if given.is_some() {
                    return Err(open_error(format!("{option} is given but sslmode is not require, verify-ca or verify-full: the connection would not use it")));
                }
            }
            config.ssl_mode(SslMode::Disable);
            return Ok(Self { config, transport: Transport::Plain, name: name.to_string() });
        }
        let roots = match options.root_cert.as_deref() {
            None | Some("system") => rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
            Some(path) => roots_from_pem(path).map_err(open_error)?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| open_error(e.to_string()))?
            .with_root_certificates(roots);
        let client = match (options.cert.as_deref(), options.key.as_deref()) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key_path)) => {
                let (chain, key) = client_identity(cert, key_path).map_err(open_error)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| open_error(format!("sslcert {cert} and sslkey {key_path}: {e}")))?
            }
            (Some(_), None) | (None, Some(_)) => return Err(open_error("sslcert and sslkey go together: give both (the client certificate and its private key) or neither".into())),
        };
        config.ssl_mode(SslMode::Require);
        Ok(Self { config, transport: Transport::Tls(MakeRustlsConnect::new(client)), name: name.to_string() })
    }

    #[cfg(test)]
    pub fn uses_tls(&self) -> bool {
        matches!(self.transport, Transport::Tls(_))
    }

    /// A new connection; a failure names the database and its causes.
    pub fn connect(&self) -> StoreResult<Client> {
        let connected = match &self.transport {
            Transport::Plain => self.config.connect(NoTls),
            Transport::Tls(tls) => self.config.connect(tls.clone()),
        };
        connected.map_err(|e| StoreError::Open { path: self.name.clone(), detail: with_causes(&e) })
    }
}

/// An error and its causes ("error performing TLS handshake: invalid peer certificate:
/// UnknownIssuer"): the postgres crate's message alone does not say why.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// The client certificate chain and private key, from PEM files.
fn client_identity(cert: &str, key: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("sslcert {cert}: cannot read PEM certificates: {e}"))?;
    if chain.is_empty() {
        return Err(format!("sslcert {cert}: no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("sslkey {key}: cannot read a PEM private key: {e}"))?;
    Ok((chain, key))
}

fn roots_from_pem(path: &str) -> Result<rustls::RootCertStore, String> {
    let certificates: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("sslrootcert {path}: cannot read PEM certificates: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(format!("sslrootcert {path}: no usable CA certificate in it"));
    }
    Ok(roots)
}

#[derive(Debug, Default, PartialEq)]
struct TlsOptions {
    mode: Option<String>,
    root_cert: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

/// Splits libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` off a URL's query (the
/// postgres crate knows only three of libpq's six modes and no certificate files),
/// percent-decoding their values.
fn take_tls_options(url: &str) -> (String, TlsOptions) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), TlsOptions::default()) };
    let mut options = TlsOptions::default();
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => options.mode = Some(percent_decode(v)),
            Some(("sslrootcert", v)) => options.root_cert = Some(percent_decode(v)),
            Some(("sslcert", v)) => options.cert = Some(percent_decode(v)),
            Some(("sslkey", v)) => options.key = Some(percent_decode(v)),
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    (url, options)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_split_off_the_url_and_decoded() {
        let (url, o) = take_tls_options("postgres://v:p@db:5432/verbatim?sslmode=verify-full&connect_timeout=5&sslrootcert=%2Fetc%2Fca%20bundle.pem");
        assert_eq!(url, "postgres://v:p@db:5432/verbatim?connect_timeout=5");
        assert_eq!(o, TlsOptions { mode: Some("verify-full".into()), root_cert: Some("/etc/ca bundle.pem".into()), ..Default::default() });
        let (url, o) = take_tls_options("postgres://v@db/verbatim?sslcert=%2Fk%2Fc.pem&sslmode=require&sslkey=/k/c.key");
        assert_eq!(url, "postgres://v@db/verbatim");
        assert_eq!((o.cert.as_deref(), o.key.as_deref()), (Some("/k/c.pem"), Some("/k/c.key")));
        let (url, o) = take_tls_options("postgres://v@db/verbatim");
        assert_eq!((url.as_str(), o), ("postgres://v@db/verbatim", TlsOptions::default()));
    }

    #[test]
    fn the_mode_decides_the_transport_and_bad_options_are_named() {
        let parse = |url: &str| Target::parse(url, "db");
        assert!(!parse("postgres://v@db/verbatim").unwrap().uses_tls());
        assert!(!parse("postgres://v@db/verbatim?sslmode=prefer").unwrap().uses_tls());
        for mode in ["require", "verify-ca", "verify-full"] {
            assert!(parse(&format!("postgres://v@db/verbatim?sslmode={mode}")).unwrap().uses_tls(), "{mode}");
        }
        let err = parse("postgres://v@db/verbatim?sslmode=always").err().unwrap().to_string();
        assert!(err.contains("sslmode=always") && err.contains("verify-full"), "{err}");
        let err = parse("postgres://v@db/verbatim?sslrootcert=/ca.pem").err().unwrap().to_string();
        assert!(err.contains("sslrootcert") && err.contains("sslmode"), "{err}");
        let err = parse("postgres://v@db/verbatim?sslmode=require&sslrootcert=/nonexistent/ca.pem").err().unwrap().to_string();
        assert!(err.contains("sslrootcert /nonexistent/ca.pem"), "{err}");
        // A client certificate: only over TLS, never without its key, and read when parsed.
        let err = parse("postgres://v@db/verbatim?sslcert=/c.pem&sslkey=/c.key").err().unwrap().to_string();
        assert!(err.contains("sslcert") && err.contains("sslmode"), "{err}");
        let err = parse("postgres://v@db/verbatim?sslmode=require&sslcert=/c.pem").err().unwrap().to_string();
        assert!(err.contains("sslcert and sslkey go together"), "{err}");
        let err = parse("postgres://v@db/verbatim?sslmode=require&sslkey=/c.key").err().unwrap().to_string();
        assert!(err.contains("sslcert and sslkey go together"), "{err}");
        let err = parse("postgres://v@db/verbatim?sslmode=require&sslcert=/nonexistent/c.pem&sslkey=/nonexistent/c.key").err().unwrap().to_string();
        assert!(err.contains("sslcert /nonexistent/c.pem"), "{err}");
    }
}
