//! Query string parsing of listings and uploads: no panic; an accepted listing query
//! has its limit in 1..=100, and a cursor only without an offset.
#![no_main]

use darkroom::http::query::{Access, list_query, wait_flag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    for access in [Access::Public, Access::Full] {
        if let Ok(q) = list_query(Some(s), access) {
            assert!((1..=100).contains(&q.limit), "{}", q.limit);
            assert!(
                q.cursor.is_none() || q.offset == 0,
                "cursor with offset {}",
                q.offset
            );
        }
    }
    let _ = wait_flag(Some(s));
});
