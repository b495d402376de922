//! One doc-only function per operation: what `router.rs` routes, as utoipa annotations.
//! The test in `tests.rs` holds this list and the route table to each other; the bodies
//! are the real types of `handlers::views`.

#![allow(dead_code)] // the functions exist for their annotations only

use super::{
    ConfirmRequest, CropRequest, FolderRequest, Health, KeyRequest, LinkParams, ListParams,
    PatchRequest, PresignRequest, Readiness, ReplaceForm, SignedCrop, UploadForm, WebhookRequest,
};
use crate::http::handlers::presign::Presigned;
use crate::http::handlers::views::{
    ApiKeyView, AttemptView, Confirmed, Data, FolderCreated, Folders, FullItem, KeyCreated, Page,
    PingQueued, PublicItem, Success, Uploaded, WebhookCreated, WebhookView,
};
use crate::http::response::ErrorBody;

const ID: &str = "A media id, `media_` and 16 letters or digits";

/// List media (public fields)
///
/// Public fields only, of public items only (private items are never listed, counted or
/// found here). Without a key `search`, `sort` and `order` are ignored; with a valid key
/// they apply (an invalid key is 401).
#[utoipa::path(get, path = "/api/v1/public/media", tag = "public",
    params(ListParams),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "One page, newest first by default", body = Page<PublicItem>),
        (status = 400, description = "`invalid_folder`, `invalid_type`, `invalid_limit`, `invalid_offset`, `invalid_sort`, `invalid_order`, `invalid_cursor`, `invalid_search`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: a key was sent and is not valid", body = ErrorBody),
    ))]
fn public_list() {}

/// Get a media item (public fields)
///
/// Cached for an hour (`Cache-Control: public, max-age=3600`) with an `ETag`. A private
/// item answers 404, exactly as an unknown id.
#[utoipa::path(get, path = "/api/v1/public/media/{id}", tag = "public",
    params(("id" = String, Path, description = ID, example = "media_0Oqzd1Tb3f9KxQ2L")),
    security(()),
    responses(
        (status = 200, description = "The item", body = Data<PublicItem>,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` matched the ETag"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn public_get() {}

/// A crop of any size, signed
///
/// Redirects (302) to a WebP of exactly `w`x`h` cut around the item's focal point, made
/// on the first request and kept (then served like a variant: immutable caching, ETag,
/// Range). `sig` comes from `POST /api/v1/media/{id}/crops` or `darkroom sign ID WxH`. The
/// signature and the bounds are checked before anything is read. A private item's crop
/// URLs carry `expires` and work until then only (a lasting URL answers 404 for it); they
/// redirect to a signed link that ends at the same time.
#[utoipa::path(get, path = "/api/v1/public/media/{id}/crop", tag = "public",
    params(
        ("id" = String, Path, description = ID, example = "media_0Oqzd1Tb3f9KxQ2L"),
        ("w" = u32, Query, description = "Width, 1 to `delivery.max_crop_side` (4096)", minimum = 1, maximum = 4096),
        ("h" = u32, Query, description = "Height, 1 to `delivery.max_crop_side` (4096)", minimum = 1, maximum = 4096),
        ("sig" = String, Query, description = "The URL's signature (32 hex digits)"),
        ("expires" = Option<u64>, Query, description = "A private item's crop URL: when it ends (Unix seconds)"),
    ),
    security(()),
    responses(
        (status = 302, description = "To the crop's file", headers(("Location" = String), ("Cache-Control" = String))),
        (status = 403, description = "`invalid_signature` (also when `expires` is past), `crop_out_of_bounds`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such item, not a raster image, or a private item's crop without `expires`", body = ErrorBody),
        (status = 503, description = "`processing_backlog_full` (with `Retry-After`)", body = ErrorBody),
    ))]
fn public_crop() {}

/// CORS preflight
#[utoipa::path(options, path = "/api/v1/public/media", tag = "public", security(()),
    responses((status = 204, description = "Allowed methods and headers for any origin")))]
fn public_list_preflight() {}

/// CORS preflight
#[utoipa::path(options, path = "/api/v1/public/media/{id}", tag = "public", security(()),
    params(("id" = String, Path, description = ID)),
    responses((status = 204, description = "Allowed methods and headers for any origin")))]
fn public_get_preflight() {}

/// List media (full)
///
/// Public and private items (`visibility` filters). Every URL of a private item is a
/// signed link that ends at its `urlExpiresAt`.
#[utoipa::path(get, path = "/api/v1/media", tag = "media",
    params(ListParams, LinkParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page with every folder", body = Page<FullItem>),
        (status = 400, description = "`invalid_folder`, `invalid_type`, `invalid_limit`, `invalid_offset`, `invalid_sort`, `invalid_order`, `invalid_cursor`, `invalid_search`, `invalid_visibility`, `invalid_url_ttl`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
fn list() {}

/// Upload media
///
/// One or more files; each succeeds or fails on its own. Images come back `processing`
/// (with `?wait=true`, once processed). At most 50 MB of files per request on local
/// storage (500 MB per file on S3), 50 files.
#[utoipa::path(post, path = "/api/v1/media", tag = "media",
    params(("wait" = Option<bool>, Query, description = "Hold the answer until this request's images are processed (at most 30 s)"), LinkParams),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "At least one file was accepted; `errors` lists the others", body = Uploaded),
        (status = 400, description = "`no_files`, `invalid_content_type`, `invalid_multipart`, `invalid_folder`, `invalid_field`, `too_many_files`, `invalid_wait`, `invalid_visibility`, `private_unavailable` (private on S3 without `storage.private_bucket`), `invalid_url_ttl`, or every file refused: `unsupported_type`, `empty_file`, `invalid_image`, `image_too_large`, `file_too_complex`, `unprocessable_file`, `unsafe_svg`, `invalid_svg`, `invalid_video` (with `errors`)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a read key", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body stalled or arrived slower than the minimum rate", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 503, description = "`processing_backlog_full` (with `Retry-After`; documents and videos are still accepted), or `storage_unavailable` (with `Retry-After`): the storage backend is known to be down", body = ErrorBody),
        (status = 507, description = "`insufficient_storage`: the server's disk is below its free-space floor; uploads resume once space is freed", body = ErrorBody),
    ))]
fn upload() {}

/// Get a media item (full)
#[utoipa::path(get, path = "/api/v1/media/{id}", tag = "media",
    params(("id" = String, Path, description = ID, example = "media_0Oqzd1Tb3f9KxQ2L"), LinkParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The item", body = Data<FullItem>),
        (status = 400, description = "`invalid_url_ttl`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found` (also an item outside the folder a key is limited to)", body = ErrorBody),
    ))]
fn get() {}

/// Update media metadata
#[utoipa::path(patch, path = "/api/v1/media/{id}", tag = "media",
    params(("id" = String, Path, description = ID), LinkParams),
    request_body = PatchRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The item as changed", body = Data<FullItem>),
        (status = 400, description = "`invalid_json`, `invalid_body`, `unknown_field`, `invalid_field`, `invalid_folder`, `invalid_focal_point`, `invalid_visibility`, `private_unavailable`, `invalid_url_ttl`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`item_processing`: a visibility change while the item's variants are being made; `item_changed`: its files changed during the move (retry)", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 502, description = "`storage_error`: moving the files failed (nothing changed)", body = ErrorBody),
    ))]
fn patch() {}

/// Replace the file of a media item
///
/// One new file (field `file`) for the item: same id, folder, alt, title, description
/// and focal point; the type may change within the same kind (image → image). The file
/// goes through the checks, limits, metadata removal and backpressure of an upload; it
/// gets a new storage key, so a new `url`, new variants and crops (images come back
/// `processing`), and `updatedAt`. The old original, variants and crops are deleted once
/// the new record is committed; until then they are what the item serves.
#[utoipa::path(put, path = "/api/v1/media/{id}/file", tag = "media",
    params(("id" = String, Path, description = ID), LinkParams),
    request_body(content = ReplaceForm, content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The item with its new file", body = Data<FullItem>),
        (status = 400, description = "`too_many_files` (not exactly one file), `kind_mismatch` (an image for a video, ...), `no_files`, `invalid_content_type`, `invalid_multipart`, or the file refused: `unsupported_type`, `empty_file`, `invalid_image`, `image_too_large`, `file_too_complex`, `unprocessable_file`, `unsafe_svg`, `invalid_svg`, `invalid_video` (with `errors`)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a read key", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body stalled or arrived slower than the minimum rate", body = ErrorBody),
        (status = 409, description = "`item_changed`: the item's visibility changed during the upload (retry)", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 503, description = "`processing_backlog_full` (with `Retry-After`) or `storage_unavailable`", body = ErrorBody),
        (status = 507, description = "`insufficient_storage`", body = ErrorBody),
    ))]
fn replace_file() {}

/// Sign a crop URL
///
/// A signed `GET /api/v1/public/media/{id}/crop` URL (a path) for a crop of this size;
/// a private item's ends at `expiresAt` (`urlTtl`).
#[utoipa::path(post, path = "/api/v1/media/{id}/crops", tag = "media",
    params(("id" = String, Path, description = ID), LinkParams),
    request_body = CropRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed URL", body = SignedCrop),
        (status = 400, description = "`invalid_crop_size`, `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a read key", body = ErrorBody),
        (status = 404, description = "`not_found`: no such item, or not a raster image", body = ErrorBody),
    ))]
fn sign_crop() {}

/// Delete media
#[utoipa::path(delete, path = "/api/v1/media/{id}", tag = "media",
    params(("id" = String, Path, description = ID)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted, with its files and variants", body = Success),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 503, description = "`unavailable` (with `Retry-After`): the catalog is reopening after a failed commit", body = ErrorBody),
        (status = 507, description = "`insufficient_storage`: the disk under the catalog is full (something other than uploads filled it); retry once space is freed", body = ErrorBody),
    ))]
fn delete() {}

/// List folders
#[utoipa::path(get, path = "/api/v1/media/folders", tag = "folders",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every folder that holds media or was created, their parents and `/`, sorted", body = Folders),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
fn list_folders() {}

/// Create a folder
#[utoipa::path(post, path = "/api/v1/media/folders", tag = "folders",
    request_body = FolderRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = FolderCreated),
        (status = 200, description = "It already existed", body = FolderCreated),
        (status = 400, description = "`invalid_folder`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
    ))]
fn create_folder() {}

/// Delete a folder
///
/// It must hold no media and no subfolder; `/` cannot be deleted. The path may also be
/// given as `?path=`.
#[utoipa::path(delete, path = "/api/v1/media/folders", tag = "folders",
    params(("path" = Option<String>, Query, pattern = r"^/([A-Za-z0-9._-]{1,64}(/[A-Za-z0-9._-]{1,64}){0,15})?$",
        description = "The folder, instead of a body")),
    request_body(content = Option<FolderRequest>, description = "Required unless `?path=` is given"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted", body = Success),
        (status = 400, description = "`invalid_folder`, `folder_not_empty`, `root_folder`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such folder", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
    ))]
fn delete_folder() {}

/// Request a presigned URL
#[utoipa::path(post, path = "/api/v1/media/presign", tag = "presigned uploads",
    request_body = PresignRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Where and how to upload", body = Presigned),
        (status = 400, description = "`presign_unavailable` (local storage), `invalid_filename`, `invalid_mime_type`, `invalid_size`, `invalid_visibility`, `private_unavailable`, `invalid_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 502, description = "`storage_error`: the object store failed", body = ErrorBody),
    ))]
fn presign() {}

/// Confirm a presigned upload
#[utoipa::path(post, path = "/api/v1/media/confirm", tag = "presigned uploads",
    params(LinkParams),
    request_body = ConfirmRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new item", body = Confirmed),
        (status = 400, description = "`presign_unavailable`, `invalid_storage_key`, `invalid_folder`, `invalid_field`, `presign_expired`, `already_confirmed`, `mime_mismatch`, `size_mismatch`, `visibility_mismatch`, `invalid_url_ttl`, `upload_missing`, `type_mismatch`, or the file refused like an upload (with `errors`)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`: no presign for this key", body = ErrorBody),
        (status = 409, description = "`confirm_in_progress`: another confirm of this upload is running; retry once it has answered", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 502, description = "`storage_error`", body = ErrorBody),
        (status = 503, description = "`processing_backlog_full` or `storage_unavailable` (with `Retry-After`), `confirm_timeout` (the confirm took too long; retry it)", body = ErrorBody),
        (status = 507, description = "`insufficient_storage`: the server's disk is below its free-space floor", body = ErrorBody),
    ))]
fn confirm() {}

/// A stored file
///
/// Originals and variants by the `url` of their item, with `ETag`, `Last-Modified`,
/// single byte ranges and immutable caching. Local storage only (on S3, files are read
/// from the bucket's public URL).
#[utoipa::path(get, path = "/uploads/{year}/{month}/{file}", tag = "files", security(()),
    params(
        ("year" = String, Path, example = "2026"),
        ("month" = String, Path, example = "03"),
        ("file" = String, Path, example = "0Oqzd1TbAbCdEfGh-400.webp"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`"),
    ),
    responses(
        (status = 200, description = "The file, with its type's MIME", content(
            (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "image/gif"),
            (Vec<u8> = "image/webp"), (Vec<u8> = "image/svg+xml"), (Vec<u8> = "application/pdf"),
            (Vec<u8> = "video/mp4"), (Vec<u8> = "video/webm"))),
        (status = 206, description = "The range asked for", content(
            (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "image/gif"),
            (Vec<u8> = "image/webp"), (Vec<u8> = "image/svg+xml"), (Vec<u8> = "application/pdf"),
            (Vec<u8> = "video/mp4"), (Vec<u8> = "video/webm"))),
        (status = 304, description = "Not modified"),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 416, description = "`range_not_satisfiable`", body = ErrorBody),
    ))]
fn file() {}

/// A private item's file
///
/// Through the signed link its item's views give (`url` of a private item, its variants
/// and crops, on local storage): HMAC-SHA256 over method, path and `expires`. Served like
/// a public file (ETag, Range, 304) with `Cache-Control: private, max-age=` the link's
/// remaining life. On S3 private files are read from the private bucket by presigned GETs.
#[utoipa::path(get, path = "/uploads/private/{year}/{month}/{file}", tag = "files", security(()),
    params(
        ("year" = String, Path, example = "2026"),
        ("month" = String, Path, example = "03"),
        ("file" = String, Path, example = "0Oqzd1TbAbCdEfGh-400.webp"),
        ("expires" = u64, Query, description = "When the link ends (Unix seconds)"),
        ("sig" = String, Query, description = "The link's signature (32 hex digits)"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`"),
    ),
    responses(
        (status = 200, description = "The file, with its type's MIME", content(
            (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "image/gif"),
            (Vec<u8> = "image/webp"), (Vec<u8> = "image/svg+xml"), (Vec<u8> = "application/pdf"),
            (Vec<u8> = "video/mp4"), (Vec<u8> = "video/webm")),
            headers(("Cache-Control" = String))),
        (status = 206, description = "The range asked for"),
        (status = 304, description = "Not modified"),
        (status = 403, description = "`invalid_link`: no signature, an altered one, or past `expires`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 416, description = "`range_not_satisfiable`", body = ErrorBody),
    ))]
fn private_file() {}

/// List API keys
///
/// Every key, oldest first: id, name, scope, creation time (secrets are not stored).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys", body = Data<Vec<ApiKeyView>>),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an `admin` key", body = ErrorBody),
        (status = 503, description = "`unavailable`: the catalog is restarting", body = ErrorBody),
    ))]
fn list_keys() {}

/// Create an API key
///
/// The key is in this answer only (`Cache-Control: no-store`): store it now. It works
/// on every request from then on, with no restart.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys",
    security(("bearer" = [])),
    request_body = KeyRequest,
    responses(
        (status = 201, description = "The key, shown once", body = Data<KeyCreated>,
            headers(("Cache-Control" = String))),
        (status = 400, description = "`invalid_scope`, `invalid_name`, `invalid_folder` (also an admin key with a folder), `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an `admin` key", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over `limits.max_json_bytes`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the catalog is restarting", body = ErrorBody),
    ))]
fn create_key() {}

/// Revoke an API key
///
/// At once: its next request is 401. The last `admin` key cannot be revoked (create
/// another first), so the keys stay manageable without a restart.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "The key's id: the 8 characters after `drk_`", example = "AbCdEfGh")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Revoked", body = Success),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an `admin` key", body = ErrorBody),
        (status = 404, description = "`not_found`: no such key", body = ErrorBody),
        (status = 409, description = "`last_admin_key`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the catalog is restarting", body = ErrorBody),
    ))]
fn revoke_key() {}

/// List webhooks
///
/// Every webhook, oldest first, with the events waiting for it (secrets are shown only
/// when a webhook is made).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The webhooks", body = Data<Vec<WebhookView>>),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an `admin` key", body = ErrorBody),
        (status = 503, description = "`unavailable`: the catalog is restarting", body = ErrorBody),
    ))]
fn list_webhooks() {}

/// Create a webhook
///
/// From the next commit on, every event of the listed types is delivered to `url`, at
/// least once, signed per Standard Webhooks with the `secret` in this answer (shown
/// once: `Cache-Control: no-store`). See the README's "Events".
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    security(("bearer" = [])),
    request_body = WebhookRequest,
    responses(
        (status = 201, description = "The webhook and its secret, shown once", body = Data<WebhookCreated>,
            headers(("Cache-Control" = String))),
        (status = 400, description = "`invalid_webhook_url` (not http(s), credentials in it, or a loopback, private, link-local or reserved address while `webhooks.allow_private_targets` is off), `invalid_events`, `invalid_description`, `too_many_webhooks`, `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an `admin` key", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over `limits.max_json_bytes`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the catalog is restarting", body = ErrorBody),
    ))]
fn create_webhook() {}

/// Remove a webhook
///
/// At once, with the events still waiting for it.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id", example = "wh_0Oqzd1Tb3f9KxQ2L")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Removed", body = Success),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an `admin` key", body = ErrorBody),
        (status = 404, description = "`not_found`: no such webhook", body = ErrorBody),
        (status = 503, description = "`unavailable`: the catalog is restarting", body = ErrorBody),
    ))]
fn remove_webhook() {}

/// Send a test event
///
/// Queues a `webhook.ping` (data `{"webhookId"}`) for this webhook only, delivered like
/// any event; `GET .../deliveries` shows how it went.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id", example = "wh_0Oqzd1Tb3f9KxQ2L")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = Data<PingQueued>),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an `admin` key", body = ErrorBody),
        (status = 404, description = "`not_found`: no such webhook", body = ErrorBody),
        (status = 409, description = "`webhook_disabled`: its receiver answered 410", body = ErrorBody),
        (status = 503, description = "`unavailable`: the catalog is restarting", body = ErrorBody),
    ))]
fn ping_webhook() {}

/// Recent delivery attempts
///
/// The last 100 attempts to deliver to this webhook, newest first: when, which event,
/// the receiver's status code (or why there was none) and how long it took.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id", example = "wh_0Oqzd1Tb3f9KxQ2L")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The attempts", body = Data<Vec<AttemptView>>),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an `admin` key", body = ErrorBody),
        (status = 404, description = "`not_found`: no such webhook", body = ErrorBody),
        (status = 503, description = "`unavailable`: the catalog is restarting", body = ErrorBody),
    ))]
fn webhook_deliveries() {}

/// Liveness
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process is alive", body = Health)))]
fn healthz() {}

/// Readiness
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Catalog and storage answer, the disk has room, not draining (from checks made every second; never waits)", body = Readiness),
        (status = 503, description = "Not ready; says which part is missing", body = Readiness),
    ))]
fn readyz() {}

/// Prometheus metrics
///
/// Not here when `server.metrics_listen` moves it to its own address (then 404).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 404, description = "`not_found`: served on `server.metrics_listen` instead", body = ErrorBody),
    ))]
fn metrics() {}

/// This document
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object)))]
fn openapi_json() {}

/// The API Explorer
///
/// Swagger UI, served from the binary.
#[utoipa::path(get, path = "/docs", tag = "operations", security(()),
    responses((status = 200, description = "The explorer page", content_type = "text/html", body = String)))]
fn docs() {}

/// The explorer's files
#[utoipa::path(get, path = "/docs/{file}", tag = "operations", security(()),
    params(("file" = String, Path, example = "swagger-ui.css")),
    responses(
        (status = 200, description = "A file of the explorer", content(
            (String = "text/html"), (String = "text/css"), (String = "text/javascript"),
            (Vec<u8> = "image/png"), (String = "application/json"))),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
fn docs_asset() {}

/// To the explorer
#[utoipa::path(get, path = "/", tag = "operations", security(()),
    responses((status = 302, description = "Redirects to `/docs`", headers(("Location" = String)))))]
fn root() {}
