//! The route table: one `match` on method and path segments into a `Route`. Pure, so
//! it is unit-tested without a server.

use hyper::Method;

use crate::error::ApiError;
use crate::model::id::is_media_id;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    PublicList,
    PublicGet(String),
    /// `GET /api/v1/public/media/{id}/crop?w=&h=&sig=`.
    PublicCrop(String),
    /// CORS preflight on the public list.
    PublicListPreflight,
    /// CORS preflight on a public item.
    PublicItemPreflight,
    List,
    Upload,
    Get(String),
    Patch(String),
    Delete(String),
    /// `PUT /api/v1/media/{id}/file`.
    ReplaceFile(String),
    /// `POST /api/v1/media/{id}/crops`.
    SignCrop(String),
    ListFolders,
    CreateFolder,
    DeleteFolder,
    Presign,
    Confirm,
    /// A stored file: `YYYY/MM/<name>`.
    File(String),
    /// A private item's file, through a signed link: `private/YYYY/MM/<name>`.
    PrivateFile(String),
    Healthz,
    Readyz,
    Metrics,
    /// The OpenAPI document.
    OpenApi,
    /// The API Explorer: `None` for `/docs` (redirected to `/docs/`), else a file of it
    /// (`""` is its page).
    Docs(Option<String>),
    /// `/`: redirected to the explorer.
    Root,
    /// `GET /api/v1/keys`.
    ListKeys,
    /// `POST /api/v1/keys`.
    CreateKey,
    /// `DELETE /api/v1/keys/{id}`.
    RevokeKey(String),
    /// `GET /api/v1/webhooks`.
    ListWebhooks,
    /// `POST /api/v1/webhooks`.
    CreateWebhook,
    /// `DELETE /api/v1/webhooks/{id}`.
    RemoveWebhook(String),
    /// `POST /api/v1/webhooks/{id}/test`.
    PingWebhook(String),
    /// `GET /api/v1/webhooks/{id}/deliveries`.
    WebhookDeliveries(String),
    /// Test-only fault injection (`admin.fault_injection`): make an actor fail.
    AdminCrash(String),
}

impl Route {
    /// The path template, for metric labels and logs (bounded cardinality).
    pub fn template(&self) -> &'static str {
        match self {
            Self::PublicList | Self::PublicListPreflight => "/api/v1/public/media",
            Self::PublicGet(_) | Self::PublicItemPreflight => "/api/v1/public/media/{id}",
            Self::List | Self::Upload => "/api/v1/media",
            Self::Get(_) | Self::Patch(_) | Self::Delete(_) => "/api/v1/media/{id}",
            Self::ReplaceFile(_) => "/api/v1/media/{id}/file",
            Self::SignCrop(_) => "/api/v1/media/{id}/crops",
            Self::PublicCrop(_) => "/api/v1/public/media/{id}/crop",
            Self::ListFolders | Self::CreateFolder | Self::DeleteFolder => "/api/v1/media/folders",
            Self::Presign => "/api/v1/media/presign",
            Self::Confirm => "/api/v1/media/confirm",
            Self::File(_) => "/uploads/{year}/{month}/{file}",
            Self::PrivateFile(_) => "/uploads/private/{year}/{month}/{file}",
            Self::Healthz => "/healthz",
            Self::Readyz => "/readyz",
            Self::Metrics => "/metrics",
            Self::OpenApi => "/api/v1/openapi.json",
            Self::Docs(None) => "/docs",
            Self::Docs(Some(_)) => "/docs/{file}",
            Self::Root => "/",
            Self::ListKeys | Self::CreateKey => "/api/v1/keys",
            Self::RevokeKey(_) => "/api/v1/keys/{id}",
            Self::ListWebhooks | Self::CreateWebhook => "/api/v1/webhooks",
            Self::RemoveWebhook(_) => "/api/v1/webhooks/{id}",
            Self::PingWebhook(_) => "/api/v1/webhooks/{id}/test",
            Self::WebhookDeliveries(_) => "/api/v1/webhooks/{id}/deliveries",
            Self::AdminCrash(_) => "/admin/crash/{actor}",
        }
    }
}

const GET: &str = "GET, HEAD";
const PUBLIC: &str = "GET, HEAD, OPTIONS";

/// The route of a request. Media ids are checked by the handlers, after the key: a
/// request without a key is 401, never 404.
pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let m = method.as_str();
    let get = m == "GET" || m == "HEAD";
    let only_get = |r: Route| (Some(r).filter(|_| get), GET);
    let only = |r: Route, allow: &'static str| (Some(r).filter(|_| m == allow), allow);
    let (route, allow) = match segments.as_slice() {
        ["api", "v1", "public", "media"] => match m {
            _ if get => (Some(Route::PublicList), PUBLIC),
            "OPTIONS" => (Some(Route::PublicListPreflight), PUBLIC),
            _ => (None, PUBLIC),
        },
        ["api", "v1", "public", "media", id] => match m {
            _ if get => (Some(Route::PublicGet((*id).to_owned())), PUBLIC),
            "OPTIONS" => (Some(Route::PublicItemPreflight), PUBLIC),
            _ => (None, PUBLIC),
        },
        ["api", "v1", "media"] => match m {
            _ if get => (Some(Route::List), "GET, HEAD, POST"),
            "POST" => (Some(Route::Upload), "GET, HEAD, POST"),
            _ => (None, "GET, HEAD, POST"),
        },
        ["api", "v1", "media", "folders"] => match m {
            _ if get => (Some(Route::ListFolders), "GET, HEAD, POST, DELETE"),
            "POST" => (Some(Route::CreateFolder), "GET, HEAD, POST, DELETE"),
            "DELETE" => (Some(Route::DeleteFolder), "GET, HEAD, POST, DELETE"),
            _ => (None, "GET, HEAD, POST, DELETE"),
        },
        ["api", "v1", "media", "presign"] => only(Route::Presign, "POST"),
        ["api", "v1", "media", "confirm"] => only(Route::Confirm, "POST"),
        ["api", "v1", "media", id] => {
            let allow = "GET, HEAD, PATCH, DELETE";
            let id = Some((*id).to_owned());
            match m {
                _ if get => (id.map(Route::Get), allow),
                "PATCH" => (id.map(Route::Patch), allow),
                "DELETE" => (id.map(Route::Delete), allow),
                _ => (None, allow),
            }
        }
        ["api", "v1", "media", id, "file"] => only(Route::ReplaceFile((*id).to_owned()), "PUT"),
        ["api", "v1", "media", id, "crops"] => only(Route::SignCrop((*id).to_owned()), "POST"),
        ["api", "v1", "public", "media", id, "crop"] => only_get(Route::PublicCrop(id.to_string())),
        ["api", "v1", "keys"] => match m {
            _ if get => (Some(Route::ListKeys), "GET, HEAD, POST"),
            "POST" => (Some(Route::CreateKey), "GET, HEAD, POST"),
            _ => (None, "GET, HEAD, POST"),
        },
        ["api", "v1", "keys", id] => only(Route::RevokeKey((*id).to_owned()), "DELETE"),
        ["api", "v1", "webhooks"] => match m {
            _ if get => (Some(Route::ListWebhooks), "GET, HEAD, POST"),
            "POST" => (Some(Route::CreateWebhook), "GET, HEAD, POST"),
            _ => (None, "GET, HEAD, POST"),
        },
        ["api", "v1", "webhooks", id] => only(Route::RemoveWebhook((*id).to_owned()), "DELETE"),
        ["api", "v1", "webhooks", id, "test"] => only(Route::PingWebhook((*id).to_owned()), "POST"),
        ["api", "v1", "webhooks", id, "deliveries"] => {
            only_get(Route::WebhookDeliveries((*id).to_owned()))
        }
        ["uploads", year, month, name] => only_get(Route::File(format!("{year}/{month}/{name}"))),
        ["uploads", "private", year, month, name] => {
            only_get(Route::PrivateFile(format!("private/{year}/{month}/{name}")))
        }
        ["healthz"] => only_get(Route::Healthz),
        ["readyz"] => only_get(Route::Readyz),
        ["metrics"] => only_get(Route::Metrics),
        ["api", "v1", "openapi.json"] => only_get(Route::OpenApi),
        [""] => only_get(Route::Root),
        ["docs"] => only_get(Route::Docs(None)),
        ["docs", file] => only_get(Route::Docs(Some((*file).to_owned()))),
        ["admin", "crash", actor] => only(Route::AdminCrash((*actor).to_owned()), "POST"),
        _ => return Err(ApiError::NoRoute),
    };
    match route {
        Some(r) => Ok(r),
        None if allowed(allow, m) => Err(ApiError::NotFound("media item")),
        None => Err(ApiError::MethodNotAllowed { allow }),
    }
}

fn allowed(allow: &str, method: &str) -> bool {
    allow.split(", ").any(|a| a == method)
}

/// Only well-formed ids reach the catalog; anything else is a 404 (checked by handlers
/// after authentication).
pub fn media_id(s: &str) -> Result<&str, ApiError> {
    if is_media_id(s) {
        Ok(s)
    } else {
        Err(ApiError::NotFound("media item"))
    }
}

/// Every `(method, path template)` the router answers (HEAD goes with GET): what the
/// OpenAPI document must describe. `/admin/crash/{actor}` is left out: it exists only
/// with `admin.fault_injection`, for tests.
pub const TABLE: &[(&str, &str)] = &[
    ("GET", "/api/v1/public/media"),
    ("OPTIONS", "/api/v1/public/media"),
    ("GET", "/api/v1/public/media/{id}"),
    ("OPTIONS", "/api/v1/public/media/{id}"),
    ("GET", "/api/v1/media"),
    ("POST", "/api/v1/media"),
    ("GET", "/api/v1/media/{id}"),
    ("PATCH", "/api/v1/media/{id}"),
    ("DELETE", "/api/v1/media/{id}"),
    ("PUT", "/api/v1/media/{id}/file"),
    ("POST", "/api/v1/media/{id}/crops"),
    ("GET", "/api/v1/public/media/{id}/crop"),
    ("GET", "/api/v1/media/folders"),
    ("POST", "/api/v1/media/folders"),
    ("DELETE", "/api/v1/media/folders"),
    ("POST", "/api/v1/media/presign"),
    ("POST", "/api/v1/media/confirm"),
    ("GET", "/api/v1/keys"),
    ("POST", "/api/v1/keys"),
    ("DELETE", "/api/v1/keys/{id}"),
    ("GET", "/api/v1/webhooks"),
    ("POST", "/api/v1/webhooks"),
    ("DELETE", "/api/v1/webhooks/{id}"),
    ("POST", "/api/v1/webhooks/{id}/test"),
    ("GET", "/api/v1/webhooks/{id}/deliveries"),
    ("GET", "/uploads/{year}/{month}/{file}"),
    ("GET", "/uploads/private/{year}/{month}/{file}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/{file}"),
    ("GET", "/"),
];

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "media_abcdefgh12345678";

    fn r(m: &str, p: &str) -> Result<Route, ApiError> {
        route(&Method::from_bytes(m.as_bytes()).expect("method"), p)
    }

    #[test]
    fn routes_every_endpoint() {
        assert_eq!(
            r("GET", "/api/v1/public/media").ok(),
            Some(Route::PublicList)
        );
        assert_eq!(
            r("GET", &format!("/api/v1/public/media/{ID}")).ok(),
            Some(Route::PublicGet(ID.into()))
        );
        assert_eq!(
            r("OPTIONS", "/api/v1/public/media").ok(),
            Some(Route::PublicListPreflight)
        );
        assert_eq!(r("GET", "/api/v1/media").ok(), Some(Route::List));
        assert_eq!(r("POST", "/api/v1/media").ok(), Some(Route::Upload));
        assert_eq!(
            r("GET", &format!("/api/v1/media/{ID}")).ok(),
            Some(Route::Get(ID.into()))
        );
        assert_eq!(
            r("PATCH", &format!("/api/v1/media/{ID}")).ok(),
            Some(Route::Patch(ID.into()))
        );
        assert_eq!(
            r("DELETE", &format!("/api/v1/media/{ID}")).ok(),
            Some(Route::Delete(ID.into()))
        );
        assert_eq!(
            r("PUT", &format!("/api/v1/media/{ID}/file")).ok(),
            Some(Route::ReplaceFile(ID.into()))
        );
        assert_eq!(
            r("GET", "/api/v1/media/folders").ok(),
            Some(Route::ListFolders)
        );
        assert_eq!(
            r("POST", "/api/v1/media/folders").ok(),
            Some(Route::CreateFolder)
        );
        assert_eq!(
            r("DELETE", "/api/v1/media/folders").ok(),
            Some(Route::DeleteFolder)
        );
        assert_eq!(
            r("POST", "/api/v1/media/presign").ok(),
            Some(Route::Presign)
        );
        assert_eq!(
            r("POST", "/api/v1/media/confirm").ok(),
            Some(Route::Confirm)
        );
        assert_eq!(
            r("HEAD", "/uploads/2026/03/a.jpg").ok(),
            Some(Route::File("2026/03/a.jpg".into()))
        );
        assert_eq!(r("GET", "/healthz").ok(), Some(Route::Healthz));
        assert_eq!(
            r("GET", "/uploads/private/2026/03/a.jpg").ok(),
            Some(Route::PrivateFile("private/2026/03/a.jpg".into()))
        );
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        match r("PUT", "/api/v1/media") {
            Err(ApiError::MethodNotAllowed { allow }) => assert_eq!(allow, "GET, HEAD, POST"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r("GET", "/api/v1/media/presign"),
            Err(ApiError::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            r("POST", "/api/v1/public/media"),
            Err(ApiError::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            r("POST", &format!("/api/v1/media/{ID}")),
            Err(ApiError::MethodNotAllowed { .. })
        ));
    }

    #[test]
    fn every_method_the_router_does_not_know_is_405_with_allow() {
        for m in ["TRACE", "PUT", "CONNECT", "FOO", "PROPFIND"] {
            for path in ["/api/v1/media", "/api/v1/public/media", "/healthz", "/"] {
                assert!(
                    matches!(r(m, path), Err(ApiError::MethodNotAllowed { .. })),
                    "{m} {path}"
                );
            }
        }
    }

    #[test]
    fn ids_are_checked_by_the_handlers_after_the_key() {
        assert_eq!(
            r("GET", "/api/v1/media/media_x").ok(),
            Some(Route::Get("media_x".into()))
        );
        assert!(media_id("media_x").is_err());
        assert_eq!(media_id(ID).ok(), Some(ID));
    }

    #[test]
    fn unknown_paths_are_404() {
        assert!(matches!(r("GET", "/nothing"), Err(ApiError::NoRoute)));
        assert!(matches!(
            r("GET", "/api/v1/media/a/b"),
            Err(ApiError::NoRoute)
        ));
        assert!(matches!(r("GET", "/api/v2/media"), Err(ApiError::NoRoute)));
        assert_eq!(r("GET", "/").ok(), Some(Route::Root));
        assert_eq!(r("GET", "/docs").ok(), Some(Route::Docs(None)));
        assert_eq!(
            r("GET", "/docs/").ok(),
            Some(Route::Docs(Some(String::new())))
        );
    }
}
