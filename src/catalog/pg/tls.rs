//! `sslmode` in the catalog URL, as libpq reads it, onto rustls:
//!
//! - `disable`: no TLS;
//! - `prefer` (the default) and `require`: TLS (`prefer` falls back to plain if the server
//!   has none), the server's certificate not checked, as libpq does without a root file;
//! - `verify-ca` and `verify-full`: the certificate checked against `sslrootcert` (a PEM
//!   file) or the system's roots, and its name against the host (`verify-ca` is held to
//!   the name too: rustls has no chain-only check).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PgError;

/// How to secure the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Disable,
    /// TLS without checking whose certificate it is (`prefer`, `require`).
    Encrypt {
        fallback: bool,
    },
    /// TLS to the named host, its certificate checked against these roots (or the
    /// system's).
    Verify {
        roots: Option<PathBuf>,
    },
}

/// The driver's config and the TLS mode of a catalog URL. `sslmode` and `sslrootcert`
/// are read here (the driver knows only some of their values) and taken out.
pub fn parse(url: &str) -> Result<(tokio_postgres::Config, Mode), PgError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(PgError::Url("it must start with postgres://".into()));
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut sslmode, mut rootcert) = (None, None);
    let mut kept = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "sslmode" => sslmode = Some(value.into_owned()),
            "sslrootcert" => rootcert = Some(PathBuf::from(value.as_ref())),
            _ => {
                kept.append_pair(&name, &value);
            }
        }
    }
    let kept = kept.finish();
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{kept}")
    };
    let mut config =
        tokio_postgres::Config::from_str(&rest).map_err(|e| PgError::Url(e.to_string()))?;
    let mode = match sslmode.as_deref().unwrap_or("prefer") {
        "disable" => Mode::Disable,
        "allow" | "prefer" => Mode::Encrypt { fallback: true },
        "require" if rootcert.is_some() => Mode::Verify { roots: rootcert }, // as libpq
        "require" => Mode::Encrypt { fallback: false },
        "verify-ca" | "verify-full" => Mode::Verify { roots: rootcert },
        other => {
            return Err(PgError::Url(format!(
                "sslmode={other}: use disable, prefer, require, verify-ca or verify-full"
            )));
        }
    };
    config.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Encrypt { fallback: true } => SslMode::Prefer,
        Mode::Encrypt { fallback: false } | Mode::Verify { .. } => SslMode::Require,
    });
    Ok((config, mode))
}

/// The TLS connector for `mode` (unused with `disable`).
pub fn connector(mode: &Mode) -> Result<MakeRustlsConnect, PgError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Tls(e.to_string()))?;
    let config = match mode {
        Mode::Disable | Mode::Encrypt { .. } => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            .with_no_client_auth(),
        Mode::Verify { roots } => builder
            .with_root_certificates(root_store(roots.as_ref())?)
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

fn root_store(file: Option<&PathBuf>) -> Result<RootCertStore, PgError> {
    let mut roots = RootCertStore::empty();
    match file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| PgError::Tls(format!("sslrootcert {}: {e}", path.display())))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| PgError::Tls(format!("sslrootcert {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| PgError::Tls(format!("sslrootcert {}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err(PgError::Tls(
            "no root certificates to check the catalog's against (set sslrootcert)".into(),
        ));
    }
    Ok(roots)
}

/// `prefer`/`require`: encrypted, whoever the certificate names (libpq's behaviour
/// without a root file); the handshake's signatures are still checked.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_read_as_libpq_reads_it_and_taken_out_of_the_url() {
        let mode = |url: &str| parse(url).map(|(_, m)| m);
        let base = "postgres://u@db.example:5433/lib";
        assert_eq!(mode(base).expect("ok"), Mode::Encrypt { fallback: true });
        assert_eq!(
            mode(&format!("{base}?sslmode=disable")).expect("ok"),
            Mode::Disable
        );
        assert_eq!(
            mode(&format!("{base}?sslmode=require")).expect("ok"),
            Mode::Encrypt { fallback: false }
        );
        assert_eq!(
            mode(&format!(
                "{base}?sslmode=verify-full&sslrootcert=/etc/ca.pem"
            ))
            .expect("ok"),
            Mode::Verify {
                roots: Some("/etc/ca.pem".into())
            }
        );
        assert_eq!(
            mode(&format!("{base}?sslmode=verify-ca")).expect("ok"),
            Mode::Verify { roots: None }
        );
        let (config, _) =
            parse(&format!("{base}?sslmode=verify-full&connect_timeout=3")).expect("ok");
        assert_eq!(config.get_dbname(), Some("lib"));
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert!(matches!(
            mode(&format!("{base}?sslmode=sometimes")),
            Err(PgError::Url(m)) if m.contains("sslmode=sometimes")
        ));
        assert!(matches!(mode("mysql://u@h/db"), Err(PgError::Url(_))));
    }
}
