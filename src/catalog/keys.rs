//! API keys: `drk_<id>_<secret>`. The id finds the record; the SHA-256 of the whole key is
//! compared in constant time. The secret has 190 bits of entropy, so a fast hash is right.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Catalog, CatalogError, Write};
use crate::model::{ApiKeyRecord, Scope, now_us, random_token};

const PREFIX: &str = "drk_";

/// Makes a new key: the plaintext (shown once) and the record to store.
pub fn generate(scope: Scope, name: &str) -> (String, ApiKeyRecord) {
    let id = random_token(8);
    let plaintext = format!("{PREFIX}{id}_{}", random_token(32));
    let record = ApiKeyRecord {
        id,
        name: name.to_owned(),
        scope,
        hash: digest(&plaintext),
        created_us: now_us(),
        folder: None,
    };
    (plaintext, record)
}

/// Creates and stores a new key; returns the plaintext, which is not kept anywhere.
pub fn create(catalog: &Catalog, scope: Scope, name: &str) -> Result<String, CatalogError> {
    loop {
        let (plaintext, record) = generate(scope, name);
        match catalog.apply_single(Write::PutKey(record)) {
            Err(CatalogError::IdTaken) => continue, // a new id: another draw
            other => return other.map(|_| plaintext),
        }
    }
}

/// The id part of a presented key, if it has the right shape.
pub fn parse_id(presented: &str) -> Option<&str> {
    let (id, secret) = presented.strip_prefix(PREFIX)?.split_once('_')?;
    let shape_ok =
        is_id(id) && secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    shape_ok.then_some(id)
}

/// Whether `id` has the shape of a key's id (8 letters or digits).
pub fn is_id(id: &str) -> bool {
    id.len() == 8 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// True when `presented` is the key `record` was made from.
pub fn verify(record: &ApiKeyRecord, presented: &str) -> bool {
    bool::from(digest(presented).ct_eq(&record.hash))
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_verify_and_others_do_not() {
        let (key, rec) = generate(Scope::Write, "ci");
        assert_eq!(parse_id(&key), Some(rec.id.as_str()));
        assert!(verify(&rec, &key));
        let mut wrong = key.clone();
        wrong.pop();
        wrong.push(if key.ends_with('a') { 'b' } else { 'a' });
        assert!(!verify(&rec, &wrong));
    }

    #[test]
    fn malformed_keys_have_no_id() {
        for bad in [
            "",
            "drk_",
            "drk_short_x",
            "Bearer drk_x",
            "xyz_abcdefgh_0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }
}
