//! The server's TLS identity: a self-signed certificate generated on first
//! start into the data dir (like tapd's tls.cert), reused afterwards.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    pub fn in_dir(dir: &Path) -> Self {
        TlsFiles {
            cert: dir.join("tls.cert"),
            key: dir.join("tls.key"),
        }
    }

    /// Loads the pair, generating it if neither file exists.
    pub fn load_or_create(&self, extra_names: &[String]) -> Result<(Vec<u8>, Vec<u8>)> {
        if !self.cert.exists() && !self.key.exists() {
            let mut names = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ];
            names.extend(extra_names.iter().cloned());
            let ck = rcgen::generate_simple_self_signed(names)
                .context("generating a TLS certificate")?;
            if let Some(d) = self.cert.parent() {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            }
            write_private(&self.key, ck.signing_key.serialize_pem().as_bytes())?;
            std::fs::write(&self.cert, ck.cert.pem())
                .with_context(|| format!("writing {}", self.cert.display()))?;
            tracing::info!(
                "generated a self-signed TLS certificate at {}",
                self.cert.display()
            );
        }
        let cert = std::fs::read(&self.cert)
            .with_context(|| format!("reading {}", self.cert.display()))?;
        let key =
            std::fs::read(&self.key).with_context(|| format!("reading {}", self.key.display()))?;
        Ok((cert, key))
    }
}

pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(0o600);
    let mut f = o
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    Ok(())
}

/// SHA-256 of the certificate's DER, hex: what clients pin.
pub fn cert_fingerprint(pem: &[u8]) -> Result<String> {
    let text = std::str::from_utf8(pem).context("certificate is not PEM text")?;
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .context("certificate PEM is not base64")?;
    Ok(hex::encode(Sha256::digest(der)))
}
