//! Cleaning client-supplied filenames. The name is metadata only (storage names are
//! server-made), but it is shown to people, so paths, control and bidi characters go.

const MAX_NAME_BYTES: usize = 255;

/// Returns a display-safe filename: last path component only, no control or bidi
/// override characters, trimmed, at most 255 bytes; `fallback` if nothing is left.
pub fn sanitize_filename(raw: &str, fallback: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !is_hidden_char(*c)).collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let mut out = String::with_capacity(trimmed.len().min(MAX_NAME_BYTES));
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        fallback.to_owned()
    } else {
        out
    }
}

/// Control characters and the Unicode format characters that reorder or hide text.
fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::sanitize_filename as s;

    #[test]
    fn strips_paths() {
        assert_eq!(s("../../../../tmp/pwned.jpg", "f"), "pwned.jpg");
        assert_eq!(s("C:\\Users\\me\\photo.png", "f"), "photo.png");
        assert_eq!(s("..", "f"), "f");
        assert_eq!(s("dir/", "f"), "f");
    }

    #[test]
    fn strips_bidi_and_control_characters() {
        assert_eq!(s("photo_\u{202E}gpj.exe", "f"), "photo_gpj.exe");
        assert_eq!(s("a\u{0}b\nc\u{7f}.jpg", "f"), "abc.jpg");
        assert_eq!(s("  \u{200B} ", "upload"), "upload");
    }

    #[test]
    fn keeps_ordinary_unicode_and_caps_length() {
        assert_eq!(s("été à Paris.jpg", "f"), "été à Paris.jpg");
        let long = "é".repeat(300);
        let out = s(&long, "f");
        assert!(out.len() <= 255 && out.chars().all(|c| c == 'é'));
    }
}
