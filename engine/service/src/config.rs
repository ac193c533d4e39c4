//! The service's configuration file (TOML).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Result, ServiceError};

/// What `isotach serve --config FILE` reads. Every field but `data_roots` and `token` has a
/// default; unknown fields are refused so that a typo is not silently ignored.
///
/// ```toml
/// listen = "127.0.0.1:50051"          # --listen wins
/// data_roots = ["/data", "out"]       # relative paths: from the config file's folder
/// max_concurrent_jobs = 1
/// max_queued_jobs = 8
/// workers_per_job = 2
/// progress_interval_ms = 1000
/// allow_remote_sources = false
///
/// [[token]]
/// name = "alice"                      # named in logs and in job records
/// secret = "a-long-random-string"
///
/// [tls]                               # optional: serve gRPC over TLS (clients use https://)
/// cert = "server.pem"                 # certificate chain, PEM; relative: from the file's folder
/// key = "server.key"                  # its private key, PEM
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Address to serve on (default `127.0.0.1:50051`); `isotach serve --listen` overrides it.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Folders a spec may read from and write to. A relative path in a spec is taken from the
    /// first root; a path outside every root is refused. At least one is required.
    pub data_roots: Vec<PathBuf>,
    /// Jobs running at once (default 1).
    #[serde(default = "default_max_concurrent_jobs")]
    pub max_concurrent_jobs: usize,
    /// Jobs waiting for a free slot (default 8); a submission beyond them is refused with
    /// RESOURCE_EXHAUSTED.
    #[serde(default = "default_max_queued_jobs")]
    pub max_queued_jobs: usize,
    /// Timely worker threads per job (default 2).
    #[serde(default = "default_workers_per_job")]
    pub workers_per_job: usize,
    /// How often a running job records its stage progress, milliseconds (default 1000).
    #[serde(default = "default_progress_interval_ms")]
    pub progress_interval_ms: u64,
    /// Whether specs may read `http(s)://`, `s3://`, `gs://` or `az://` sources (default false:
    /// only files under the data roots).
    #[serde(default)]
    pub allow_remote_sources: bool,
    /// Inference workers (`http://host:port`) that `infer` steps may name (default: none, so
    /// specs with an `infer` step are refused): a job must not make the server connect to hosts
    /// its operator did not list.
    #[serde(default)]
    pub inference_workers: Vec<String>,
    /// Address of the Prometheus endpoint (`GET /metrics`, no token); default: none. Keep it on
    /// loopback or behind the scraper's network.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// Bearer tokens: a call must carry `authorization: Bearer SECRET` for one of them.
    #[serde(default, rename = "token")]
    pub tokens: Vec<Token>,
    /// Serve gRPC over TLS with this identity (default: cleartext, for loopback and trusted
    /// networks). The metrics endpoint stays plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

/// The server's TLS identity, PEM files (checked when the config is read).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The tonic server TLS configuration of these files.
    pub fn server_config(&self) -> std::result::Result<tonic::transport::ServerTlsConfig, String> {
        isotach_proto::connect::server_tls(&self.cert, &self.key).map_err(|e| format!("[tls] {e}"))
    }
}

/// One client's bearer token.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Who holds it: named in logs and recorded as the submitter of its jobs.
    pub name: String,
    /// The secret itself (at least 16 characters).
    pub secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log.
        f.debug_struct("Token")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Shortest secret accepted: a guessable token is no authentication.
const MIN_SECRET_CHARS: usize = 16;

fn default_listen() -> String {
    "127.0.0.1:50051".to_owned()
}
fn default_max_concurrent_jobs() -> usize {
    1
}
fn default_max_queued_jobs() -> usize {
    8
}
fn default_workers_per_job() -> usize {
    2
}
fn default_progress_interval_ms() -> u64 {
    1000
}

impl ServiceConfig {
    /// Reads and checks `path`; relative data roots are taken from the file's folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ServiceError::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml_str(&text, base).map_err(|message| ServiceError::Config {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses and checks a config; relative data roots are taken from `base`.
    pub fn from_toml_str(text: &str, base: &Path) -> std::result::Result<Self, String> {
        let mut config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        if config.data_roots.is_empty() {
            return Err("data_roots is empty: name at least one folder jobs may use".into());
        }
        for root in &mut config.data_roots {
            let absolute = if root.is_absolute() {
                root.clone()
            } else {
                base.join(&*root)
            };
            *root = absolute
                .canonicalize()
                .map_err(|e| format!("data root {}: {e} (it must exist)", absolute.display()))?;
        }
        if config.tokens.is_empty() {
            return Err("no [[token]] is configured: every call would be refused".into());
        }
        for token in &config.tokens {
            if token.secret.chars().count() < MIN_SECRET_CHARS {
                return Err(format!(
                    "token {:?}: the secret has {} characters, at least {MIN_SECRET_CHARS} are required",
                    token.name,
                    token.secret.chars().count()
                ));
            }
        }
        if config.max_concurrent_jobs == 0 || config.workers_per_job == 0 {
            return Err(format!(
                "max_concurrent_jobs ({}) and workers_per_job ({}) must be at least 1",
                config.max_concurrent_jobs, config.workers_per_job
            ));
        }
        if config.progress_interval_ms == 0 {
            return Err("progress_interval_ms must be at least 1".into());
        }
        if let Some(tls) = &mut config.tls {
            for file in [&mut tls.cert, &mut tls.key] {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
            tls.server_config()?;
        }
        Ok(config)
    }

    /// The name of the token whose secret is `secret`, compared in constant time.
    pub fn token_name(&self, secret: &str) -> Option<&str> {
        self.tokens
            .iter()
            .find(|token| constant_time_eq(token.secret.as_bytes(), secret.as_bytes()))
            .map(|token| token.name.as_str())
    }
}

/// Equality whose time does not depend on where the inputs first differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_config_gets_the_documented_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = ServiceConfig::from_toml_str(
            "data_roots = [\".\"]\n[[token]]\nname = \"ci\"\nsecret = \"0123456789abcdef\"\n",
            dir.path(),
        )
        .expect("valid config");
        assert_eq!(config.listen, "127.0.0.1:50051");
        assert_eq!(config.max_concurrent_jobs, 1);
        assert_eq!(config.max_queued_jobs, 8);
        assert_eq!(
            config.data_roots,
            [dir.path().canonicalize().expect("canonical")]
        );
        assert_eq!(config.token_name("0123456789abcdef"), Some("ci"));
        assert_eq!(config.token_name("0123456789abcdeX"), None);
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn short_secrets_unknown_fields_and_missing_roots_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let short = ServiceConfig::from_toml_str(
            "data_roots = [\".\"]\n[[token]]\nname = \"ci\"\nsecret = \"short\"\n",
            dir.path(),
        );
        assert!(short.expect_err("short").contains("at least 16"));
        let typo = ServiceConfig::from_toml_str("data_root = [\".\"]\n", dir.path());
        assert!(typo.expect_err("typo").contains("data_root"));
        let missing = ServiceConfig::from_toml_str(
            "data_roots = [\"nope\"]\n[[token]]\nname = \"ci\"\nsecret = \"0123456789abcdef\"\n",
            dir.path(),
        );
        assert!(missing.expect_err("missing").contains("nope"));
    }
}
