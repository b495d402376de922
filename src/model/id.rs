//! Ids, random tokens and timestamps: how media ids, storage tokens, API key ids and
//! request ids are made, and how times are written.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::distr::Alphanumeric;

/// Length of the random part of ids and storage tokens.
const TOKEN_LEN: usize = 16;
/// `media_` + 16 alphanumerics: every id has this length (index keys rely on it).
pub const ID_LEN: usize = 6 + TOKEN_LEN;

/// `n` random ASCII alphanumerics from the OS-seeded thread RNG.
pub fn random_token(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// A new media id: `media_` and a time-ordered token.
pub fn new_media_id() -> String {
    format!("media_{}", time_ordered_token())
}

/// A new storage token (the file name stem), time-ordered like ids.
pub fn new_storage_token() -> String {
    time_ordered_token()
}

/// True for strings shaped like the ids `new_media_id` makes.
pub fn is_media_id(s: &str) -> bool {
    s.len() == ID_LEN
        && s.starts_with("media_")
        && s.bytes().skip(6).all(|b| b.is_ascii_alphanumeric())
}

/// Digits in ASCII order, so that fixed-width numbers compare like their bytes.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TIME_DIGITS: usize = 8;

/// `TOKEN_LEN` characters: 8 base-62 digits of the milliseconds since 1970 (good until
/// the year 8900), then random ones (47 bits). Records made together get neighbouring
/// keys in every B-tree keyed by id or storage key, so a commit rewrites a few pages at
/// the right edge instead of one random page per record; the random part keeps them
/// unguessable.
fn time_ordered_token() -> String {
    let mut ms = now_us() / 1000;
    let mut head = [b'0'; TIME_DIGITS];
    for digit in head.iter_mut().rev() {
        *digit = BASE62[(ms % 62) as usize];
        ms /= 62;
    }
    let mut token: String = head.iter().map(|&b| char::from(b)).collect();
    token.push_str(&random_token(TOKEN_LEN - TIME_DIGITS));
    token
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `2026-03-26T10:30:00Z`.
pub fn rfc3339(us: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_micros(us)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_fixed_length_and_differ() {
        let (a, b) = (new_media_id(), new_media_id());
        assert_eq!(a.len(), ID_LEN);
        assert_ne!(a, b);
        assert!(is_media_id(&a) && is_media_id(&b));
        for bad in [
            "media_x",
            "",
            "media_abcdefgh1234567-",
            "thing_abcdefgh12345678",
        ] {
            assert!(!is_media_id(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_sort_by_creation_time() {
        let first = new_storage_token();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_storage_token();
        assert!(first < second, "{first} then {second}");
        assert_ne!(first[TIME_DIGITS..], second[TIME_DIGITS..]);
        assert_eq!(second.len(), TOKEN_LEN);
    }

    #[test]
    fn timestamps_format() {
        assert_eq!(rfc3339(1_774_521_000_000_000), "2026-03-26T10:30:00Z");
    }
}
