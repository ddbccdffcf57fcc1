//! Client side of the tapvault server, for `tapvault recover` and the agent:
//! a channel whose TLS trusts exactly one certificate (pinned by its SHA-256
//! fingerprint, whatever name it carries) and a bearer-token interceptor.

use anyhow::{anyhow, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint, Uri};

/// How the server's certificate is checked.
#[derive(Clone, Debug)]
pub enum Trust {
    /// No TLS (loopback tests, or a TLS-terminating proxy in front).
    Plaintext,
    /// TLS, accepting only the certificate with this SHA-256 (of its DER).
    Pinned([u8; 32]),
}

impl Trust {
    /// From a PEM certificate file (the server's `tls.cert`).
    pub fn from_cert_file(path: &std::path::Path) -> Result<Self> {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_fingerprint(&crate::tls::cert_fingerprint(&pem)?)
    }

    /// From a hex SHA-256 fingerprint (colons allowed, as `openssl x509
    /// -fingerprint -sha256` prints it).
    pub fn from_fingerprint(hex_fp: &str) -> Result<Self> {
        let clean: String = hex_fp.chars().filter(|c| *c != ':').collect();
        let b = hex::decode(clean.trim()).context("fingerprint is not hex")?;
        let a: [u8; 32] = b
            .try_into()
            .map_err(|b: Vec<u8>| anyhow!("fingerprint is {} bytes, want 32", b.len()))?;
        Ok(Trust::Pinned(a))
    }
}

#[derive(Debug)]
struct PinVerifier {
    pin: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        // The pin is the whole identity: names and expiry do not matter for
        // a self-signed certificate the operator copied over.
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if got == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "server certificate fingerprint {} does not match the pinned {}",
                hex::encode(got),
                hex::encode(self.pin)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A lazily connecting channel to `addr` (`host:port`).
pub fn channel(addr: &str, trust: &Trust) -> Result<Channel> {
    let ep = Endpoint::from_shared(format!("http://{addr}"))
        .with_context(|| format!("bad server address {addr:?}"))?
        .tcp_nodelay(true)
        // Proof files, pages of leaves and backups are megabytes: HTTP/2's
        // default 64 KiB window makes each of them a chain of window
        // updates (recovery pulls hundreds of megabytes).
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(8 << 20))
        .connect_timeout(std::time::Duration::from_secs(10));
    match trust {
        Trust::Plaintext => Ok(ep.connect_lazy()),
        Trust::Pinned(pin) => {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .context("TLS versions")?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinVerifier {
                    pin: *pin,
                    provider,
                }))
                .with_no_client_auth();
            cfg.alpn_protocols = vec![b"h2".to_vec()];
            let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
            let svc = tower::service_fn(move |uri: Uri| {
                let connector = connector.clone();
                async move {
                    let host = uri.host().unwrap_or("localhost").to_string();
                    let port = uri.port_u16().unwrap_or(10029);
                    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
                    tcp.set_nodelay(true)?;
                    // SNI needs a name; an IP literal works too.
                    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                    let tls = connector.connect(name, tcp).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
                }
            });
            Ok(ep.connect_with_connector_lazy(svc))
        }
    }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn new(token: Option<&str>) -> Result<Self> {
        Ok(Bearer(
            token
                .map(|t| format!("Bearer {}", t.trim()).parse())
                .transpose()
                .map_err(|_| anyhow!("token has characters not allowed in a header"))?,
        ))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut req: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

pub type BackupClient = crate::proto::tapvault_v1::backup_client::BackupClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;
pub type UniverseClient = crate::proto::universerpc::universe_client::UniverseClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

/// Clients of both services over one channel.
pub fn clients(ch: Channel, token: Option<&str>) -> Result<(BackupClient, UniverseClient)> {
    let b = Bearer::new(token)?;
    Ok((
        crate::proto::tapvault_v1::backup_client::BackupClient::with_interceptor(
            ch.clone(),
            b.clone(),
        )
        .max_decoding_message_size(crate::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(crate::MAX_MESSAGE_BYTES),
        crate::proto::universerpc::universe_client::UniverseClient::with_interceptor(ch, b)
            .max_decoding_message_size(crate::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::MAX_MESSAGE_BYTES),
    ))
}

pub type AdminClient = crate::proto::tapvault_v1::admin_client::AdminClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

pub fn admin_client(ch: Channel, token: Option<&str>) -> Result<AdminClient> {
    Ok(
        crate::proto::tapvault_v1::admin_client::AdminClient::with_interceptor(
            ch,
            Bearer::new(token)?,
        ),
    )
}

pub type LogClient = crate::proto::tapvault_v1::log_client::LogClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

/// A client of the receipt log (`tapvault.v1.Log`).
pub fn log_client(ch: Channel, token: Option<&str>) -> Result<LogClient> {
    Ok(
        crate::proto::tapvault_v1::log_client::LogClient::with_interceptor(ch, Bearer::new(token)?)
            .max_decoding_message_size(crate::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::MAX_MESSAGE_BYTES),
    )
}
