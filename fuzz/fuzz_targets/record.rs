//! Catalog record decoding (records are stored as JSON): no panic on any stored bytes,
//! and a record that decodes survives a round trip unchanged.
#![no_main]

use darkroom::model::MediaRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = serde_json::from_slice::<MediaRecord>(data) {
        let encoded = serde_json::to_vec(&record).expect("encodes");
        let again: MediaRecord = serde_json::from_slice(&encoded).expect("decodes again");
        assert_eq!(again, record);
    }
});
