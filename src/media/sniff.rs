//! Type detection from magic bytes. The client's filename and Content-Type are never
//! consulted: a PNG named `.jpg` is a PNG, HTML named `.jpg` is rejected.

use crate::model::MediaType;

/// How many leading bytes `sniff` wants to see (it works with fewer).
pub const SNIFF_LEN: usize = 4096;

/// Detects one of the eight supported types from the first bytes of a file.
pub fn sniff(head: &[u8]) -> Option<MediaType> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(MediaType::Jpeg);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(MediaType::Png);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Some(MediaType::Gif);
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some(MediaType::Webp);
    }
    if head.starts_with(b"%PDF-") {
        return Some(MediaType::Pdf);
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" && is_mp4_brand(&head[8..12]) {
        return Some(MediaType::Mp4);
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) && is_webm_doctype(head) {
        return Some(MediaType::Webm);
    }
    if super::svg::looks_like_svg(head) {
        return Some(MediaType::Svg);
    }
    None
}

/// ISO-BMFF major brands that are video/mp4 (not HEIF/AVIF images, QuickTime or audio).
fn is_mp4_brand(brand: &[u8]) -> bool {
    const BRANDS: [&[u8; 4]; 16] = [
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso8", b"iso9", b"mp41", b"mp42",
        b"avc1", b"M4V ", b"M4VH", b"M4VP", b"dash", b"mmp4",
    ];
    BRANDS.iter().any(|b| b.as_slice() == brand)
}

/// The EBML header names its DocType; Matroska that is not WebM is refused.
fn is_webm_doctype(head: &[u8]) -> bool {
    let header = &head[..head.len().min(64)];
    // DocType element id 0x4282, then a one-byte size, then the string.
    header
        .windows(7)
        .any(|w| w[0] == 0x42 && w[1] == 0x82 && &w[3..7] == b"webm")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_type_from_magic() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), Some(MediaType::Jpeg));
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(MediaType::Png)
        );
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Some(MediaType::Gif));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(MediaType::Webp));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(MediaType::Pdf));
        assert_eq!(sniff(b"\0\0\0\x20ftypisom\0\0\x02\0"), Some(MediaType::Mp4));
        assert_eq!(
            sniff(b"\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\x82\x84webm"),
            Some(MediaType::Webm)
        );
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"x\">"),
            Some(MediaType::Svg)
        );
    }

    #[test]
    fn refuses_lookalikes() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"<!DOCTYPE html><html><script>"), None);
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01"), None);
        assert_eq!(sniff(b"PK\x03\x04\x14\0"), None);
        assert_eq!(
            sniff(b"\0\0\0\x18ftypheic\0\0\0\0"),
            None,
            "HEIC is not mp4"
        );
        assert_eq!(
            sniff(b"\0\0\0\x14ftypqt  \0\0\0\0"),
            None,
            "QuickTime is not mp4"
        );
        assert_eq!(
            sniff(b"\x1A\x45\xDF\xA3\x9F\x42\x82\x88matroska"),
            None,
            "plain Matroska is not WebM"
        );
        assert_eq!(sniff(b"just some text"), None);
    }
}
