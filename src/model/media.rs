//! A media item as Darkroom knows it: the record, its processing state and variants, a
//! metadata patch, and a presigned upload waiting to become an item.

use serde::{Deserialize, Serialize};

use super::folder::FolderPath;
use super::media_type::{Kind, MediaType};

/// A stored media item. Serialized as JSON inside redb.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaRecord {
    pub id: String,
    pub filename: String,
    pub media_type: MediaType,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Seconds, for videos whose container says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    pub alt: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub folder: String,
    pub focal_x: f64,
    pub focal_y: f64,
    /// Microseconds since the Unix epoch.
    pub created_us: u64,
    /// Where the original lives in storage: `YYYY/MM/<token>.<ext>`.
    pub storage_key: String,
    /// Image items only: the state of their variants and placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<Processing>,
}

impl MediaRecord {
    pub fn kind(&self) -> Kind {
        self.media_type.kind()
    }

    /// Every storage key this item owns: the original and the variants written so far.
    pub fn storage_keys(&self) -> Vec<String> {
        let variants = self.processing.iter().flat_map(|p| &p.variants);
        std::iter::once(self.storage_key.clone())
            .chain(variants.map(|v| v.storage_key.clone()))
            .collect()
    }

    /// True while the item waits for its processing job.
    pub fn is_processing(&self) -> bool {
        self.processing
            .as_ref()
            .is_some_and(|p| p.status == Status::Processing)
    }

    /// A PNG record for tests: id `media_` + 16 × `id_tail`, in folder `/a`.
    #[cfg(test)]
    pub fn sample(id_tail: char, name: &str, created: u64, size: u64) -> Self {
        Self {
            id: format!("media_{}", id_tail.to_string().repeat(16)),
            filename: name.into(),
            media_type: MediaType::Png,
            size,
            width: None,
            height: None,
            duration: None,
            alt: None,
            title: None,
            description: None,
            folder: "/a".into(),
            focal_x: 50.0,
            focal_y: 50.0,
            created_us: created,
            storage_key: format!("2026/01/{}.png", id_tail.to_string().repeat(16)),
            processing: None,
        }
    }
}

/// Where an image item is in its processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Processing,
    Ready,
    Failed,
}

/// Variants and placeholders of an image item (empty until its job is done).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Processing {
    pub status: Status,
    #[serde(default)]
    pub variants: Vec<VariantRecord>,
    #[serde(default)]
    pub thumbhash: Option<String>,
    #[serde(default)]
    pub dominant_color: Option<String>,
    /// Why the job failed, when it did.
    #[serde(default)]
    pub error: Option<String>,
}

impl Processing {
    /// The state a new item of this type starts in: raster images wait for their job,
    /// SVG is ready without raster variants, documents and videos have none.
    pub fn initial(media_type: MediaType) -> Option<Self> {
        match media_type {
            t if t.is_raster() => Some(Self::with_status(Status::Processing)),
            MediaType::Svg => Some(Self::with_status(Status::Ready)),
            _ => None,
        }
    }

    fn with_status(status: Status) -> Self {
        Self {
            status,
            variants: Vec::new(),
            thumbhash: None,
            dominant_color: None,
            error: None,
        }
    }
}

/// One stored WebP variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantRecord {
    pub width: u32,
    pub height: u32,
    pub size: u64,
    /// `YYYY/MM/<token>-<width>.webp`.
    pub storage_key: String,
}

/// The end of a processing job, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    Ready {
        variants: Vec<VariantRecord>,
        thumbhash: String,
        dominant_color: String,
    },
    Failed {
        reason: String,
    },
}

impl JobResult {
    /// The item's processing state once this result is recorded.
    pub fn into_processing(self) -> Processing {
        match self {
            Self::Ready {
                variants,
                thumbhash,
                dominant_color,
            } => Processing {
                status: Status::Ready,
                variants,
                thumbhash: Some(thumbhash),
                dominant_color: Some(dominant_color),
                error: None,
            },
            Self::Failed { reason } => Processing {
                error: Some(reason),
                ..Processing::with_status(Status::Failed)
            },
        }
    }

    /// The storage keys of the files this result names (its variants).
    pub fn written_keys(&self) -> Vec<String> {
        match self {
            Self::Ready { variants, .. } => {
                variants.iter().map(|v| v.storage_key.clone()).collect()
            }
            Self::Failed { .. } => Vec::new(),
        }
    }
}

/// A presigned upload this server issued, kept until it is confirmed or swept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresignRecord {
    pub filename: String,
    pub media_type: MediaType,
    /// The exact size the client declared; the stored object must match it.
    pub size: u64,
    /// Microseconds since the Unix epoch.
    pub expires_us: u64,
}

impl PresignRecord {
    pub fn is_expired(&self, now_us: u64) -> bool {
        self.expires_us < now_us
    }
}

/// Fields a PATCH may change; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaPatch {
    pub alt: Option<Option<String>>,
    pub title: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub folder: Option<FolderPath>,
    pub focal_x: Option<f64>,
    pub focal_y: Option<f64>,
}

impl MediaPatch {
    pub fn apply(&self, r: &mut MediaRecord) {
        if let Some(v) = &self.alt {
            r.alt.clone_from(v);
        }
        if let Some(v) = &self.title {
            r.title.clone_from(v);
        }
        if let Some(v) = &self.description {
            r.description.clone_from(v);
        }
        if let Some(f) = &self.folder {
            r.folder = f.as_str().to_owned();
        }
        if let Some(x) = self.focal_x {
            r.focal_x = x;
        }
        if let Some(y) = self.focal_y {
            r.focal_y = y;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_items_start_in_the_state_of_their_type() {
        let pending = Processing::initial(MediaType::Jpeg).expect("raster");
        assert_eq!(pending.status, Status::Processing);
        let svg = Processing::initial(MediaType::Svg).expect("svg");
        assert_eq!(svg.status, Status::Ready);
        assert!(svg.variants.is_empty());
        assert_eq!(Processing::initial(MediaType::Pdf), None);
        assert_eq!(Processing::initial(MediaType::Mp4), None);
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let mut r = MediaRecord::sample('a', "a.png", 1, 1);
        r.alt = Some("old".into());
        r.title = Some("keep".into());
        let patch = MediaPatch {
            alt: Some(None),
            focal_x: Some(10.0),
            folder: FolderPath::parse("/x"),
            ..MediaPatch::default()
        };
        patch.apply(&mut r);
        assert_eq!((r.alt, r.title.as_deref()), (None, Some("keep")));
        assert_eq!(
            (r.focal_x, r.focal_y, r.folder.as_str()),
            (10.0, 50.0, "/x")
        );
    }
}
