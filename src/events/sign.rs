//! Signatures as the Standard Webhooks specification defines them: the secret is
//! `whsec_` and the base64 of a random key; a delivery carries `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 of HMAC-SHA256 over
//! "id.timestamp.body">`, so receivers verify with the specification's own libraries.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// Key bytes of a new secret (the specification asks for 24 to 64).
const KEY_BYTES: usize = 32;

/// A new secret, `whsec_` and the base64 of a random key.
pub fn new_secret() -> String {
    let key: [u8; KEY_BYTES] = rand::random();
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` header of a delivery: `v1,<base64>`. `None` when `secret`
/// is not a secret this server made.
pub fn signature(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix(PREFIX)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (and of its libraries' tests).
    #[test]
    fn signs_the_specification_example() {
        let sig = signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn every_part_is_signed() {
        let secret = new_secret();
        let base = signature(&secret, "msg_1", 10, b"{}");
        assert!(base.is_some());
        assert_ne!(base, signature(&secret, "msg_2", 10, b"{}"));
        assert_ne!(base, signature(&secret, "msg_1", 11, b"{}"));
        assert_ne!(base, signature(&secret, "msg_1", 10, b"{ }"));
        assert_ne!(base, signature(&new_secret(), "msg_1", 10, b"{}"));
        assert_eq!(signature("not-a-secret", "msg_1", 10, b"{}"), None);
    }
}
