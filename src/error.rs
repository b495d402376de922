//! `ApiError`: the one place where every failure becomes an HTTP status, a stable
//! string code and the JSON body `{"error": {"status", "code", "message"}}`.
//! A 5xx logs the whole error and tells the client nothing internal.

use std::io::ErrorKind;

use hyper::StatusCode;
use serde::Serialize;

use crate::catalog::CatalogError;
use crate::delivery::CropError;
use crate::health::Refusal;
use crate::ingest::IngestError;
use crate::media::MediaError;
use crate::media::probe::ProbeError;
use crate::media::svg::SvgError;
use crate::model::QueryBound;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no route for this path")]
    NoRoute,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed here; allowed: {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("this API key has read scope; a write key is needed")]
    Forbidden,
    /// A request refused as it stands (a crop URL without a valid signature, ...).
    #[error("{message}")]
    Denied { code: &'static str, message: String },
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("the request body is larger than the {limit} byte limit")]
    TooLarge { limit: u64 },
    #[error("the requested range is outside the file ({len} bytes)")]
    RangeNotSatisfiable { len: u64 },
    #[error(transparent)]
    Timeout(crate::http::body::Stall),
    #[error("no file was accepted")]
    UploadFailed { errors: Vec<FileError> },
    #[error(
        "presigned uploads need a cloud storage backend (S3, R2); this server uses local \
         storage, so upload with POST /api/v1/media instead"
    )]
    PresignUnavailable,
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An upload or confirm that failed as a whole (see `From<IngestError>`).
    #[error(transparent)]
    Ingest(IngestError),
}

impl From<CropError> for ApiError {
    fn from(e: CropError) -> Self {
        let message = e.to_string();
        match e {
            CropError::BadSignature => Self::Denied {
                code: "invalid_signature",
                message,
            },
            CropError::OutOfBounds(_) => Self::Denied {
                code: "crop_out_of_bounds",
                message,
            },
            CropError::NotFound => Self::NotFound("media item"),
            CropError::Busy {
                backlog,
                retry_after,
            } => Self::Ingest(IngestError::Busy {
                backlog,
                retry_after,
            }),
            CropError::Pipeline(e) => Self::Internal(e.to_string()),
            CropError::OverBudget(_) => Self::Denied {
                code: "crop_over_budget",
                message,
            },
            CropError::Catalog(e) => Self::Catalog(e),
            CropError::Storage(e) => Self::Storage(e),
        }
    }
}

impl From<QueryBound> for ApiError {
    fn from(e: QueryBound) -> Self {
        let code = match e {
            QueryBound::Offset => "invalid_offset",
            QueryBound::Search => "invalid_search",
            QueryBound::Limit => "invalid_limit",
            QueryBound::Cursor => "invalid_cursor",
        };
        Self::bad_request(code, e.to_string())
    }
}

impl From<crate::library::EditError> for ApiError {
    fn from(e: crate::library::EditError) -> Self {
        match e {
            crate::library::EditError::Catalog(e) => Self::Catalog(e),
            crate::library::EditError::Storage(e) => Self::Storage(e),
            crate::library::EditError::Missing(key) => Self::Internal(format!(
                "stored file {key} is missing: the item cannot change visibility"
            )),
        }
    }
}

impl From<crate::events::WebhookError> for ApiError {
    fn from(e: crate::events::WebhookError) -> Self {
        use crate::events::WebhookError as W;
        let code = match &e {
            W::Catalog(_) => {
                let W::Catalog(e) = e else { unreachable!() };
                return Self::Catalog(e);
            }
            W::Target(_) => "invalid_webhook_url",
            W::Events(_) => "invalid_events",
            W::Description => "invalid_description",
            W::TooMany => "too_many_webhooks",
        };
        Self::bad_request(code, e.to_string())
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Catalog(e) => Self::Catalog(e),
            IngestError::Storage(e) => Self::Storage(e),
            IngestError::Refused { filename, error } => Self::UploadFailed {
                errors: vec![FileError::new(filename, &error)],
            },
            other => Self::Ingest(other),
        }
    }
}

/// One refused file of a multi-file upload.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FileError {
    #[schema(example = "notes.txt")]
    pub filename: String,
    #[schema(example = "unsupported_type")]
    pub code: &'static str,
    pub message: String,
}

impl FileError {
    pub fn new(filename: String, e: &MediaError) -> Self {
        Self {
            filename,
            code: media_code(e),
            message: e.to_string(),
        }
    }
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoRoute | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::Denied { .. } => StatusCode::FORBIDDEN,
            Self::BadRequest { .. } | Self::UploadFailed { .. } | Self::PresignUnavailable => {
                StatusCode::BAD_REQUEST
            }
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Catalog(e) if e.is_out_of_space() => StatusCode::INSUFFICIENT_STORAGE,
            Self::Catalog(CatalogError::Query(e)) => Self::from(*e).status(),
            Self::Catalog(e) => match e {
                CatalogError::NotFound(_) => StatusCode::NOT_FOUND,
                CatalogError::Query(_) => StatusCode::BAD_REQUEST,
                CatalogError::FolderNotEmpty
                | CatalogError::RootFolder
                | CatalogError::PresignExpired
                | CatalogError::AlreadyConfirmed => StatusCode::BAD_REQUEST,
                CatalogError::ConfirmInProgress
                | CatalogError::LastAdminKey
                | CatalogError::ItemChanged
                | CatalogError::WebhookDisabled
                | CatalogError::StillProcessing => StatusCode::CONFLICT,
                CatalogError::Unavailable | CatalogError::LeaseLost => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                CatalogError::Locked
                | CatalogError::IdTaken
                | CatalogError::Db(_)
                | CatalogError::Pg(_)
                | CatalogError::Corrupt(_)
                | CatalogError::TooNew { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Ingest(IngestError::Busy { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Ingest(IngestError::Declined(Refusal::StorageDown)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Ingest(IngestError::Declined(Refusal::OutOfSpace { .. })) => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            Self::Ingest(IngestError::Catalog(_) | IngestError::Storage(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR // never built: `From` unwraps them
            }
            Self::Ingest(_) => StatusCode::BAD_REQUEST,
            Self::Storage(StorageError::Unavailable | StorageError::Down) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Storage(StorageError::Io(e)) if e.kind() == ErrorKind::StorageFull => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            Self::Storage(StorageError::Io(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Storage(StorageError::Remote(_)) => StatusCode::BAD_GATEWAY,
            Self::Storage(StorageError::Unsupported | StorageError::NoPrivatePlace) => {
                StatusCode::BAD_REQUEST
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::NoRoute => "not_found",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::BadRequest { code, .. } | Self::Denied { code, .. } => code,
            Self::TooLarge { .. } => "payload_too_large",
            Self::Timeout(_) => "request_timeout",
            Self::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Self::UploadFailed { errors } => errors.first().map_or("upload_failed", |e| e.code),
            Self::PresignUnavailable | Self::Storage(StorageError::Unsupported) => {
                "presign_unavailable"
            }
            Self::Ingest(IngestError::Busy { .. }) => "processing_backlog_full",
            Self::Ingest(IngestError::KindMismatch { .. }) => "kind_mismatch",
            Self::Catalog(CatalogError::LeaseLost) => "confirm_timeout",
            Self::Ingest(IngestError::Declined(Refusal::StorageDown))
            | Self::Storage(StorageError::Down) => "storage_unavailable",
            Self::Ingest(IngestError::Declined(Refusal::OutOfSpace { .. })) => {
                "insufficient_storage"
            }
            Self::Storage(StorageError::Io(e)) if e.kind() == ErrorKind::StorageFull => {
                "insufficient_storage"
            }
            Self::Catalog(e) if e.is_out_of_space() => "insufficient_storage",
            Self::Ingest(IngestError::UploadMissing) => "upload_missing",
            Self::Ingest(IngestError::SizeMismatch { .. }) => "size_mismatch",
            Self::Ingest(IngestError::TypeMismatch { .. }) => "type_mismatch",
            Self::Ingest(IngestError::Refused { error, .. }) => media_code(error),
            Self::Catalog(CatalogError::Query(e)) => Self::from(*e).code(),
            Self::Catalog(CatalogError::NotFound(_)) => "not_found",
            Self::Catalog(CatalogError::FolderNotEmpty) => "folder_not_empty",
            Self::Catalog(CatalogError::RootFolder) => "root_folder",
            Self::Catalog(CatalogError::PresignExpired) => "presign_expired",
            Self::Catalog(CatalogError::AlreadyConfirmed) => "already_confirmed",
            Self::Catalog(CatalogError::ConfirmInProgress) => "confirm_in_progress",
            Self::Catalog(CatalogError::LastAdminKey) => "last_admin_key",
            Self::Catalog(CatalogError::ItemChanged) => "item_changed",
            Self::Catalog(CatalogError::StillProcessing) => "item_processing",
            Self::Catalog(CatalogError::WebhookDisabled) => "webhook_disabled",
            Self::Storage(StorageError::NoPrivatePlace) => "private_unavailable",
            Self::Storage(StorageError::Remote(_)) => "storage_error",
            Self::Catalog(CatalogError::Unavailable) | Self::Storage(StorageError::Unavailable) => {
                "unavailable"
            }
            Self::Catalog(_) | Self::Storage(_) | Self::Internal(_) | Self::Ingest(_) => {
                "internal_error"
            }
        }
    }

    /// The sentence shown to the client (never internal details for a 5xx).
    pub fn message(&self) -> String {
        let status = self.status();
        if status == StatusCode::INSUFFICIENT_STORAGE {
            return match self {
                Self::Ingest(e) => e.to_string(),
                _ => "the server is out of space; uploads resume once space is freed".to_owned(),
            };
        }
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            return "internal server error".to_owned();
        }
        match self {
            Self::UploadFailed { errors } if errors.len() == 1 => {
                format!("{}: {}", errors[0].filename, errors[0].message)
            }
            Self::UploadFailed { errors } => {
                format!("none of the {} files was accepted", errors.len())
            }
            other => other.to_string(),
        }
    }
}

/// Stable codes for refused files.
pub fn media_code(e: &MediaError) -> &'static str {
    match e {
        MediaError::Empty => "empty_file",
        MediaError::Unsupported => "unsupported_type",
        MediaError::Probe(ProbeError::TooLarge { .. } | ProbeError::TooCostly { .. }) => {
            "image_too_large"
        }
        MediaError::Probe(ProbeError::Malformed(_)) => "invalid_image",
        MediaError::Probe(ProbeError::Io(_)) => "internal_error",
        MediaError::Probe(ProbeError::Exceeded(_)) => "file_too_complex",
        MediaError::Unprocessable => "unprocessable_file",
        MediaError::Svg(SvgError::Unsafe(_)) => "unsafe_svg",
        MediaError::Svg(SvgError::Limit { .. }) => "file_too_complex",
        MediaError::Svg(_) => "invalid_svg",
        MediaError::InvalidVideo(_) => "invalid_video",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_details() {
        let e = ApiError::Storage(StorageError::Io(std::io::Error::other("disk /secret/path")));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.code(), "internal_error");
        assert!(!e.message().contains("secret"));
    }

    #[test]
    fn upload_failure_takes_the_first_file_code() {
        let errors = vec![FileError::new("a.txt".into(), &MediaError::Unsupported)];
        let e = ApiError::UploadFailed { errors };
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::BAD_REQUEST, "unsupported_type")
        );
        assert!(e.message().starts_with("a.txt: unsupported file type"));
    }
}
