//! The router: no panic for any method and path; a matched route's template is one of
//! the table's.
#![no_main]

use darkroom::http::router::{TABLE, route};
use hyper::Method;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &str)| {
    let (m, path) = input;
    let methods = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::HEAD,
    ];
    let method = &methods[usize::from(m) % methods.len()];
    if let Ok(r) = route(method, path) {
        let template = r.template();
        // The documented table, plus the explorer and the test-only fault injection.
        let documented = TABLE.iter().any(|(_, path)| *path == template);
        let extra = ["/", "/docs", "/docs/{file}", "/admin/crash/{actor}"].contains(&template);
        assert!(documented || extra, "{template}");
    }
});
