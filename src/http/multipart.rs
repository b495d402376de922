//! `multipart/form-data` intake for `POST /api/v1/media`: multer over the paced body
//! (`body::Paced`) and the size limits. Each file part is streamed into a spool and
//! handed to `ingest` as it passes; the text fields `folder`, `alt` and `visibility` may
//! come before or after the files (`visibility` decides where they are stored: before
//! them it costs nothing, after them each file is copied to its place).
//!
//! Limits: a body whose `Content-Length` exceeds one file's limit (plus multipart framing)
//! is refused with 413 before a byte is read; without a length, the same limit is
//! enforced while streaming. The preamble and each part's headers are bounded too, before
//! multer buffers them (`framing`). A request therefore carries at most 50 MB of files in all;
//! several large files go in several requests.

use hyper::Request;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use multer::{Constraints, Field, Multipart, SizeLimit};

use super::Ctx;
use super::body::{Paced, body_error};
use super::framing::{Framing, FramingTooLong};
use super::query::invalid_folder;
use crate::error::{ApiError, FileError};
use crate::ingest::Staged;
use crate::media::name::sanitize_filename;
use crate::model::{FolderPath, Visibility};

/// Room for multipart boundaries, part headers and the small text fields.
const FRAMING_ALLOWANCE: u64 = 1024 * 1024;
const MAX_TEXT_FIELD: usize = 10_000;
/// The most of the body multer takes in at a time (its buffer, per upload in flight).
const MULTER_SLICE: usize = 64 * 1024;

/// A received upload form: the files already staged in storage, and the fields.
pub struct Form {
    pub staged: Vec<Staged>,
    /// The `folder` field, when the form has one.
    pub folder: Option<FolderPath>,
    pub alt: Option<String>,
    /// Where the files went: `media.default_visibility` unless the form said.
    pub visibility: Visibility,
    /// Files refused one by one (the request goes on without them).
    pub errors: Vec<FileError>,
}

/// What a form may say about visibility: an upload's own choice, or a replace's file takes
/// the item's (`Fixed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Chosen,
    Fixed(Visibility),
}

/// Reads the whole form, staging each file as it streams past. Fails (with nothing left
/// stored) when the body is malformed, too large or stalls, or when no file was accepted.
pub async fn receive(ctx: &Ctx, req: Request<Incoming>, place: Place) -> Result<Form, ApiError> {
    let max_file = ctx.config.max_file_bytes();
    let body_limit = max_file + FRAMING_ALLOWANCE;
    let boundary = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_content_type",
                "upload with Content-Type: multipart/form-data and a `files` field",
            )
        })?;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > body_limit) {
        return Err(ApiError::TooLarge { limit: max_file });
    }
    let stream = Framing::new(
        Paced::new(req.into_body(), &ctx.config.server),
        &boundary,
        MULTER_SLICE,
    );
    let constraints = Constraints::new().size_limit(
        SizeLimit::new()
            .whole_stream(body_limit)
            .per_field(max_file),
    );
    let mut multipart = Multipart::with_constraints(stream, boundary, constraints);
    let mut form = Form {
        staged: Vec::new(),
        folder: None,
        alt: None,
        visibility: match place {
            Place::Chosen => ctx.config.media.default_visibility,
            Place::Fixed(v) => v,
        },
        errors: Vec::new(),
    };
    // On failure the files staged so far are removed as `form` drops (see `Staged`).
    read_fields(ctx, &mut multipart, &mut form, place).await?;
    // Files staged before the form said where they go are moved there.
    let mut placed = Vec::with_capacity(form.staged.len());
    for staged in std::mem::take(&mut form.staged) {
        placed.push(ctx.ingest.relocate(staged, form.visibility).await?);
    }
    form.staged = placed;
    if form.staged.is_empty() {
        return Err(if form.errors.is_empty() {
            ApiError::bad_request(
                "no_files",
                "the form has no `files` field with a file in it",
            )
        } else {
            ApiError::UploadFailed {
                errors: form.errors,
            }
        });
    }
    Ok(form)
}

/// Walks the form: files are staged as they stream past, text fields are kept.
async fn read_fields(
    ctx: &Ctx,
    multipart: &mut Multipart<'_>,
    form: &mut Form,
    place: Place,
) -> Result<(), ApiError> {
    let max_files = ctx.config.limits.max_files_per_request;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or("") {
            "folder" => {
                let raw = text_field(field).await?;
                let folder = FolderPath::parse(raw.trim()).ok_or_else(|| invalid_folder(&raw))?;
                form.folder = Some(folder);
            }
            "alt" => form.alt = Some(text_field(field).await?).filter(|a| !a.is_empty()),
            "visibility" => {
                let raw = text_field(field).await?;
                if raw.trim().is_empty() {
                    continue; // as HTML forms send an unset field: the default
                }
                form.visibility = visibility_field(ctx, raw.trim(), place)?;
            }
            "files" | "files[]" | "file" => {
                if form.staged.len() + form.errors.len() >= max_files {
                    return Err(ApiError::bad_request(
                        "too_many_files",
                        format!("at most {max_files} files per request"),
                    ));
                }
                let filename = sanitize_filename(field.file_name().unwrap_or(""), "upload");
                let sink = spool(ctx, field).await?;
                match ctx
                    .ingest
                    .stage(sink, filename.clone(), form.visibility)
                    .await?
                {
                    Ok(file) => form.staged.push(file),
                    Err(e) => form.errors.push(FileError::new(filename, &e)),
                }
            }
            _ => {} // unknown fields are skipped
        }
    }
    Ok(())
}

/// The `visibility` an upload asks for: public or private, and private only where this
/// storage can keep it.
pub fn visibility_field(ctx: &Ctx, raw: &str, place: Place) -> Result<Visibility, ApiError> {
    let v = Visibility::parse(raw).ok_or_else(|| {
        ApiError::bad_request("invalid_visibility", "visibility must be public or private")
    })?;
    if let Place::Fixed(fixed) = place
        && fixed != v
    {
        return Err(ApiError::bad_request(
            "invalid_visibility",
            "a replaced file keeps the item's visibility; change it with PATCH",
        ));
    }
    if v.is_private() && !ctx.config.keeps_private() {
        return Err(crate::storage::StorageError::NoPrivatePlace.into());
    }
    Ok(v)
}

/// Streams one file part into a new spool.
async fn spool(ctx: &Ctx, mut field: Field<'_>) -> Result<crate::storage::Sink, ApiError> {
    let mut sink = ctx.ingest.begin().await?;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        sink.write(&chunk).await?;
    }
    Ok(sink)
}

/// A text field of at most `MAX_TEXT_FIELD` characters, refused as soon as it has more
/// bytes than that many characters could take (it is never buffered past that).
async fn text_field(mut field: Field<'_>) -> Result<String, ApiError> {
    let too_long = || ApiError::bad_request("invalid_field", "a text field is too long");
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > 4 * MAX_TEXT_FIELD {
            return Err(too_long());
        }
        bytes.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("invalid_field", "a text field is not UTF-8"))?;
    if text.chars().count() > MAX_TEXT_FIELD {
        return Err(too_long());
    }
    if text.contains('\0') {
        return Err(ApiError::bad_request(
            "invalid_field",
            "a text field must not contain NUL characters",
        ));
    }
    Ok(text)
}

fn multipart_error(e: multer::Error) -> ApiError {
    match e {
        multer::Error::FieldSizeExceeded { limit, .. } => ApiError::TooLarge { limit },
        multer::Error::StreamSizeExceeded { limit } => ApiError::TooLarge {
            limit: limit.saturating_sub(FRAMING_ALLOWANCE),
        },
        multer::Error::StreamReadFailed(e) => match e.downcast::<std::io::Error>() {
            Ok(io) if io.get_ref().is_some_and(|e| e.is::<FramingTooLong>()) => {
                ApiError::bad_request("invalid_multipart", io.to_string())
            }
            Ok(io) => body_error(*io),
            Err(_) => ApiError::bad_request("invalid_body", "the request body was cut short"),
        },
        other => ApiError::bad_request(
            "invalid_multipart",
            format!("malformed multipart body: {other}"),
        ),
    }
}
