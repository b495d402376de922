//! Pure media logic: what a file is (`sniff`), how big it is (`probe`, `svg`, `video`),
//! what is removed from it (`strip`, and `svg`'s rewrite), the bounds of every parse
//! (`limits`), how client names are cleaned (`name`), and the image pipeline that makes
//! variants (`image`). No actors, no I/O beyond the file given.

pub mod anim;
mod check;
pub mod image;
mod inspect;
pub mod limits;
pub mod name;
pub mod poster;
pub mod probe;
pub mod sniff;
pub mod strip;
pub mod svg;
pub mod video;

pub use check::{Checked, check_file};
pub use inspect::{Inspection, MediaError, clean_in_place, inspect, inspect_reader};
pub use limits::Limits;

/// A file of `tests/fixtures` (copied from the shared corpus), for unit tests.
#[cfg(test)]
pub(crate) fn test_fixture(rel: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}
