//! Signed crop URLs: `GET /api/v1/public/media/{id}/crop?w=&h=&sig=`, where `sig` is the
//! first 128 bits of HMAC-SHA256(key, "{id}:{w}x{h}") in hex. The key comes from
//! `delivery.signing_key`, or else from `<data_dir>/crop-signing.key` (made at first use,
//! readable by the owner only), so the server and `darkroom sign` agree on one node.

use std::io::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::{CropSize, random_token};

const KEY_FILE: &str = "crop-signing.key";
const BLOCK: usize = 64;

pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer([redacted])")
    }
}

impl Signer {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// The configured key, or the data dir's key file (created when missing).
    pub fn load(configured: Option<&str>, data_dir: &Path) -> std::io::Result<Self> {
        if let Some(key) = configured.filter(|k| !k.is_empty()) {
            return Ok(Self::new(key.as_bytes()));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(key) if !key.trim().is_empty() => return Ok(Self::new(key.trim().as_bytes())),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir_all(data_dir)?;
        let key = random_token(48);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut file) => {
                file.write_all(key.as_bytes())?;
                file.sync_all()?;
                Ok(Self::new(key.as_bytes()))
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(Self::new(std::fs::read_to_string(&path)?.trim().as_bytes()))
            }
            Err(e) => Err(e),
        }
    }

    /// The signature of a crop of item `id`.
    pub fn sign(&self, id: &str, size: CropSize) -> String {
        let message = format!("{id}:{}x{}", size.width, size.height);
        let mac = hmac_sha256(&self.key, message.as_bytes());
        mac[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `sig` is the signature of this crop (in constant time).
    pub fn verify(&self, id: &str, size: CropSize, sig: &str) -> bool {
        let expected = self.sign(id, size);
        sig.len() == expected.len() && bool::from(expected.as_bytes().ct_eq(sig.as_bytes()))
    }

    /// The path of a signed crop URL.
    pub fn url(&self, id: &str, size: CropSize) -> String {
        let (w, h) = (size.width, size.height);
        let sig = self.sign(id, size);
        format!("/api/v1/public/media/{id}/crop?w={w}&h={h}&sig={sig}")
    }
}

/// HMAC-SHA256 (RFC 2104) over the `sha2` the server already has.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        let mac = hmac_sha256(&[0x0b; 20], b"Hi There");
        assert_eq!(
            hex(&mac),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Case 6: a key longer than the block is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_signature_binds_the_item_and_the_size() {
        let signer = Signer::new(b"secret");
        let size = CropSize {
            width: 300,
            height: 200,
        };
        let sig = signer.sign("media_AAAAAAAAAAAAAAAA", size);
        assert_eq!(sig.len(), 32);
        assert!(signer.verify("media_AAAAAAAAAAAAAAAA", size, &sig));
        assert!(!signer.verify("media_BBBBBBBBBBBBBBBB", size, &sig));
        let other = CropSize {
            width: 300,
            height: 201,
        };
        assert!(!signer.verify("media_AAAAAAAAAAAAAAAA", other, &sig));
        assert!(!Signer::new(b"other").verify("media_AAAAAAAAAAAAAAAA", size, &sig));
        assert!(!signer.verify("media_AAAAAAAAAAAAAAAA", size, &sig[..31]));
        assert!(signer.url("media_AAAAAAAAAAAAAAAA", size).ends_with(&sig));
    }

    #[test]
    fn without_a_configured_key_one_is_made_once_in_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Signer::load(None, dir.path()).expect("made");
        let again = Signer::load(None, dir.path()).expect("read");
        assert_eq!(first.key, again.key);
        assert_eq!(first.key.len(), 48);
        let configured = Signer::load(Some("from-config"), dir.path()).expect("configured");
        assert_eq!(configured.key, b"from-config");
    }
}
