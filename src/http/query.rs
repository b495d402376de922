//! Query strings of the listing endpoints, validated into a `ListQuery`.

use crate::error::ApiError;
use crate::model::{FolderPath, Kind, ListQuery, SortField, Visibility, cursor, fold};

/// Which parameters a caller may use: anonymous public calls get folder/type/limit/
/// offset only; search, sort and order need an API key (they are ignored without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Full,
}

/// `?wait=` of an upload: `true`/`1` or `false`/`0` (absent or empty = false).
pub fn wait_flag(raw: Option<&str>) -> Result<bool, ApiError> {
    let mut wait = false;
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if key == "wait" {
            wait = match value.as_ref() {
                "true" | "1" => true,
                "false" | "0" | "" => false,
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_wait",
                        "wait must be true or false",
                    ));
                }
            };
        }
    }
    Ok(wait)
}

/// `?urlTtl=SECONDS`: how long the signed links of private items in the answer last,
/// from 1 to `max` (absent or empty: the configured lifetime).
pub fn url_ttl(raw: Option<&str>, max: u64) -> Result<Option<u64>, ApiError> {
    let mut ttl = None;
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if key == "urlTtl" && !value.is_empty() {
            ttl = match value.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Some(n),
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_url_ttl",
                        format!("urlTtl must be a whole number of seconds from 1 to {max}"),
                    ));
                }
            };
        }
    }
    Ok(ttl)
}

/// Parses and validates; `limit` over 100 is clamped, malformed values are 400. An empty
/// value (`?folder=`) counts as not given, as HTML forms send them.
pub fn list_query(raw: Option<&str>, access: Access) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery::default();
    let mut cursor = None;
    let pairs = form_urlencoded::parse(raw.unwrap_or("").as_bytes()).filter(|(_, v)| !v.is_empty());
    for (key, value) in pairs {
        match key.as_ref() {
            "folder" => {
                q.folder = Some(FolderPath::parse(&value).ok_or_else(|| invalid_folder(&value))?);
            }
            "type" => {
                q.kind = Some(Kind::parse(&value).ok_or_else(|| {
                    ApiError::bad_request("invalid_type", "type must be image, document or video")
                })?);
            }
            "limit" => q.limit = number(&value, "limit", 1)?.min(ListQuery::MAX_LIMIT),
            "offset" => q.offset = number(&value, "offset", 0)?,
            "cursor" => cursor = Some(value.into_owned()),
            "search" if access == Access::Full => {
                let s = fold(value.trim());
                q.search = (!s.is_empty()).then_some(s);
            }
            "visibility" if access == Access::Full => {
                q.visibility = Some(Visibility::parse(&value).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_visibility",
                        "visibility must be public or private",
                    )
                })?);
            }
            "sort" if access == Access::Full => {
                q.sort = SortField::parse(&value).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_sort",
                        "sort must be createdAt, filename or size",
                    )
                })?;
            }
            "order" if access == Access::Full => {
                q.descending = match value.as_ref() {
                    "asc" => false,
                    "desc" => true,
                    _ => {
                        return Err(ApiError::bad_request(
                            "invalid_order",
                            "order must be asc or desc",
                        ));
                    }
                };
            }
            _ => {}
        }
    }
    if let Some(raw) = cursor {
        if q.offset > 0 {
            return Err(ApiError::bad_request(
                "invalid_cursor",
                "give cursor or offset, not both",
            ));
        }
        let position = cursor::decode(&raw, q.sort, q.descending)
            .map_err(|why| ApiError::bad_request("invalid_cursor", why))?;
        q.cursor = Some(position);
    }
    q.check()?;
    Ok(q)
}

pub fn invalid_folder(value: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_folder",
        format!(
            "invalid folder path {value:?}: use / or /name(/name)*, names of letters, digits, \
             '.', '_' or '-' (at most 64 characters, 16 levels)"
        ),
    )
}

/// A whole number from `min` to 2^63-1 (the largest integer the contract promises).
fn number(value: &str, name: &str, min: usize) -> Result<usize, ApiError> {
    match value.parse::<usize>() {
        Ok(n) if n >= min && i64::try_from(n).is_ok() => Ok(n),
        _ => Err(ApiError::bad_request(
            if name == "limit" {
                "invalid_limit"
            } else {
                "invalid_offset"
            },
            format!("{name} must be an integer of at least {min}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_clamping() {
        let q = list_query(None, Access::Full).expect("ok");
        assert_eq!((q.limit, q.offset, q.descending), (24, 0, true));
        assert_eq!(
            list_query(Some("limit=500"), Access::Public)
                .expect("ok")
                .limit,
            100
        );
    }

    #[test]
    fn public_ignores_search_sort_order() {
        let q = list_query(Some("search=x&sort=bogus&order=up"), Access::Public).expect("ok");
        assert_eq!(q, ListQuery::default());
        let q =
            list_query(Some("search=%20Cat%25_&sort=size&order=asc"), Access::Full).expect("ok");
        assert_eq!(q.search.as_deref(), Some("cat%_"));
        assert_eq!(q.sort, SortField::Size);
        assert!(!q.descending);
    }

    #[test]
    fn bad_values_are_400() {
        for bad in [
            "limit=0",
            "limit=-1",
            "limit=x",
            "offset=-3",
            "offset=9223372036854775808",
            "type=audio",
            "folder=abc",
        ] {
            assert!(list_query(Some(bad), Access::Public).is_err(), "{bad}");
        }
        for bad in ["sort=name", "order=up"] {
            assert!(list_query(Some(bad), Access::Full).is_err(), "{bad}");
        }
        let empty = list_query(Some("folder=&type=&limit=&sort="), Access::Full).expect("ok");
        assert_eq!(empty, ListQuery::default(), "empty values count as absent");
        let q = list_query(Some("folder=%2Fimages&type=image"), Access::Public).expect("ok");
        assert_eq!(q.folder.as_ref().map(FolderPath::as_str), Some("/images"));
        assert_eq!(q.kind, Some(Kind::Image));
    }

    #[test]
    fn wait_flag_values() {
        assert!(!wait_flag(None).expect("absent"));
        assert!(wait_flag(Some("wait=true")).expect("true"));
        assert!(wait_flag(Some("a=b&wait=1")).expect("1"));
        assert!(!wait_flag(Some("wait=false")).expect("false"));
        assert!(!wait_flag(Some("wait=")).expect("empty"));
        assert!(wait_flag(Some("wait=yes")).is_err());
    }
}
