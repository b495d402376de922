//! The route table: one `match` on method and path segments into a `Route`. Pure, so
//! it is unit-tested without a server.

use hyper::Method;

use crate::error::ApiError;
use crate::model::id::is_media_id;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    PublicList,
    PublicGet(String),
    /// CORS preflight on a public endpoint.
    PublicPreflight,
    List,
    Upload,
    Get(String),
    Patch(String),
    Delete(String),
    ListFolders,
    CreateFolder,
    DeleteFolder,
    Presign,
    Confirm,
    /// A stored file: `YYYY/MM/<name>`.
    File(String),
    Healthz,
    Readyz,
    Metrics,
    /// Test-only fault injection (`admin.fault_injection`): make an actor fail.
    AdminCrash(String),
}

impl Route {
    /// The path template, for metric labels and logs (bounded cardinality).
    pub fn template(&self) -> &'static str {
        match self {
            Self::PublicList | Self::PublicPreflight => "/api/v1/public/media",
            Self::PublicGet(_) => "/api/v1/public/media/{id}",
            Self::List | Self::Upload => "/api/v1/media",
            Self::Get(_) | Self::Patch(_) | Self::Delete(_) => "/api/v1/media/{id}",
            Self::ListFolders | Self::CreateFolder | Self::DeleteFolder => "/api/v1/media/folders",
            Self::Presign => "/api/v1/media/presign",
            Self::Confirm => "/api/v1/media/confirm",
            Self::File(_) => "/uploads/{year}/{month}/{file}",
            Self::Healthz => "/healthz",
            Self::Readyz => "/readyz",
            Self::Metrics => "/metrics",
            Self::AdminCrash(_) => "/admin/crash/{actor}",
        }
    }
}

const GET: &str = "GET, HEAD";
const PUBLIC: &str = "GET, HEAD, OPTIONS";

pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let m = method.as_str();
    let get = m == "GET" || m == "HEAD";
    let (route, allow) = match segments.as_slice() {
        ["api", "v1", "public", "media"] => match m {
            _ if get => (Some(Route::PublicList), PUBLIC),
            "OPTIONS" => (Some(Route::PublicPreflight), PUBLIC),
            _ => (None, PUBLIC),
        },
        ["api", "v1", "public", "media", id] => match m {
            _ if get => (media_id(id).map(Route::PublicGet), PUBLIC),
            "OPTIONS" => (Some(Route::PublicPreflight), PUBLIC),
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
        ["api", "v1", "media", "presign"] => (Some(Route::Presign).filter(|_| m == "POST"), "POST"),
        ["api", "v1", "media", "confirm"] => (Some(Route::Confirm).filter(|_| m == "POST"), "POST"),
        ["api", "v1", "media", id] => {
            let allow = "GET, HEAD, PATCH, DELETE";
            let id = media_id(id);
            match m {
                _ if get => (id.map(Route::Get), allow),
                "PATCH" => (id.map(Route::Patch), allow),
                "DELETE" => (id.map(Route::Delete), allow),
                _ => (None, allow),
            }
        }
        ["uploads", year, month, name] => {
            let key = format!("{year}/{month}/{name}");
            (Some(Route::File(key)).filter(|_| get), GET)
        }
        ["healthz"] => (Some(Route::Healthz).filter(|_| get), GET),
        ["readyz"] => (Some(Route::Readyz).filter(|_| get), GET),
        ["metrics"] => (Some(Route::Metrics).filter(|_| get), GET),
        ["admin", "crash", actor] => (
            Some(Route::AdminCrash((*actor).to_owned())).filter(|_| m == "POST"),
            "POST",
        ),
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

/// Only well-formed ids reach the catalog; anything else is a 404 right away.
fn media_id(s: &str) -> Option<String> {
    is_media_id(s).then(|| s.to_owned())
}

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
            Some(Route::PublicPreflight)
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
    fn unknown_paths_and_bad_ids_are_404() {
        assert!(matches!(r("GET", "/"), Err(ApiError::NoRoute)));
        assert!(matches!(
            r("GET", "/api/v1/media/"),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            r("GET", "/api/v1/media/media_x"),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            r("GET", "/api/v1/media/a/b"),
            Err(ApiError::NoRoute)
        ));
        assert!(matches!(r("GET", "/api/v2/media"), Err(ApiError::NoRoute)));
    }
}
