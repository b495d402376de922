//! The one text folding of search: what a filename or alt text is matched as, and what a
//! search term is matched with, so that `café` (NFC) finds `café` typed on a Mac (NFD),
//! `οδυσσεας` finds `ΟΔΥΣΣΕΑΣ` (final sigma), `strasse` finds `Straße` and `istanbul`
//! finds `İstanbul`. Both catalogs store and index this text, so they give the same
//! answers; filename sort order uses it too.
//!
//! `fold(s) = NFC(full case folding(NFD(s)))`, then a dot above left on an `i` or `j` by
//! folding (`İ` folds to `i` + U+0307) is removed: no language writes a dotted i apart
//! from the plain one in a search box.

use icu_casemap::CaseMapper;
use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};

const DOT_ABOVE: char = '\u{0307}';

/// The folded form of `text` (see the module docs).
pub fn fold(text: &str) -> String {
    let decomposed = DecomposingNormalizerBorrowed::new_nfd().normalize(text);
    let folded = CaseMapper::new().fold_string(&decomposed);
    let mut undotted = String::with_capacity(folded.len());
    let mut previous = ' ';
    for c in folded.chars() {
        if !(c == DOT_ABOVE && matches!(previous, 'i' | 'j')) {
            undotted.push(c);
        }
        previous = c;
    }
    ComposingNormalizerBorrowed::new_nfc()
        .normalize(&undotted)
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_folds_to_one_form() {
        let nfd = "cafe\u{0301}-terrasse.jpg";
        assert_eq!(fold(nfd), fold("CAFÉ-terrasse.JPG"));
        assert!(fold(nfd).contains(&fold("café")));
        assert_eq!(fold("ΟΔΥΣΣΕΑΣ.jpg"), fold("οδυσσεας.jpg"));
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("İstanbul"), "istanbul");
        assert_eq!(fold("ISTANBUL"), "istanbul");
        assert_eq!(fold("ǄEMAL"), fold("ǅemal")); // a digraph's three cases
        // Precomposed where Unicode has a composition; others stay as they are.
        assert_eq!(fold("ﬁle"), "file");
        assert_eq!(fold("plain ascii 123"), "plain ascii 123");
    }
}
