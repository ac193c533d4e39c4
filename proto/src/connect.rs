//! How every Isotach client reaches a server, and how a server takes TLS: one place that reads a
//! URL, a bearer token and certificate files, so that the CLI, wall nodes, sweeps, benchmarks and
//! the engine's inference client check them the same way and fail with the same messages.
//!
//! `http://` URLs connect in the clear; `https://` URLs connect over TLS (rustls) and trust the
//! system's roots, or only the CA named by [`ServerAddress::ca`] when one is given (as
//! `curl --cacert` does), so that a facility's private CA works without touching the system store.
//!
//! ```
//! use isotach_proto::connect::ServerAddress;
//!
//! let server = ServerAddress::new("https://wall-head.example:50051").with_token("s3cret-token-123");
//! assert!(server.endpoint().is_ok());
//! let refused = ServerAddress::new("wall-head:50051").endpoint().unwrap_err();
//! assert!(refused.to_string().contains("\"wall-head:50051\""));
//! ```

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig,
};

/// Why a server could not be reached, or its TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not `http://host:port` or `https://host:port`.
    #[error("server URL {url:?}: {message} (expected http://HOST:PORT or https://HOST:PORT)")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A CA was given for a server reached in the clear.
    #[error(
        "a CA certificate ({}) is given but the server URL {url:?} is not https://: use https:// \
         to connect over TLS, or drop the CA",
        ca.display()
    )]
    CaWithoutTls {
        /// The URL as given.
        url: String,
        /// The CA file.
        ca: PathBuf,
    },
    /// A certificate or key file is missing, unreadable or not PEM of the right kind.
    #[error("{what} {}: {message}", path.display())]
    File {
        /// Which file: "CA certificate", "TLS certificate", "TLS key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The token cannot travel as gRPC metadata.
    #[error("the token is not printable ASCII")]
    BadToken,
    /// The server answered TLS with a certificate this client does not trust.
    #[error(
        "the certificate of {url} is not trusted ({message}): give the CA that signed it \
         (isotach: --ca FILE or ISOTACH_CA)"
    )]
    Untrusted {
        /// The server's URL.
        url: String,
        /// rustls's reason.
        message: String,
    },
    /// The server could not be reached.
    #[error("cannot connect to {url}: {message}")]
    Unreachable {
        /// The server's URL.
        url: String,
        /// Why, with every cause.
        message: String,
    },
}

/// A server as a client reaches it: its URL, the bearer token sent with every call, and the CA
/// that signed its certificate (for `https://` servers whose CA is not in the system's store).
#[derive(Clone, Default)]
pub struct ServerAddress {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// Bearer token, one of the server config's `[[token]]` secrets.
    pub token: Option<String>,
    /// PEM file of the CA to trust instead of the system's roots.
    pub ca: Option<PathBuf>,
}

impl std::fmt::Debug for ServerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAddress")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca", &self.ca)
            .finish()
    }
}

impl ServerAddress {
    /// A server at `url`, no token, the system's roots.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Sends `token` with every call.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Trusts the CA in the PEM file `ca` (and only it) for an `https://` server.
    #[must_use]
    pub fn with_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.ca = Some(ca.into());
        self
    }

    /// The endpoint of the server, TLS set up for `https://`: the URL and the CA file are checked
    /// here, before any connection is tried.
    pub fn endpoint(&self) -> Result<Endpoint, ConnectError> {
        let bad_url = |message: String| ConnectError::BadUrl {
            url: self.url.clone(),
            message,
        };
        let tls = if self.url.starts_with("https://") {
            true
        } else if self.url.starts_with("http://") {
            false
        } else {
            return Err(bad_url("the scheme must be http or https".into()));
        };
        let endpoint =
            Endpoint::from_shared(self.url.clone()).map_err(|e| bad_url(e.to_string()))?;
        if endpoint.uri().host().is_none_or(str::is_empty) {
            return Err(bad_url("there is no host".into()));
        }
        if !tls {
            return match &self.ca {
                Some(ca) => Err(ConnectError::CaWithoutTls {
                    url: self.url.clone(),
                    ca: ca.clone(),
                }),
                None => Ok(endpoint),
            };
        }
        let config = match &self.ca {
            Some(ca) => ClientTlsConfig::new().ca_certificate(read_ca(ca)?),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        endpoint
            .tls_config(config)
            .map_err(|e| bad_url(error_chain(&e)))
    }

    /// The interceptor that sends the token.
    pub fn bearer(&self) -> Result<Bearer, ConnectError> {
        self.token
            .as_deref()
            .map(|t| format!("Bearer {t}").parse::<MetadataValue<Ascii>>())
            .transpose()
            .map(Bearer)
            .map_err(|_| ConnectError::BadToken)
    }

    /// Connects now: the channel and the token's interceptor.
    pub async fn connect(&self) -> Result<(Channel, Bearer), ConnectError> {
        let bearer = self.bearer()?;
        let channel = self
            .endpoint()?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| self.connect_error(&e))?;
        Ok((channel, bearer))
    }

    /// Names what went wrong in a failed connection: an untrusted certificate apart from a server
    /// that is not there.
    pub fn connect_error(&self, error: &tonic::transport::Error) -> ConnectError {
        let message = error_chain(error);
        match untrusted_certificate(error) {
            Some(reason) => ConnectError::Untrusted {
                url: self.url.clone(),
                message: reason,
            },
            None => ConnectError::Unreachable {
                url: self.url.clone(),
                message,
            },
        }
    }
}

/// Adds `authorization: Bearer TOKEN` to every call (nothing without a token).
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A server's TLS identity: its certificate chain and private key, PEM files, checked before the
/// server listens.
pub fn server_tls(cert: &Path, key: &Path) -> Result<ServerTlsConfig, ConnectError> {
    let cert_pem = read_pem_file("TLS certificate", cert)?;
    certificates("TLS certificate", cert, &cert_pem)?;
    let key_pem = read_pem_file("TLS key", key)?;
    PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| ConnectError::File {
        what: "TLS key",
        path: key.to_owned(),
        message: format!("no PEM private key ({e})"),
    })?;
    Ok(ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem)))
}

fn read_ca(path: &Path) -> Result<Certificate, ConnectError> {
    let pem = read_pem_file("CA certificate", path)?;
    certificates("CA certificate", path, &pem)?;
    Ok(Certificate::from_pem(pem))
}

fn read_pem_file(what: &'static str, path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|e| ConnectError::File {
        what,
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Checks that `pem` holds at least one certificate and nothing malformed: rustls would skip what
/// it cannot parse and fail later, at the first handshake, without naming the file.
fn certificates(what: &'static str, path: &Path, pem: &[u8]) -> Result<usize, ConnectError> {
    let bad = |message: String| ConnectError::File {
        what,
        path: path.to_owned(),
        message,
    };
    let mut count = 0;
    for certificate in CertificateDer::pem_slice_iter(pem) {
        certificate.map_err(|e| bad(format!("malformed PEM ({e})")))?;
        count += 1;
    }
    if count == 0 {
        return Err(bad(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    Ok(count)
}

/// The error and every cause, joined: tonic's own message is only "transport error".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let text = error.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = error.source();
    }
    message
}

/// rustls's reason when the handshake failed on the server's certificate. rustls's error travels
/// inside an `io::Error`, whose `source()` skips it, so each `io::Error` is opened by hand.
fn untrusted_certificate(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        let inner = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(error), inner].into_iter().flatten() {
            if let Some(
                tls @ (rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented),
            ) = candidate.downcast_ref::<rustls::Error>()
            {
                return Some(tls.to_string());
            }
        }
        cause = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_a_scheme_or_host_are_refused_naming_the_url() {
        for url in ["localhost:50051", "ftp://host:1", "http://"] {
            let error = ServerAddress::new(url).endpoint().unwrap_err();
            assert!(
                matches!(error, ConnectError::BadUrl { .. }),
                "{url}: {error}"
            );
            assert!(error.to_string().contains(&format!("{url:?}")), "{error}");
        }
    }

    #[test]
    fn a_ca_for_a_cleartext_url_is_refused() {
        let error = ServerAddress::new("http://127.0.0.1:1")
            .with_ca("/etc/isotach/ca.pem")
            .endpoint()
            .unwrap_err();
        assert!(error.to_string().contains("/etc/isotach/ca.pem"), "{error}");
        assert!(error.to_string().contains("not https://"), "{error}");
    }

    #[test]
    fn missing_and_non_pem_ca_files_are_named() {
        let missing = ServerAddress::new("https://127.0.0.1:1")
            .with_ca("/nonexistent/ca.pem")
            .endpoint()
            .unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("CA certificate /nonexistent/ca.pem:"),
            "{missing}"
        );
        let dir = std::env::temp_dir().join(format!("isotach-connect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("ca.pem");
        std::fs::write(&not_pem, "just text\n").unwrap();
        let error = ServerAddress::new("https://127.0.0.1:1")
            .with_ca(&not_pem)
            .endpoint()
            .unwrap_err();
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
        let key = dir.join("key.pem");
        std::fs::write(&key, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let error = server_tls(&key, &key).unwrap_err();
        assert!(error.to_string().contains("TLS certificate"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tokens_travel_as_bearer_metadata_and_stay_out_of_debug_output() {
        let server = ServerAddress::new("http://127.0.0.1:1").with_token("s3cret-token-123");
        assert!(!format!("{server:?}").contains("s3cret"));
        let mut bearer = server.bearer().unwrap();
        let request =
            tonic::service::Interceptor::call(&mut bearer, tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer s3cret-token-123"
        );
        assert!(matches!(
            ServerAddress::new("http://h:1")
                .with_token("bad\ntoken")
                .bearer(),
            Err(ConnectError::BadToken)
        ));
    }
}
