//! The document against the code: every route documented and nothing else, every
//! response described, the MIME list complete, the checked-in copy current.

use std::collections::BTreeSet;

use hyper::Method;
use serde_json::Value;

use super::json_bytes;
use crate::http::router::{TABLE, route};
use crate::model::MediaType;

fn document() -> Value {
    serde_json::from_slice(json_bytes()).expect("the document is JSON")
}

/// `(METHOD, path)` of every documented operation.
fn documented() -> BTreeSet<(String, String)> {
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            if method != "parameters" {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// A concrete path for a template, with well-formed values in its placeholders.
fn concrete(template: &str) -> String {
    template
        .replace("{id}", "media_abcdefgh12345678")
        .replace("{year}", "2026")
        .replace("{month}", "03")
        .replace("{file}", "abc.jpg")
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let table: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented(), table);
    for (method, template) in TABLE {
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let routed = route(&m, &concrete(template))
            .unwrap_or_else(|e| panic!("{method} {template} is not routed: {e}"));
        assert_eq!(routed.template(), *template, "{method} {template}");
    }
}

#[test]
fn it_is_openapi_3_1_with_a_described_response_everywhere() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path}");
            for (status, r) in responses {
                let described = r["description"].as_str().is_some_and(|d| !d.is_empty());
                assert!(described, "{method} {path} {status}");
            }
        }
    }
}

#[test]
fn the_mime_list_is_the_supported_types() {
    let doc = document();
    let listed: BTreeSet<&str> = doc["components"]["schemas"]["MimeType"]["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let supported: BTreeSet<&str> = MediaType::ALL.iter().map(|t| t.mime()).collect();
    assert_eq!(listed, supported);
}

#[test]
fn the_checked_in_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = std::str::from_utf8(json_bytes()).expect("utf-8");
    assert!(
        checked_in.trim_end() == generated.trim_end(),
        "openapi.json is stale: run `make openapi` and commit the result"
    );
}

/// Every `pattern` in the document, with where it is.
fn patterns(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "pattern" {
                    out.push((at.to_owned(), v.as_str().unwrap_or_default().to_owned()));
                } else {
                    patterns(v, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| patterns(v, at, out)),
        _ => {}
    }
}

#[test]
fn every_folder_field_has_the_folder_grammar() {
    let mut found = Vec::new();
    patterns(&document(), "", &mut found);
    assert!(found.len() >= 6, "{found:?}");
    for (at, pattern) in found {
        assert_eq!(pattern, super::FOLDER, "{at}");
    }
}

#[test]
fn the_upload_form_sends_nothing_the_server_refuses_when_only_a_file_is_chosen() {
    // Swagger UI fills optional form fields from their example or default.
    let doc = document();
    let form = &doc["components"]["schemas"]["UploadForm"];
    assert_eq!(form["required"], serde_json::json!(["files"]));
    assert_eq!(form["properties"]["folder"]["default"], "/");
    assert_eq!(form["properties"]["alt"]["example"], "");
    assert_eq!(form["properties"]["files"]["items"]["format"], "binary");
}
