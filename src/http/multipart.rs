//! `POST /api/v1/media`: streams each file part to a storage temp file (never into
//! memory), sniffs and inspects it, commits it under a server-made key, and records
//! every accepted file of the request in one catalog write.
//!
//! Limits: a body whose `Content-Length` exceeds one file's limit (plus multipart framing)
//! is refused with 413 before a byte is read; without a length, the same limit is
//! enforced while streaming. A request therefore carries at most 50 MB of files in all;
//! several large files go in several requests.

use std::time::Duration;

use futures_util::TryStreamExt;
use http_body_util::BodyStream;
use hyper::Request;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use multer::{Constraints, Field, Multipart, SizeLimit};

use super::Ctx;
use super::query::invalid_folder;
use crate::actors::processing::Reservation;
use crate::catalog::model::{
    FolderPath, MediaRecord, Processing, new_media_id, new_storage_token, now_us, year_month,
};
use crate::error::{ApiError, FileError};
use crate::media::{self, Inspection, MediaError, MediaType, name::sanitize_filename, sniff};
use crate::metrics as m;
use crate::storage::Sink;

/// Room for multipart boundaries, part headers and the small text fields.
const FRAMING_ALLOWANCE: u64 = 1024 * 1024;
const MAX_TEXT_FIELD: usize = 10_000;

pub struct UploadOutcome {
    pub records: Vec<MediaRecord>,
    pub errors: Vec<FileError>,
}

/// A file already committed to storage, waiting for its catalog record.
pub struct Staged {
    pub filename: String,
    pub media_type: MediaType,
    pub size: u64,
    pub inspection: Inspection,
    pub storage_key: String,
    pub created_us: u64,
    /// Raster images hold a backlog slot until the request ends.
    pub slot: Option<Reservation>,
}

/// Receives the upload; with `wait`, holds the answer until this request's images are
/// processed (at most `processing.wait_timeout_secs`) and answers their final state.
pub async fn receive(
    ctx: &Ctx,
    req: Request<Incoming>,
    wait: bool,
) -> Result<UploadOutcome, ApiError> {
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
    let stream = BodyStream::new(req.into_body())
        .try_filter_map(|frame| futures_util::future::ready(Ok(frame.into_data().ok())));
    let constraints = Constraints::new().size_limit(
        SizeLimit::new()
            .whole_stream(body_limit)
            .per_field(max_file),
    );
    let mut form = Multipart::with_constraints(stream, boundary, constraints);

    let mut staged = Vec::new();
    let result = read_form(ctx, &mut form, &mut staged).await;
    let (folder, alt, errors) = match result {
        Ok(parts) => parts,
        Err(e) => {
            discard(ctx, &staged);
            return Err(e);
        }
    };
    if staged.is_empty() {
        return Err(if errors.is_empty() {
            ApiError::bad_request(
                "no_files",
                "the form has no `files` field with a file in it",
            )
        } else {
            ApiError::UploadFailed { errors }
        });
    }
    let records: Vec<MediaRecord> = staged
        .iter()
        .map(|s| record(s, &folder, alt.as_deref()))
        .collect();
    let jobs: Vec<String> = records
        .iter()
        .filter(|r| r.is_processing())
        .map(|r| r.id.clone())
        .collect();
    let done: Vec<_> = if wait {
        jobs.iter().map(|id| ctx.processing.subscribe(id)).collect()
    } else {
        Vec::new()
    };
    if let Err(e) = ctx.catalog.insert_media(records.clone()).await {
        // The insert is one atomic write; its reply can be lost (actor restart) after the
        // commit. Only files whose records are really absent may go.
        let committed = matches!(ctx.catalog.get(&records[0].id), Ok(Some(_)));
        if !committed {
            drop(done);
            ctx.processing.prune_waiters(&jobs);
            discard(ctx, &staged);
            return Err(e.into());
        }
    }
    drop(staged); // the backlog slots: the committed jobs count in the catalog now
    if !jobs.is_empty() {
        ctx.processing.enqueue(jobs.clone());
    }
    for r in &records {
        let mime = r.media_type.mime();
        metrics::counter!(m::UPLOAD_FILES, "type" => mime, "outcome" => "accepted").increment(1);
        metrics::counter!(m::UPLOAD_BYTES, "type" => mime).increment(r.size);
    }
    let records = if done.is_empty() {
        records
    } else {
        let limit = Duration::from_secs(ctx.config.processing.wait_timeout_secs);
        let _ = tokio::time::timeout(limit, futures_util::future::join_all(done)).await;
        ctx.processing.prune_waiters(&jobs);
        reread(ctx, records)
    };
    Ok(UploadOutcome { records, errors })
}

/// The records' current state (after processing); one deleted meanwhile keeps the
/// state it was created with.
fn reread(ctx: &Ctx, records: Vec<MediaRecord>) -> Vec<MediaRecord> {
    records
        .into_iter()
        .map(|r| match ctx.catalog.get(&r.id) {
            Ok(Some(now)) => now,
            _ => r,
        })
        .collect()
}

/// Walks the form: files are stored as they stream past; `folder` and `alt` may come
/// before or after them.
async fn read_form(
    ctx: &Ctx,
    form: &mut Multipart<'_>,
    staged: &mut Vec<Staged>,
) -> Result<(FolderPath, Option<String>, Vec<FileError>), ApiError> {
    let mut folder = FolderPath::root();
    let mut alt = None;
    let mut errors = Vec::new();
    while let Some(field) = idle_limited(ctx, form.next_field()).await? {
        match field.name().unwrap_or("") {
            "folder" => {
                let raw = text_field(ctx, field).await?;
                folder = FolderPath::parse(raw.trim()).ok_or_else(|| invalid_folder(&raw))?;
            }
            "alt" => alt = Some(text_field(ctx, field).await?).filter(|a| !a.is_empty()),
            "files" | "files[]" | "file" => {
                if staged.len() + errors.len() >= ctx.config.limits.max_files_per_request {
                    return Err(ApiError::bad_request(
                        "too_many_files",
                        format!(
                            "at most {} files per request",
                            ctx.config.limits.max_files_per_request
                        ),
                    ));
                }
                let filename = sanitize_filename(field.file_name().unwrap_or(""), "upload");
                match store_file(ctx, field, filename.clone()).await? {
                    Ok(file) => staged.push(file),
                    Err(e) => {
                        metrics::counter!(m::UPLOAD_FILES, "type" => "unknown", "outcome" => "refused")
                            .increment(1);
                        errors.push(FileError::new(filename, &e));
                    }
                }
            }
            _ => {} // unknown fields are skipped
        }
    }
    Ok((folder, alt, errors))
}

/// Streams one file part to storage. The outer error fails the request (I/O, a broken
/// or oversized body); the inner one refuses just this file.
async fn store_file(
    ctx: &Ctx,
    mut field: Field<'_>,
    filename: String,
) -> Result<Result<Staged, MediaError>, ApiError> {
    let mut sink = ctx.storage.begin().await?;
    while let Some(chunk) = idle_limited(ctx, field.chunk()).await? {
        sink.write(&chunk).await?;
    }
    if sink.is_empty() {
        return Ok(Err(MediaError::Empty));
    }
    let Some(media_type) = sniff::sniff(sink.head()) else {
        return Ok(Err(MediaError::Unsupported));
    };
    let slot = admit(ctx, media_type)?;
    let inspection = match inspect_and_strip(ctx, &mut sink, media_type).await? {
        Ok(i) => i,
        Err(e) => return Ok(Err(e)),
    };
    let created_us = now_us();
    let key = new_key(media_type, created_us);
    let size = ctx
        .storage
        .commit(sink, key.clone(), media_type.mime())
        .await?;
    Ok(Ok(Staged {
        filename,
        media_type,
        size,
        inspection,
        storage_key: key,
        created_us,
        slot,
    }))
}

/// Backpressure: a raster image needs a slot in the processing backlog (503 when full).
pub fn admit(ctx: &Ctx, media_type: MediaType) -> Result<Option<Reservation>, ApiError> {
    if !media_type.is_raster() {
        return Ok(None);
    }
    match ctx.processing.try_reserve() {
        Some(slot) => Ok(Some(slot)),
        None => {
            metrics::counter!(m::PROCESSING_REJECTED).increment(1);
            Err(ApiError::Busy {
                backlog: ctx.catalog.job_count(),
                retry_after: ctx.config.processing.retry_after_secs,
            })
        }
    }
}

/// Probes a spooled upload (size, duration, pixel limit, SVG safety), then removes its
/// location and camera metadata in place. Types with nothing to probe or strip are not
/// even written out for it. The inner error refuses the file.
pub async fn inspect_and_strip(
    ctx: &Ctx,
    sink: &mut Sink,
    media_type: MediaType,
) -> Result<Result<Inspection, MediaError>, ApiError> {
    if !media_type.needs_inspection() {
        return Ok(Ok(Inspection::default()));
    }
    sink.flush().await?;
    let path = sink.path().to_owned();
    let max_pixels = ctx.config.limits.max_image_pixels;
    let inspected = tokio::task::spawn_blocking(move || {
        let inspection = media::inspect(&path, media_type, max_pixels)?;
        media::strip_in_place(&path, media_type)?;
        Ok(inspection)
    })
    .await
    .map_err(|e| ApiError::Storage(std::io::Error::other(e).into()))?;
    match inspected {
        Err(MediaError::Probe(media::probe::ProbeError::Io(e))) => Err(ApiError::Storage(e.into())),
        other => Ok(other),
    }
}

/// A new server-made storage key: `YYYY/MM/<token>.<ext>`.
pub fn new_key(media_type: MediaType, created_us: u64) -> String {
    format!(
        "{}/{}.{}",
        year_month(created_us),
        new_storage_token(),
        media_type.ext()
    )
}

pub fn record(s: &Staged, folder: &FolderPath, alt: Option<&str>) -> MediaRecord {
    MediaRecord {
        id: new_media_id(),
        filename: s.filename.clone(),
        media_type: s.media_type,
        size: s.size,
        width: s.inspection.dims.map(|d| d.width),
        height: s.inspection.dims.map(|d| d.height),
        duration: s.inspection.duration,
        alt: alt.map(str::to_owned),
        title: None,
        description: None,
        folder: folder.as_str().to_owned(),
        focal_x: 50.0,
        focal_y: 50.0,
        created_us: s.created_us,
        storage_key: s.storage_key.clone(),
        processing: match s.media_type {
            t if t.is_raster() => Some(Processing::pending()),
            MediaType::Svg => Some(Processing::ready_without_variants()),
            _ => None,
        },
    }
}

/// Removes files stored for a request that then failed (they have no record; should
/// this not run, the start-up sweep removes them).
fn discard(ctx: &Ctx, staged: &[Staged]) {
    if !staged.is_empty() {
        ctx.storage
            .delete(staged.iter().map(|s| s.storage_key.clone()).collect());
    }
}

/// Awaits the next piece of the body, giving up when the client sends nothing for
/// `server.body_idle_timeout_secs`.
async fn idle_limited<T>(
    ctx: &Ctx,
    next: impl std::future::Future<Output = multer::Result<T>>,
) -> Result<T, ApiError> {
    let idle = Duration::from_secs(ctx.config.server.body_idle_timeout_secs);
    match tokio::time::timeout(idle, next).await {
        Ok(result) => result.map_err(multipart_error),
        Err(_) => Err(ApiError::Timeout),
    }
}

async fn text_field(ctx: &Ctx, field: Field<'_>) -> Result<String, ApiError> {
    let text = idle_limited(ctx, field.text()).await?;
    if text.chars().count() > MAX_TEXT_FIELD {
        return Err(ApiError::bad_request(
            "invalid_field",
            "a text field is too long",
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
        other => ApiError::bad_request(
            "invalid_multipart",
            format!("malformed multipart body: {other}"),
        ),
    }
}
