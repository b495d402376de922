//! The JSON shapes of media items: the full set for authenticated calls, the public set
//! (no size, title, description, folder, createdAt) for public ones.

use serde::{Serialize, Serializer};

use crate::model::{MediaRecord, Processing, Status, VariantRecord, rfc3339};
use crate::storage::FileUrls;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FullItem<'a> {
    id: &'a str,
    filename: &'a str,
    mime_type: &'static str,
    size: u64,
    width: Option<u32>,
    height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    alt: Option<&'a str>,
    title: Option<&'a str>,
    description: Option<&'a str>,
    url: String,
    folder: &'a str,
    #[serde(serialize_with = "percent")]
    focal_x: f64,
    #[serde(serialize_with = "percent")]
    focal_y: f64,
    created_at: String,
    #[serde(flatten)]
    image: Option<ImageView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicItem<'a> {
    id: &'a str,
    filename: &'a str,
    mime_type: &'static str,
    width: Option<u32>,
    height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    alt: Option<&'a str>,
    url: String,
    #[serde(serialize_with = "percent")]
    focal_x: f64,
    #[serde(serialize_with = "percent")]
    focal_y: f64,
    #[serde(flatten)]
    image: Option<ImageView<'a>>,
}

/// What image items add: processing state, variants (once written) and placeholders.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageView<'a> {
    status: Status,
    variants: Vec<VariantView>,
    thumbhash: Option<&'a str>,
    dominant_color: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    processing_error: Option<&'a str>,
}

#[derive(Serialize)]
pub struct VariantView {
    width: u32,
    height: u32,
    url: String,
    size: u64,
}

/// `{"data": ...}`: the envelope of single items.
#[derive(Serialize)]
pub struct Data<T> {
    pub data: T,
}

/// One page of a listing; `folders` only on the authenticated list.
#[derive(Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub total: u64,
    pub limit: usize,
    pub offset: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folders: Option<Vec<String>>,
}

pub fn full<'a>(urls: &FileUrls, r: &'a MediaRecord) -> FullItem<'a> {
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
        folder: &r.folder,
        focal_x: r.focal_x,
        focal_y: r.focal_y,
        created_at: rfc3339(r.created_us),
        image: r.processing.as_ref().map(|p| image(urls, p)),
    }
}

pub fn public<'a>(urls: &FileUrls, r: &'a MediaRecord) -> PublicItem<'a> {
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
        image: r.processing.as_ref().map(|p| image(urls, p)),
    }
}

fn image<'a>(urls: &FileUrls, p: &'a Processing) -> ImageView<'a> {
    ImageView {
        status: p.status,
        variants: p.variants.iter().map(|v| variant(urls, v)).collect(),
        thumbhash: p.thumbhash.as_deref(),
        dominant_color: p.dominant_color.as_deref(),
        processing_error: p.error.as_deref(),
    }
}

fn variant(urls: &FileUrls, v: &VariantRecord) -> VariantView {
    VariantView {
        width: v.width,
        height: v.height,
        url: urls.url(&v.storage_key),
        size: v.size,
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
