//! The folder path parser: no panic; a parsed path is canonical (parses to itself) and
//! every ancestor of it parses too.
#![no_main]

use darkroom::model::FolderPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    if let Some(path) = FolderPath::parse(s) {
        let again = FolderPath::parse(path.as_str()).expect("a parsed path parses");
        assert_eq!(again.as_str(), path.as_str());
        for ancestor in FolderPath::ancestors(path.as_str()) {
            assert!(FolderPath::parse(ancestor).is_some(), "{ancestor}");
        }
    }
});
