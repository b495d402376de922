//! The JSON shapes of answers: media items (the full set for authenticated calls, the
//! public set without size, title, description, folder and createdAt for public ones),
//! pages and envelopes. The OpenAPI document derives its schemas from these same types.

use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::delivery::Named;
use crate::model::{
    ApiKeyRecord, Attempt, CropRecord, MediaRecord, MediaType, Status, VariantRecord, Visibility,
    WebhookRecord, rfc3339,
};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!(crate::http::openapi::examples::full_item()))]
pub struct FullItem<'a> {
    #[schema(example = "media_0Oqzd1Tb3f9KxQ2L")]
    id: &'a str,
    /// The client's filename, cleaned (display only; stored names are server-made).
    filename: &'a str,
    #[schema(value_type = MimeType)]
    mime_type: &'static str,
    /// Bytes, as stored (after metadata removal).
    size: u64,
    /// Upright width in pixels (images, videos whose container says).
    width: Option<u32>,
    height: Option<u32>,
    /// Seconds (videos whose container says).
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    alt: Option<&'a str>,
    title: Option<&'a str>,
    description: Option<&'a str>,
    /// Where the original is served. For a private item, a signed link that ends at
    /// `urlExpiresAt`, as do its variants' and crops' URLs.
    url: String,
    /// `private`: absent from the public API, its files read only through signed links.
    visibility: Visibility,
    /// When the signed links of a private item stop working (`?urlTtl=SECONDS` asks for
    /// another lifetime, up to the configured maximum); absent for public items.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, required = false, nullable = false, example = "2026-03-26T11:30:00Z")]
    url_expires_at: Option<String>,
    #[schema(example = "/images")]
    folder: &'a str,
    /// Focal point, percent of the width (0-100).
    #[serde(serialize_with = "percent")]
    #[schema(minimum = 0, maximum = 100)]
    focal_x: f64,
    /// Focal point, percent of the height (0-100).
    #[serde(serialize_with = "percent")]
    #[schema(minimum = 0, maximum = 100)]
    focal_y: f64,
    #[schema(format = DateTime, example = "2026-03-26T10:30:00Z")]
    created_at: String,
    /// When the item last changed (its file replaced, or its metadata patched); absent
    /// until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, required = false, nullable = false, example = "2026-03-27T08:00:00Z")]
    updated_at: Option<String>,
    #[serde(flatten)]
    #[schema(value_type = ImageView)]
    image: Option<ImageView<'a>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicItem<'a> {
    #[schema(example = "media_0Oqzd1Tb3f9KxQ2L")]
    id: &'a str,
    filename: &'a str,
    #[schema(value_type = MimeType)]
    mime_type: &'static str,
    width: Option<u32>,
    height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    alt: Option<&'a str>,
    url: String,
    #[serde(serialize_with = "percent")]
    #[schema(minimum = 0, maximum = 100)]
    focal_x: f64,
    #[serde(serialize_with = "percent")]
    #[schema(minimum = 0, maximum = 100)]
    focal_y: f64,
    /// When the item last changed (a CDN key for cache busting); absent until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, required = false, nullable = false, example = "2026-03-27T08:00:00Z")]
    updated_at: Option<String>,
    #[serde(flatten)]
    #[schema(value_type = ImageView)]
    image: Option<ImageView<'a>>,
}

/// What processed items add (images, and videos and PDFs for their poster): processing
/// state, variants (once written) and placeholders.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageView<'a> {
    #[schema(required = false)]
    status: Status,
    /// Largest first; only widths narrower than the original (never upscaled). Animated
    /// WebP for an animated GIF or WebP. Empty for videos and PDFs (see `poster`).
    #[schema(required = false)]
    variants: Vec<VariantView>,
    /// GIF and WebP: whether it moves (its variants then are animated WebP).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    animated: Option<bool>,
    /// Frames of an animated GIF or WebP.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    frames: Option<u32>,
    /// Videos and PDFs: the picture that stands for them (a frame at 1 s, or a tenth
    /// into a short clip; a PDF's first page), with its variants; null until made, or
    /// when it cannot be (no tool installed, an encrypted or damaged file). The crops and
    /// placeholders are cut from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = Option<PosterView>)]
    poster: Option<Option<PosterView>>,
    /// The crop presets (`delivery.presets`), each exactly its size, cut around the focal
    /// point; absent until made, and when no presets are configured. A PATCH that moves
    /// the focal point makes them again under new URLs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    crops: Vec<CropView<'a>>,
    /// Base64 thumbhash of the smallest rendition.
    #[schema(required = false)]
    thumbhash: Option<&'a str>,
    /// `#rrggbb`, alpha-weighted mean colour.
    #[schema(required = false)]
    dominant_color: Option<&'a str>,
    /// Why processing failed (status `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    processing_error: Option<&'a str>,
}

/// One WebP variant of an image.
#[derive(Serialize, ToSchema)]
pub struct VariantView {
    #[schema(example = 400)]
    width: u32,
    height: u32,
    url: String,
    size: u64,
}

/// The poster of a video or PDF: a WebP at its original size, at most the largest
/// variant's width, and its variants.
#[derive(Serialize, ToSchema)]
pub struct PosterView {
    #[schema(example = 1200)]
    width: u32,
    #[schema(example = 675)]
    height: u32,
    url: String,
    size: u64,
    /// Largest first, narrower than the poster.
    variants: Vec<VariantView>,
}

/// One crop preset of an image.
#[derive(Serialize, ToSchema)]
pub struct CropView<'a> {
    /// The preset's name in config.
    #[schema(example = "card")]
    name: &'a str,
    #[schema(example = 1200)]
    width: u32,
    #[schema(example = 630)]
    height: u32,
    url: String,
}

/// `{"data": ...}`: the envelope of single items.
#[derive(Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// One page of a listing; `folders` only on the authenticated list.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Items matching the filters, exactly.
    pub total: u64,
    #[schema(minimum = 1, maximum = 100)]
    pub limit: usize,
    pub offset: usize,
    /// Pass as `cursor` for the next page (same filters, sort and order); null on the
    /// last page. A cursor page costs the same at any depth, unlike a deep `offset`.
    #[schema(example = "AWNkAAYJvcKfMABtZWRpYV9hYmMxMjM0NTY3ODlh")]
    pub next_cursor: Option<String>,
    /// Every folder (authenticated list only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folders: Option<Vec<String>>,
}

/// The answer to an upload: the items made, and the files refused one by one.
#[derive(Serialize, ToSchema)]
pub struct Uploaded<'a> {
    pub data: Vec<FullItem<'a>>,
    pub errors: Vec<crate::error::FileError>,
}

/// The answer to a confirmed presigned upload.
#[derive(Serialize, ToSchema)]
pub struct Confirmed<'a> {
    #[schema(value_type = bool, example = true)]
    pub success: bool,
    pub data: FullItem<'a>,
}

/// `{"success": true}`.
#[derive(Serialize, ToSchema)]
pub struct Success {
    #[schema(example = true)]
    pub success: bool,
}

/// `{"folders": [...]}`: every folder path, sorted.
#[derive(Serialize, ToSchema)]
pub struct Folders {
    #[schema(example = json!(["/", "/images", "/images/products", "/documents", "/logos"]))]
    pub folders: Vec<String>,
}

/// A folder created (201) or already there (200).
#[derive(Serialize, ToSchema)]
pub struct FolderCreated<'a> {
    pub success: bool,
    #[schema(example = "/images/new-category")]
    pub path: &'a str,
    /// False when the folder already existed.
    pub created: bool,
}

/// An API key as the keys API shows it: never its secret, which is not stored.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView<'a> {
    /// The 8 characters after `drk_`: what `DELETE /api/v1/keys/{id}` takes.
    #[schema(example = "AbCdEfGh")]
    pub id: &'a str,
    #[schema(example = "cms-production")]
    pub name: &'a str,
    #[schema(value_type = KeyScope)]
    pub scope: &'static str,
    #[schema(format = DateTime, example = "2026-03-26T10:30:00Z")]
    pub created_at: String,
    /// The folder whose subtree the key is limited to; absent: the whole library.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false, example = "/clients/acme")]
    pub folder: Option<&'a str>,
}

pub fn api_key(k: &ApiKeyRecord) -> ApiKeyView<'_> {
    ApiKeyView {
        id: &k.id,
        name: &k.name,
        scope: k.scope.name(),
        created_at: rfc3339(k.created_us),
        folder: k.folder.as_ref().map(|f| f.as_str()),
    }
}

/// A key just created: its record and, this once, the key itself.
#[derive(Serialize, ToSchema)]
pub struct KeyCreated<'a> {
    #[serde(flatten)]
    pub record: ApiKeyView<'a>,
    /// The key to send as `Authorization: Bearer <key>`. Shown only in this answer:
    /// only its SHA-256 is kept.
    #[schema(example = "drk_AbCdEfGh_0123456789abcdefghijklmnopqrstuv")]
    pub key: &'a str,
}

/// A webhook (`/api/v1/webhooks`); its secret only in the answer that made it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView<'a> {
    #[schema(example = "wh_0Oqzd1Tb3f9KxQ2L")]
    pub id: &'a str,
    #[schema(example = "https://cms.example.com/hooks/darkroom")]
    pub url: &'a str,
    /// The event types it gets (`*`: every one).
    #[schema(example = json!(["media.ready", "media.deleted"]))]
    pub events: &'a [String],
    pub description: &'a str,
    #[schema(format = DateTime, example = "2026-03-26T10:30:00Z")]
    pub created_at: String,
    /// False once its receiver answered 410 Gone (nothing is delivered to it since).
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<&'a str>,
    /// Events dropped undelivered: over `webhooks.max_pending`, out of retries, or
    /// waiting when it was disabled.
    pub dropped: u64,
    /// Events waiting for delivery.
    pub pending: u64,
}

pub fn webhook(w: &WebhookRecord, pending: u64) -> WebhookView<'_> {
    WebhookView {
        id: &w.id,
        url: &w.url,
        events: &w.events,
        description: &w.description,
        created_at: rfc3339(w.created_us),
        enabled: w.disabled.is_none(),
        disabled_reason: w.disabled.as_deref(),
        dropped: w.dropped,
        pending,
    }
}

/// A webhook just created, with its signing secret (shown this once).
#[derive(Serialize, ToSchema)]
pub struct WebhookCreated<'a> {
    #[serde(flatten)]
    pub record: WebhookView<'a>,
    /// Verifies deliveries (Standard Webhooks: `webhook-signature` is `v1,` and the
    /// base64 HMAC-SHA256, keyed by the base64-decoded part after `whsec_`, of
    /// `<webhook-id>.<webhook-timestamp>.<body>`). Shown only in this answer.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: &'a str,
}

/// One delivery attempt.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView<'a> {
    #[schema(format = DateTime, example = "2026-03-26T10:30:00Z")]
    pub at: String,
    /// The event's id: its `webhook-id` header, the same on every attempt.
    #[schema(example = "msg_2mVx0aQ1b3c4d5e6f7g8h9i0")]
    pub event_id: &'a str,
    #[serde(rename = "type")]
    #[schema(example = "media.ready")]
    pub kind: &'static str,
    /// 1 for the first try of the event.
    pub attempt: u32,
    /// The receiver's status code; null when it did not answer.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why the attempt failed, if it did.
    pub error: Option<&'a str>,
}

pub fn attempt(a: &Attempt) -> AttemptView<'_> {
    AttemptView {
        at: rfc3339(a.at_us),
        event_id: &a.event,
        kind: a.kind.name(),
        attempt: a.attempt,
        status: a.status,
        latency_ms: a.latency_ms,
        error: a.error.as_deref(),
    }
}

/// A ping queued.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PingQueued {
    /// The `webhook-id` the ping is delivered with.
    #[schema(example = "msg_2mVx0aQ1b3c4d5e6f7g8h9i0")]
    pub event_id: String,
}

/// The three scopes: each allows what the ones before it do.
#[derive(ToSchema)]
#[schema(as = KeyScope)]
#[allow(dead_code)] // a schema only
pub enum KeyScope {
    /// List and read media and folders.
    #[schema(rename = "read")]
    Read,
    /// Also upload, change and delete them.
    #[schema(rename = "write")]
    Write,
    /// Also create, list and revoke API keys.
    #[schema(rename = "admin")]
    Admin,
}

/// The eight supported types.
#[derive(ToSchema)]
#[schema(as = MimeType)]
#[allow(dead_code)] // a schema only: the MIME names the item views carry
pub enum MimeType {
    #[schema(rename = "image/jpeg")]
    Jpeg,
    #[schema(rename = "image/png")]
    Png,
    #[schema(rename = "image/gif")]
    Gif,
    #[schema(rename = "image/webp")]
    Webp,
    #[schema(rename = "image/svg+xml")]
    Svg,
    #[schema(rename = "application/pdf")]
    Pdf,
    #[schema(rename = "video/mp4")]
    Mp4,
    #[schema(rename = "video/webm")]
    Webm,
}

pub fn full<'a>(urls: &Named<'_>, r: &'a MediaRecord) -> FullItem<'a> {
    FullItem {
        id: &r.id,
        filename: &r.filename,
        mime_type: r.media_type.mime(),
        size: r.size,
        width: r.width,
        height: r.height,
        duration: r.duration,
        alt: r.alt.as_deref(),
        title: r.title.as_deref(),
        description: r.description.as_deref(),
        url: urls.url(&r.storage_key),
        visibility: r.visibility,
        url_expires_at: urls
            .expires(r)
            .map(|s| rfc3339(s.saturating_mul(1_000_000))),
        folder: &r.folder,
        focal_x: r.focal_x,
        focal_y: r.focal_y,
        created_at: rfc3339(r.created_us),
        updated_at: r.updated_us.map(rfc3339),
        image: image(urls, r),
    }
}

/// The public view (never of a private item: the public API does not see them).
pub fn public<'a>(urls: &Named<'_>, r: &'a MediaRecord) -> PublicItem<'a> {
    PublicItem {
        id: &r.id,
        filename: &r.filename,
        mime_type: r.media_type.mime(),
        width: r.width,
        height: r.height,
        duration: r.duration,
        alt: r.alt.as_deref(),
        url: urls.url(&r.storage_key),
        focal_x: r.focal_x,
        focal_y: r.focal_y,
        updated_at: r.updated_us.map(rfc3339),
        image: image(urls, r),
    }
}

fn image<'a>(urls: &Named<'_>, r: &'a MediaRecord) -> Option<ImageView<'a>> {
    let p = r.processing.as_ref()?;
    let variants = || p.variants.iter().map(|v| variant(urls, v)).collect();
    let has_poster = r.media_type.has_poster();
    let poster = p.poster.as_ref().map(|poster| PosterView {
        width: poster.width,
        height: poster.height,
        url: urls.url(&poster.storage_key),
        size: poster.size,
        variants: variants(),
    });
    let moves = matches!(r.media_type, MediaType::Gif | MediaType::Webp);
    Some(ImageView {
        status: p.status,
        variants: if has_poster { Vec::new() } else { variants() },
        animated: moves.then_some(r.frames.is_some()),
        frames: r.frames,
        poster: has_poster.then_some(poster),
        crops: p.crops.iter().map(|c| crop(urls, c)).collect(),
        thumbhash: p.thumbhash.as_deref(),
        dominant_color: p.dominant_color.as_deref(),
        processing_error: p.error.as_deref(),
    })
}

fn variant(urls: &Named<'_>, v: &VariantRecord) -> VariantView {
    VariantView {
        width: v.width,
        height: v.height,
        url: urls.url(&v.storage_key),
        size: v.size,
    }
}

fn crop<'a>(urls: &Named<'_>, c: &'a CropRecord) -> CropView<'a> {
    CropView {
        name: &c.name,
        width: c.width,
        height: c.height,
        url: urls.url(&c.storage_key),
    }
}

/// Whole percentages as integers (`50`), others as they are (`33.5`).
fn percent<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}
