//! Every URL this server signs, with one key: crops (`GET /api/v1/public/media/{id}/crop?w=&h=&sig=`,
//! `sig` the first 128 bits of HMAC-SHA256(key, "{id}:{w}x{h}") in hex; a private item's
//! crop adds `&expires=` and signs "darkroom-crop-until\n{id}:{w}x{h}\n{expires}"), and the
//! links to private items' files (`/uploads/private/...?expires=&sig=`, signing
//! "darkroom-link\nGET\n{path}\n{expires}").
//! `expires` is in Unix seconds. The key comes from `delivery.signing_key`, or else from
//! `<data_dir>/crop-signing.key` (made at first use, readable by the owner only), so the
//! server and `darkroom sign` agree on one node.

use std::io::Write as _;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::model::{CropSize, random_token};

const KEY_FILE: &str = "crop-signing.key";
/// Bytes of the MAC a signature keeps (128 bits), written as 32 hex digits.
const SIG_BYTES: usize = 16;

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
        if let Some(key) = read_key(&path)? {
            return Ok(Self::new(key.as_bytes()));
        }
        // Written whole under a name of its own, then linked into place: a crash leaves no
        // empty key file (an empty key would let anyone sign), and of two processes making
        // one at once, the second finds the first's.
        std::fs::create_dir_all(data_dir)?;
        let key = random_token(48);
        let fresh = data_dir.join(format!("{KEY_FILE}.{}", random_token(8)));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&fresh)?;
        file.write_all(key.as_bytes())?;
        file.sync_all()?;
        let placed = match std::fs::hard_link(&fresh, &path) {
            Ok(()) => Ok(Self::new(key.as_bytes())),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read_key(&path)? {
                // Another process made it first: use theirs.
                Some(theirs) => Ok(Self::new(theirs.as_bytes())),
                // Empty: left by a crash of an older build; replaced whole.
                None => {
                    std::fs::rename(&fresh, &path)?;
                    Ok(Self::new(key.as_bytes()))
                }
            },
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(&fresh);
        placed
    }

    /// HMAC-SHA256 over `message` with this signer's key.
    fn mac(&self, message: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(message.as_bytes());
        mac
    }

    /// The signature of a crop of item `id`.
    pub fn sign(&self, id: &str, size: CropSize) -> String {
        self.tag(&crop_message(id, size))
    }

    /// Whether `sig` is the signature of this crop (compared in constant time).
    pub fn verify(&self, id: &str, size: CropSize, sig: &str) -> bool {
        self.check(&crop_message(id, size), sig)
    }

    /// The signature of a crop of item `id` that lasts until `expires`.
    pub fn sign_until(&self, id: &str, size: CropSize, expires: u64) -> String {
        self.tag(&crop_until_message(id, size, expires))
    }

    /// Whether `sig` signs this crop until `expires`, and `expires` is not past at `now`
    /// (Unix seconds).
    pub fn verify_until(
        &self,
        id: &str,
        size: CropSize,
        expires: u64,
        sig: &str,
        now: u64,
    ) -> bool {
        expires >= now && self.check(&crop_until_message(id, size, expires), sig)
    }

    /// The signature of a link that lets its holder GET `path` until `expires`.
    pub fn sign_link(&self, path: &str, expires: u64) -> String {
        self.tag(&link_message(path, expires))
    }

    /// Whether `sig` signs a GET of `path` until `expires`, and `expires` is not past at
    /// `now` (Unix seconds).
    pub fn verify_link(&self, path: &str, expires: u64, sig: &str, now: u64) -> bool {
        expires >= now && self.check(&link_message(path, expires), sig)
    }

    /// The first 128 bits of the message's MAC, as 32 lowercase hex digits.
    fn tag(&self, message: &str) -> String {
        let tag = self.mac(message).finalize().into_bytes();
        let kept: [u8; SIG_BYTES] = tag[..SIG_BYTES].try_into().expect("a 32-byte MAC");
        format!("{:032x}", u128::from_be_bytes(kept))
    }

    /// Whether `sig` is `tag(message)` (compared in constant time).
    fn check(&self, message: &str, sig: &str) -> bool {
        // Exactly the 32 lowercase hex digits `sign` writes, so one crop has one URL. The
        // tag checked is always all 16 bytes: keep it a fixed-size array, as
        // `verify_truncated_left` would check a shorter slice on fewer bytes.
        let digits = sig.len() == 2 * SIG_BYTES
            && sig
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let Some(tag) = digits.then(|| u128::from_str_radix(sig, 16).ok()).flatten() else {
            return false;
        };
        self.mac(message)
            .verify_truncated_left(&tag.to_be_bytes())
            .is_ok()
    }

    /// The path of a signed crop URL; with `expires`, one that works until then only (the
    /// crops of private items).
    pub fn url(&self, id: &str, size: CropSize, expires: Option<u64>) -> String {
        let (w, h) = (size.width, size.height);
        match expires {
            None => {
                let sig = self.sign(id, size);
                format!("/api/v1/public/media/{id}/crop?w={w}&h={h}&sig={sig}")
            }
            Some(e) => {
                let sig = self.sign_until(id, size, e);
                format!("/api/v1/public/media/{id}/crop?w={w}&h={h}&expires={e}&sig={sig}")
            }
        }
    }

    /// A link to `path` (a private item's file on this server) that works until `expires`.
    pub fn link(&self, path: &str, expires: u64) -> String {
        let sig = self.sign_link(path, expires);
        format!("{path}?expires={expires}&sig={sig}")
    }
}

/// The key in `path`, if the file exists and holds one.
fn read_key(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(key) if !key.trim().is_empty() => Ok(Some(key.trim().to_owned())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a crop's signature covers: the item and the size.
fn crop_message(id: &str, size: CropSize) -> String {
    format!("{id}:{}x{}", size.width, size.height)
}

/// What an expiring crop's signature covers, tagged so that no other message reads alike.
fn crop_until_message(id: &str, size: CropSize, expires: u64) -> String {
    format!("darkroom-crop-until\n{}\n{expires}", crop_message(id, size))
}

/// What a link's signature covers: the method (HEAD is checked as GET), path and expiry,
/// tagged so that no other message reads alike.
fn link_message(path: &str, expires: u64) -> String {
    format!("darkroom-link\nGET\n{path}\n{expires}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_the_first_128_bits_of_hmac_sha256_in_hex() {
        // Python: hmac.new(b"secret", b"media_AAAAAAAAAAAAAAAA:300x200", sha256)
        // .hexdigest()[:32]; URLs signed before keep working.
        let size = CropSize {
            width: 300,
            height: 200,
        };
        let sig = Signer::new(b"secret").sign("media_AAAAAAAAAAAAAAAA", size);
        assert_eq!(sig, "f51a93c504d60f45559aafffd3c7d4ca");
        // A key longer than SHA-256's block is hashed first (RFC 2104).
        let sig = Signer::new(&[b'k'; 100]).sign("media_AAAAAAAAAAAAAAAA", size);
        assert_eq!(sig, "e50ca27a794e2714d90982bca76319b6");
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
        assert!(!signer.verify("media_AAAAAAAAAAAAAAAA", size, &format!("0{sig}")));
        assert!(
            !signer.verify("media_AAAAAAAAAAAAAAAA", size, &sig[..2]),
            "a short tag"
        );
        assert!(!signer.verify("media_AAAAAAAAAAAAAAAA", size, &format!("+{}", &sig[1..])));
        assert!(!signer.verify("media_AAAAAAAAAAAAAAAA", size, &sig.to_uppercase()));
        assert!(
            signer
                .url("media_AAAAAAAAAAAAAAAA", size, None)
                .ends_with(&sig)
        );
    }

    #[test]
    fn links_bind_path_and_expiry_and_end_at_it() {
        // Python: hmac.new(b"secret",
        // b"darkroom-link\nGET\n/uploads/private/2026/03/a.jpg\n1767225600",
        // sha256).hexdigest()[:32]
        let signer = Signer::new(b"secret");
        let path = "/uploads/private/2026/03/a.jpg";
        let sig = signer.sign_link(path, 1_767_225_600);
        assert_eq!(sig, "a3b9398e86b717d5c324630b59d002ec");
        assert!(signer.verify_link(path, 1_767_225_600, &sig, 1_767_225_600));
        assert!(
            !signer.verify_link(path, 1_767_225_600, &sig, 1_767_225_601),
            "expired"
        );
        assert!(
            !signer.verify_link(path, 1_767_225_601, &sig, 0),
            "another expiry"
        );
        let other = "/uploads/private/2026/03/b.jpg";
        assert!(
            !signer.verify_link(other, 1_767_225_600, &sig, 0),
            "another path"
        );
        assert_eq!(
            signer.link(path, 7),
            format!("{path}?expires=7&sig={}", signer.sign_link(path, 7))
        );
        let size = CropSize {
            width: 10,
            height: 20,
        };
        let crop = signer.sign_until("media_AAAAAAAAAAAAAAAA", size, 100);
        assert!(signer.verify_until("media_AAAAAAAAAAAAAAAA", size, 100, &crop, 100));
        assert!(!signer.verify_until("media_AAAAAAAAAAAAAAAA", size, 100, &crop, 101));
        assert!(
            !signer.verify("media_AAAAAAAAAAAAAAAA", size, &crop),
            "not a lasting one"
        );
        let lasting = signer.sign("media_AAAAAAAAAAAAAAAA", size);
        assert!(!signer.verify_until("media_AAAAAAAAAAAAAAAA", size, 100, &lasting, 0));
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
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(left.len(), 1, "only the key file: {left:?}");
    }

    #[test]
    fn an_empty_key_file_left_by_a_crash_is_replaced_not_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(KEY_FILE), "  \n").expect("empty key file");
        let signer = Signer::load(None, dir.path()).expect("made");
        assert_eq!(signer.key.len(), 48);
        let again = Signer::load(None, dir.path()).expect("read");
        assert_eq!(again.key, signer.key, "the replacement is on disk");
    }
}
