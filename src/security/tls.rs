//! TLS for the SSL and SASL_SSL listeners (rustls with aws-lc-rs; no OpenSSL). The
//! certificate chain, key and CA bundle are PEM files; they are read again when they change on
//! disk, so a certificate rotates without a restart (new handshakes use it; established
//! connections keep theirs).

use parking_lot::{Mutex, RwLock};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

/// Whether TLS clients present a certificate (Kafka's `ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate is asked for.
    None,
    /// Asked for; a client without one is still served.
    Requested,
    /// A client without a certificate the CA signed is refused in the handshake.
    Required,
}

impl ClientAuth {
    /// Parses `none`, `requested` or `required`.
    pub fn parse(s: &str) -> anyhow::Result<ClientAuth> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            other => anyhow::bail!("ssl.client.auth must be none, requested or required, not {other:?}"),
        })
    }
}

/// Where the TLS material lives.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, the node's own certificate first.
    pub certificate: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle that client certificates must chain to (needed unless `client_auth` is
    /// `None`).
    pub ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

/// The current TLS acceptor, rebuilt when the files change.
pub struct TlsServer {
    files: TlsFiles,
    acceptor: RwLock<TlsAcceptor>,
    /// A digest of each file's content when last loaded.
    loaded: Mutex<Vec<Option<[u8; 32]>>>,
}

impl TlsServer {
    /// Loads `files`; fails on a missing, unreadable or mismatched certificate, key or CA.
    pub fn load(files: TlsFiles) -> anyhow::Result<Arc<TlsServer>> {
        let stamps = stamps(&files);
        let acceptor = TlsAcceptor::from(Arc::new(server_config(&files)?));
        Ok(Arc::new(TlsServer {
            files,
            acceptor: RwLock::new(acceptor),
            loaded: Mutex::new(stamps),
        }))
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.read().clone()
    }

    /// Reloads the files if any changed since they were last loaded; `Ok(true)` when the new
    /// material is in use. A bad new file leaves the old material in use.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let now = stamps(&self.files);
        if *self.loaded.lock() == now {
            return Ok(false);
        }
        let config = server_config(&self.files);
        // Noted even when the new files are bad, so they are not read again until they change.
        *self.loaded.lock() = now;
        *self.acceptor.write() = TlsAcceptor::from(Arc::new(config?));
        Ok(true)
    }

    /// Checks the files every `every` for as long as the node runs.
    pub fn spawn_reloader(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        crate::tasks::spawn_essential("tls-reload", async move {
            let mut ticker = tokio::time::interval(every.max(Duration::from_millis(100)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let checked = tls.clone();
                match tokio::task::spawn_blocking(move || checked.reload_if_changed()).await {
                    Ok(Ok(true)) => {
                        tracing::info!(certificate = %tls.files.certificate.display(), "TLS certificate reloaded")
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "TLS files changed but could not be loaded; the previous ones stay in use")
                    }
                    Err(e) => tracing::error!(error = %e, "TLS reload check failed"),
                }
            }
        })
    }
}

/// A digest of each file's content (`None` for one that cannot be read): a replacement with
/// the same size and modification time is still seen. The files are small PEM files, read on
/// the blocking pool every `ssl.reload.interval.ms`.
fn stamps(files: &TlsFiles) -> Vec<Option<[u8; 32]>> {
    use sha2::Digest;
    let paths = [Some(&files.certificate), Some(&files.key), files.ca.as_ref()];
    paths
        .iter()
        .flatten()
        .map(|p| {
            std::fs::read(p)
                .ok()
                .map(|content| sha2::Sha256::digest(content).into())
        })
        .collect()
}

/// A rustls server configuration from the files.
fn server_config(files: &TlsFiles) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = certificates(&files.certificate)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow::anyhow!("ssl.key.location {}: {e}", files.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match files.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let ca = files
                .ca
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("ssl.client.auth = {auth:?} needs ssl.ca.location"))?;
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots.add(cert)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match auth {
                ClientAuth::Requested => verifier.allow_unauthenticated().build()?,
                _ => verifier.build()?,
            };
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("ssl.certificate.location / ssl.key.location: {e}"))
}

/// The certificates of a PEM file (at least one).
fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{}: no certificate in it", path.display());
    Ok(certs)
}

/// The principal a client certificate names: `User:<subject CN>` (`None` without a CN).
pub fn principal_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(format!("User:{cn}"))
}
