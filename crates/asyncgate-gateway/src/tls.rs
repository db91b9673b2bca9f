//! TLS on the platform's listeners (rustls): a certificate and key from PEM files, TLS 1.2
//! and 1.3, ALPN `http/1.1`, optionally client certificates checked against a CA file
//! (mTLS). The files are read again when they change (looked at periodically) or on
//! SIGHUP; connections already open keep the certificate they started with, new ones get
//! the new one. Also a connection's stream, plain or TLS (clients' and backends').

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Where a listener's certificate, key and (for mTLS) client CA are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Clients must present a certificate issued by one of these CAs.
    pub client_ca_file: Option<PathBuf>,
}

/// A listener's TLS settings as loaded now, swapped whole on reload.
pub struct ServerTls {
    files: TlsFiles,
    config: ArcSwap<rustls::ServerConfig>,
    /// The files' contents when last loaded: a reload happens only when they differ.
    loaded: Mutex<Vec<Vec<u8>>>,
    reloads: AtomicU64,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .field("reloads", &self.reloads())
            .finish()
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

impl TlsFiles {
    fn contents(&self) -> Result<Vec<Vec<u8>>, String> {
        let mut all = vec![
            read(&self.cert_file, "certificate file")?,
            read(&self.key_file, "key file")?,
        ];
        if let Some(ca) = &self.client_ca_file {
            all.push(read(ca, "client CA file")?);
        }
        Ok(all)
    }

    /// A server configuration from these files' `contents`; the error names the file
    /// that is wrong and how.
    fn config(&self, contents: &[Vec<u8>]) -> Result<rustls::ServerConfig, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&contents[0])
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: not PEM certificates: {e}", self.cert_file.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "{} holds no PEM certificate",
                self.cert_file.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&contents[1])
            .map_err(|e| format!("{}: no PEM private key: {e}", self.key_file.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?;
        let builder = match (&self.client_ca_file, contents.get(2)) {
            (Some(path), Some(pem)) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert =
                        cert.map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: unusable CA certificate: {e}", path.display()))?;
                }
                if roots.is_empty() {
                    return Err(format!("{} holds no PEM certificate", path.display()));
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| format!("{}: {e}", path.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            format!(
                "{} and {} do not make a usable certificate and key: {e}",
                self.cert_file.display(),
                self.key_file.display()
            )
        })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ServerTls {
    /// Load `files`; the error names what is wrong.
    pub fn load(files: TlsFiles) -> Result<Arc<ServerTls>, String> {
        let contents = files.contents()?;
        let config = files.config(&contents)?;
        Ok(Arc::new(ServerTls {
            files,
            config: ArcSwap::from_pointee(config),
            loaded: Mutex::new(contents),
            reloads: AtomicU64::new(0),
        }))
    }

    /// The configuration new connections get.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.config.load_full()
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config())
    }

    /// Read the files again and, when they changed, use them for new connections.
    /// Returns whether they were reloaded; on error the previous ones stay in use.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let contents = self.files.contents()?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if *loaded == contents {
            return Ok(false);
        }
        let config = self.files.config(&contents)?;
        self.config.store(Arc::new(config));
        *loaded = contents;
        self.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// How many times new files were taken up.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }
}

/// Reload every listener's TLS files when they change (looked at every `every`) or on
/// SIGHUP, until `shutdown` fires. A failed reload is logged and the old files stay.
pub async fn follow_files(
    all: Vec<Arc<ServerTls>>,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if all.is_empty() {
        return;
    }
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let signalled = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick.tick() => {}
            _ = signalled => tracing::info!("SIGHUP: reading TLS files again"),
            _ = shutdown.changed() => return,
        }
        for tls in &all {
            match tls.reload_if_changed() {
                Ok(true) => {
                    tracing::info!(cert = %tls.files.cert_file.display(), "TLS certificate reloaded")
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("TLS files not reloaded, the previous ones stay: {e}"),
            }
        }
    }
}

/// A connection, plain or TLS (a client's or a backend's). The TLS state is boxed: it is
/// over a kilobyte, and a plain connection would carry its size.
pub enum MaybeTls<T> {
    Plain(TcpStream),
    Tls(Box<T>),
}

/// A client's connection to a listener.
pub type ClientStream = MaybeTls<tokio_rustls::server::TlsStream<TcpStream>>;

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
