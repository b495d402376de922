//! The machine-readable contract: `GET /api/v1/openapi.json`, an OpenAPI 3.1 document
//! built by utoipa from the types the handlers serialize (`handlers::views`, the error
//! body) and from one annotated function per operation (`paths`), which a test holds
//! against the router's route table. `openapi.json` at the repo root is the checked-in
//! copy (`make openapi` rewrites it; a test fails when it is stale).

pub mod examples;
mod paths;

use std::sync::OnceLock;

use serde::Deserialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::handlers::presign::Presigned;
use super::handlers::views;
use super::response::{ErrorBody, ErrorDetail};
use crate::error::FileError;
use crate::model::Status;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Darkroom Media API",
        description = "Upload, manage, and retrieve media files (images, documents, videos). \
            Authenticated endpoints take `Authorization: Bearer <API key>`; public endpoints \
            work without one and return fewer fields, of public items only. A key limited to \
            a folder sees only that folder's subtree: anything outside answers 404, as if it \
            did not exist. Private items' file URLs are signed links that expire \
            (`urlExpiresAt`). Errors are always \
            `{\"error\": {\"status\", \"code\", \"message\"}}`.",
        license(name = "MIT", identifier = "MIT")
    ),
    paths(
        paths::public_list, paths::public_get, paths::public_list_preflight,
        paths::public_get_preflight, paths::list, paths::upload, paths::get, paths::patch,
        paths::replace_file, paths::sign_crop, paths::public_crop, paths::delete, paths::list_folders, paths::create_folder, paths::delete_folder,
        paths::presign, paths::confirm, paths::list_keys, paths::create_key, paths::revoke_key,
        paths::list_webhooks, paths::create_webhook, paths::remove_webhook, paths::ping_webhook,
        paths::webhook_deliveries,
        paths::file, paths::private_file, paths::healthz, paths::readyz,
        paths::metrics, paths::openapi_json, paths::docs, paths::docs_asset, paths::root,
    ),
    components(schemas(
        views::FullItem, views::PublicItem, views::ImageView, views::VariantView, views::CropView,
        views::MimeType, views::Uploaded, views::Confirmed, views::Success, views::Folders,
        views::FolderCreated, views::ApiKeyView, views::KeyCreated, views::KeyScope, KeyRequest,
        Presigned, Status, crate::model::Visibility, FileError, ErrorBody, ErrorDetail,
        PatchRequest, FolderRequest, PresignRequest, ConfirmRequest, UploadForm, ReplaceForm,
        CropRequest, SignedCrop, Health, views::WebhookView, views::WebhookCreated,
        views::AttemptView, views::PingQueued, WebhookRequest,
        Readiness,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "public", description = "No key needed; public fields only; CORS for any origin."),
        (name = "media", description = "Upload, list, read, change and delete media (API key)."),
        (name = "folders", description = "Folder paths (API key)."),
        (name = "presigned uploads", description = "Upload straight to the bucket, then confirm (S3 storage only)."),
        (name = "keys", description = "API keys, managed while the server runs (an `admin` key)."),
        (name = "webhooks", description = "Events delivered to your endpoints, signed per Standard Webhooks (an `admin` key)."),
        (name = "files", description = "Stored originals and variants (local storage); private items' through signed links."),
        (name = "operations", description = "Health, readiness, metrics, this document and the explorer."),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` scheme the operations refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some("An API key: `drk_<id>_<secret>`.".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// A folder path: `/` or `/name(/name)*`, names of 1-64 letters, digits, `.`, `_`, `-`
/// (not `.` or `..`), at most 16 levels (`model::FolderPath`). Attributes take only
/// literals, so each folder field repeats it; a test holds them to this one.
#[cfg(test)]
const FOLDER: &str = r"^/([A-Za-z0-9._-]{1,64}(/[A-Za-z0-9._-]{1,64}){0,15})?$";

/// The document, serialized once.
pub fn json_bytes() -> &'static [u8] {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_default()
            .into_bytes()
    })
}

/// `PATCH /api/v1/media/{id}`: every field optional; `null` clears a text field.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // a schema: the handler validates the JSON object field by field
pub struct PatchRequest {
    #[schema(max_length = 10000, example = "Updated alt text")]
    alt: Option<String>,
    #[schema(max_length = 10000, example = "New title")]
    title: Option<String>,
    #[schema(max_length = 10000, example = "New description")]
    description: Option<String>,
    /// Moves the item (not nullable).
    #[schema(
        required = false,
        nullable = false,
        max_length = 512,
        example = "/images/updated",
        pattern = r"^/([A-Za-z0-9._-]{1,64}(/[A-Za-z0-9._-]{1,64}){0,15})?$"
    )]
    folder: String,
    /// Percent of the width (not nullable).
    #[schema(
        required = false,
        nullable = false,
        minimum = 0,
        maximum = 100,
        example = 35
    )]
    focal_x: f64,
    /// Percent of the height (not nullable).
    #[schema(
        required = false,
        nullable = false,
        minimum = 0,
        maximum = 100,
        example = 65
    )]
    focal_y: f64,
    /// Moves the item's files to the place of this visibility under new URLs (the old
    /// ones stop working); refused (409 `item_processing`) while its variants are being
    /// made. Applied before the other fields.
    #[schema(required = false, nullable = false)]
    visibility: crate::model::Visibility,
}

/// `POST /api/v1/keys`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // a schema: the handler validates the JSON object field by field
pub struct KeyRequest {
    #[schema(value_type = crate::http::handlers::views::KeyScope)]
    scope: String,
    /// A label for people (at most 100 characters, no control characters).
    #[schema(example = "cms-production", max_length = 100)]
    name: Option<String>,
    /// Limits a `read` or `write` key to this folder's subtree: it lists, searches,
    /// reads, uploads into, changes and deletes only items there (uploads and confirms
    /// without a folder land in it), and to it everything else does not exist (404).
    /// Admin keys are never limited.
    #[schema(
        required = false,
        nullable = false,
        pattern = r"^/([A-Za-z0-9._-]{1,64}(/[A-Za-z0-9._-]{1,64}){0,15})?$",
        example = "/clients/acme"
    )]
    folder: String,
}

/// `POST /api/v1/webhooks`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // a schema: the handler validates the JSON object field by field
pub struct WebhookRequest {
    /// Where to deliver: `http://` or `https://`; redirects are not followed.
    #[schema(example = "https://cms.example.com/hooks/darkroom")]
    url: String,
    /// The event types to deliver, or `["*"]` for all: `media.created`, `media.ready`,
    /// `media.failed`, `media.updated`, `media.replaced`, `media.deleted`,
    /// `folder.created`, `folder.deleted`.
    #[schema(example = json!(["*"]), min_items = 1)]
    events: Vec<String>,
    /// A label for people (at most 200 characters).
    #[schema(required = false, nullable = false, max_length = 200)]
    description: String,
}

/// A folder path: `/` or `/name(/name)*`, names of letters, digits, `.`, `_`, `-`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // a schema: the handler reads `path` from the JSON object
pub struct FolderRequest {
    #[schema(
        pattern = r"^/([A-Za-z0-9._-]{1,64}(/[A-Za-z0-9._-]{1,64}){0,15})?$",
        example = "/images/new-category"
    )]
    path: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // a schema: the handler validates the JSON object field by field
pub struct PresignRequest {
    #[schema(example = "large-video.mp4")]
    filename: String,
    #[schema(value_type = views::MimeType, example = "video/mp4")]
    mime_type: String,
    /// Exact size in bytes; the uploaded object must have it.
    #[schema(minimum = 1, example = 500000000)]
    size: u64,
    /// The item's visibility (default `media.default_visibility`): where the upload is
    /// stored, so it is chosen here; a private upload's `publicUrl` is null.
    #[schema(required = false, nullable = false)]
    visibility: crate::model::Visibility,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // a schema: the handler validates the JSON object field by field
pub struct ConfirmRequest {
    #[schema(example = "site_id/2026/03/abc123.mp4")]
    storage_key: String,
    /// Defaults to the name given at presign.
    filename: Option<String>,
    /// If given, must equal the presigned type.
    #[schema(value_type = Option<views::MimeType>)]
    mime_type: Option<String>,
    /// If given, must equal the presigned size.
    size: Option<u64>,
    #[schema(
        required = false,
        nullable = false,
        pattern = r"^/([A-Za-z0-9._-]{1,64}(/[A-Za-z0-9._-]{1,64}){0,15})?$",
        max_length = 512,
        default = "/",
        example = "/videos"
    )]
    folder: String,
    #[schema(required = false, nullable = false, max_length = 10000)]
    alt: String,
    /// If given, must equal the visibility chosen at presign.
    #[schema(required = false, nullable = false)]
    visibility: crate::model::Visibility,
}

/// The size of a crop to sign.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema: the handler validates the JSON object
pub struct CropRequest {
    #[schema(minimum = 1, maximum = 4096, example = 300)]
    width: u32,
    #[schema(minimum = 1, maximum = 4096, example = 200)]
    height: u32,
}

/// A signed crop URL.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema: the handler writes the JSON
pub struct SignedCrop {
    #[schema(
        example = "/api/v1/public/media/media_0Oqzd1Tb3f9KxQ2L/crop?w=300&h=200&sig=5f1c0a5e6b7d8e9f00112233445566aa"
    )]
    url: String,
    width: u32,
    height: u32,
    /// For a private item: when the URL stops working (as its item's `urlExpiresAt`).
    #[schema(format = DateTime, required = false, nullable = false)]
    expires_at: String,
}

/// `multipart/form-data`: exactly one file, the item's new content.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema: multipart.rs reads the form
pub struct ReplaceForm {
    /// The new file, of the item's kind (image, document or video; type from the bytes).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// `multipart/form-data`: one or more `files`, and optionally `folder` and `alt`.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema: multipart.rs reads the form
pub struct UploadForm {
    /// The items' visibility (default `media.default_visibility`). Best sent before the
    /// files: it decides where they are stored (after them, each is copied there).
    #[schema(required = false, nullable = false)]
    visibility: crate::model::Visibility,
    /// One or more files (JPEG, PNG, GIF, WebP, SVG, PDF, MP4, WebM; type from the bytes).
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1, max_items = 50)]
    files: Vec<Vec<u8>>,
    /// Target folder.
    #[schema(
        required = false,
        nullable = false,
        pattern = r"^/([A-Za-z0-9._-]{1,64}(/[A-Za-z0-9._-]{1,64}){0,15})?$",
        max_length = 512,
        default = "/",
        example = "/"
    )]
    folder: String,
    /// Alt text for the uploaded images (empty: none).
    #[schema(required = false, nullable = false, max_length = 10000, example = "")]
    alt: String,
}

/// `GET /healthz`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Health {
    #[schema(example = "ok")]
    status: String,
}

/// `GET /readyz`: which part is missing when not ready, from the last health probe.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// `ready`, `unavailable` or `draining`.
    #[schema(example = "ready")]
    status: String,
    /// `ok`, or `unavailable` (not answering, or its last commit failed).
    #[schema(example = "ok")]
    catalog: String,
    /// `ok`, or `unavailable` (not answering within `server.readiness_timeout_secs`).
    #[schema(example = "ok")]
    storage: String,
    /// `ok`, or `unavailable` (the processing pool is restarting: images would wait).
    #[schema(example = "ok")]
    processing: String,
    /// `ok`, or `low` (below `limits.min_free_bytes`: uploads get 507).
    #[schema(example = "ok")]
    disk: String,
    /// Free bytes of the data dir's filesystem.
    #[schema(example = 52_000_000_000_u64)]
    free_bytes: u64,
}

/// Query of the listings.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // parameters: http::query parses them
pub struct ListParams {
    /// Only items in this folder (exactly; not its subfolders). With a key limited to a
    /// folder: one inside it (else 404); without, the key's whole subtree is listed.
    #[param(
        pattern = r"^/([A-Za-z0-9._-]{1,64}(/[A-Za-z0-9._-]{1,64}){0,15})?$",
        max_length = 512,
        example = "/images"
    )]
    folder: Option<String>,
    /// Only items of this kind.
    #[param(rename = "type", inline)]
    kind: Option<KindParam>,
    /// Substring of the filename or alt text, matched after Unicode normalization (NFC)
    /// and case folding on both sides (`café` finds `CAFÉ` and a Mac's decomposed `café`,
    /// `strasse` finds `Straße`); `%` and `_` are literal. At most 200 characters. On the
    /// public list it needs an API key.
    #[param(max_length = 200)]
    search: Option<String>,
    /// On the public list it needs an API key.
    #[param(inline)]
    sort: Option<SortParam>,
    /// On the public list it needs an API key.
    #[param(inline)]
    order: Option<OrderParam>,
    /// Results per page (more than 100 is answered as 100).
    #[param(minimum = 1, maximum = 100, default = 24)]
    limit: Option<u32>,
    /// Items to skip, at most 10,000 (an offset walks the listing from its start): for
    /// deeper pages use `cursor`.
    #[param(minimum = 0, maximum = 10_000, default = 0)]
    offset: Option<u64>,
    /// The previous page's `nextCursor`: this page starts right after its last item, at the
    /// same cost at any depth and unaffected by items added or deleted meanwhile. Use with the
    /// same sort and order, and without `offset`.
    #[param(max_length = 1400)]
    cursor: Option<String>,
    /// Only items of this visibility (with a key; the public list has public items only).
    #[param(inline)]
    visibility: Option<crate::model::Visibility>,
}

/// How long the links to private items' files in the answer last.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // parameters: http::query parses them
pub struct LinkParams {
    /// Seconds, from 1 to `media.max_link_ttl_secs` (default `media.link_ttl_secs`, 1 hour).
    #[param(rename = "urlTtl", minimum = 1, maximum = 604800)]
    url_ttl: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum KindParam {
    Image,
    Document,
    Video,
}

#[derive(Deserialize, ToSchema)]
#[schema(default = "createdAt")]
#[allow(dead_code)]
pub enum SortParam {
    #[serde(rename = "createdAt")]
    CreatedAt,
    #[serde(rename = "filename")]
    Filename,
    #[serde(rename = "size")]
    Size,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(default = "desc")]
#[allow(dead_code)]
pub enum OrderParam {
    Asc,
    Desc,
}

#[cfg(test)]
mod tests;
