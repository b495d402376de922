//! A media item as Darkroom knows it: the record, its processing state and variants, a
//! metadata patch, and a presigned upload waiting to become an item.

use serde::{Deserialize, Serialize};

use super::folder::FolderPath;
use super::media_type::{Kind, MediaType};
use super::preset::CropRecord;

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
    /// Frames of an animated GIF or WebP (absent for still images): its variants are
    /// animated WebP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<u32>,
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
    /// Bumped each time the focal point moves, so the crops made after get new keys.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub crop_version: u32,
    /// Microseconds since the Unix epoch of the last change (metadata or file), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_us: Option<u64>,
    /// Who may read it: anyone with its URL, or only holders of a signed, expiring link.
    /// The location of its files follows (`storage::key::PRIVATE`).
    #[serde(default, skip_serializing_if = "Visibility::is_public")]
    pub visibility: Visibility,
}

/// Who may read an item's files and see it in the public API.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Listed by the public API, its files at plain URLs (a CDN may cache them).
    #[default]
    Public,
    /// Absent from the public API; its files are read through signed links that expire.
    Private,
}

impl Visibility {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "private" => Some(Self::Private),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    pub fn is_public(&self) -> bool {
        *self == Self::Public
    }

    pub fn is_private(&self) -> bool {
        *self == Self::Private
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl MediaRecord {
    pub fn kind(&self) -> Kind {
        self.media_type.kind()
    }

    /// Every storage key this item owns: the original, and the variants and crops
    /// written so far.
    pub fn storage_keys(&self) -> Vec<String> {
        std::iter::once(self.storage_key.clone())
            .chain(self.processing.iter().flat_map(Processing::file_keys))
            .collect()
    }

    /// The picture its variants and crops are cut from, and its type: a raster image's
    /// original, or the poster of a video or PDF once made.
    pub fn picture(&self) -> Option<(&str, MediaType)> {
        if self.media_type.is_raster() {
            return Some((&self.storage_key, self.media_type));
        }
        let poster = self.processing.as_ref()?.poster.as_ref()?;
        Some((&poster.storage_key, MediaType::Webp))
    }

    /// The keys of its crops alone.
    pub fn crop_keys(&self) -> Vec<String> {
        let crops = self.processing.iter().flat_map(|p| &p.crops);
        crops.map(|c| c.storage_key.clone()).collect()
    }

    /// After a patch that moved the focal point of an image with crops to make: a new
    /// crop version, no crops until its job has made them again, and the job pending.
    /// Returns the keys of the crops it had (to delete), or `None` when nothing changes.
    pub fn recrop_after(&mut self, old: &Self) -> Option<Vec<String>> {
        let moved = (self.focal_x, self.focal_y) != (old.focal_x, old.focal_y);
        let processing = self.processing.as_mut()?;
        let pictured = self.media_type.is_raster() || processing.poster.is_some();
        if !moved || !pictured || processing.status == Status::Failed {
            return None;
        }
        let stale = std::mem::take(&mut processing.crops);
        processing.status = Status::Processing;
        self.crop_version = old.crop_version.max(1) + 1;
        Some(stale.into_iter().map(|c| c.storage_key).collect())
    }

    /// This item with the file of `file` (a replace): filename, type, size, dimensions,
    /// duration, storage key and processing state are `file`'s, reset for its job; id,
    /// metadata, focal point and creation time stay this item's.
    pub fn with_file_of(&self, file: &Self) -> Self {
        Self {
            filename: file.filename.clone(),
            media_type: file.media_type,
            size: file.size,
            width: file.width,
            height: file.height,
            duration: file.duration,
            frames: file.frames,
            storage_key: file.storage_key.clone(),
            processing: file.processing.clone(),
            crop_version: 0,
            updated_us: Some(super::now_us()),
            ..self.clone()
        }
    }

    /// This item of `visibility`, its files at the keys `to` gives for them (see
    /// `storage::key::moved`): a visibility change. Its on-demand crops are not carried
    /// over (they are made again at the new place).
    pub fn moved_to(&self, visibility: Visibility, to: impl Fn(&str) -> String) -> Self {
        let mut r = self.clone();
        r.visibility = visibility;
        r.storage_key = to(&self.storage_key);
        if let Some(p) = r.processing.as_mut() {
            for v in p.variants.iter_mut().chain(p.poster.as_mut()) {
                v.storage_key = to(&v.storage_key);
            }
            for c in &mut p.crops {
                c.storage_key = to(&c.storage_key);
            }
        }
        r.updated_us = Some(super::now_us());
        r
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
            frames: None,
            alt: None,
            title: None,
            description: None,
            folder: "/a".into(),
            focal_x: 50.0,
            focal_y: 50.0,
            created_us: created,
            storage_key: format!("2026/01/{}.png", id_tail.to_string().repeat(16)),
            processing: None,
            crop_version: 0,
            updated_us: None,
            visibility: Visibility::Public,
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

/// Variants and placeholders of an image item, or of the poster of a video or PDF
/// (empty until its job is done).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Processing {
    pub status: Status,
    #[serde(default)]
    pub variants: Vec<VariantRecord>,
    /// A video's frame or a PDF's first page (WebP), which `variants`, crops and
    /// placeholders are made from; `None` until made, or when it cannot be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster: Option<VariantRecord>,
    /// One per crop preset, made with the variants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crops: Vec<CropRecord>,
    #[serde(default)]
    pub thumbhash: Option<String>,
    #[serde(default)]
    pub dominant_color: Option<String>,
    /// Why the job failed, when it did.
    #[serde(default)]
    pub error: Option<String>,
}

impl Processing {
    /// An earlier run made the item's variants and placeholders (an image of at most
    /// 150 px has no variants, but its thumbhash): a re-run makes the crops alone, and
    /// its failure leaves the item as it was, usable.
    pub fn was_made(&self) -> bool {
        self.thumbhash.is_some()
    }

    /// The state a new item of this type starts in: raster images wait for their job,
    /// as do videos and PDFs (for their poster); SVG is ready without raster variants.
    pub fn initial(media_type: MediaType) -> Option<Self> {
        match media_type {
            t if t.is_raster() || t.has_poster() => Some(Self::with_status(Status::Processing)),
            MediaType::Svg => Some(Self::with_status(Status::Ready)),
            _ => None,
        }
    }

    /// A video or PDF that gets no poster (no tool here, or a backlog too deep to add
    /// one to): ready at once, `poster: null`.
    pub fn without_poster() -> Self {
        Self::with_status(Status::Ready)
    }

    /// The keys of the files it names: poster, variants and crops.
    pub fn file_keys(&self) -> impl Iterator<Item = String> + '_ {
        let pictures = self.poster.iter().chain(&self.variants);
        let variants = pictures.map(|v| v.storage_key.clone());
        variants.chain(self.crops.iter().map(|c| c.storage_key.clone()))
    }

    fn with_status(status: Status) -> Self {
        Self {
            status,
            variants: Vec::new(),
            poster: None,
            crops: Vec::new(),
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
        /// A video's or PDF's poster (the variants are its own).
        poster: Option<VariantRecord>,
        crops: Vec<CropRecord>,
        /// The item's `crop_version` the crops were made for.
        crop_version: u32,
        /// Absent for a video or PDF without a poster.
        thumbhash: Option<String>,
        dominant_color: Option<String>,
    },
    Failed {
        reason: String,
        /// The item's `crop_version` the run was for (a run for an older focal point is
        /// stale, whatever its outcome).
        crop_version: u32,
    },
}

impl JobResult {
    /// The item's `crop_version` the run was for.
    pub fn crop_version(&self) -> u32 {
        match self {
            Self::Ready { crop_version, .. } | Self::Failed { crop_version, .. } => *crop_version,
        }
    }

    /// The item's processing state once this result is recorded.
    pub fn into_processing(self) -> Processing {
        match self {
            Self::Ready {
                variants,
                poster,
                crops,
                thumbhash,
                dominant_color,
                ..
            } => Processing {
                status: Status::Ready,
                variants,
                poster,
                crops,
                thumbhash,
                dominant_color,
                error: None,
            },
            Self::Failed { reason, .. } => Processing {
                error: Some(reason),
                ..Processing::with_status(Status::Failed)
            },
        }
    }

    /// The storage keys of the files this result names (its variants and crops).
    pub fn written_keys(&self) -> Vec<String> {
        match self {
            Self::Ready {
                variants,
                poster,
                crops,
                ..
            } => poster
                .iter()
                .chain(variants)
                .map(|v| v.storage_key.clone())
                .chain(crops.iter().map(|c| c.storage_key.clone()))
                .collect(),
            Self::Failed { .. } => Vec::new(),
        }
    }

    /// The keys of its crops alone.
    pub fn crop_keys(&self) -> Vec<String> {
        match self {
            Self::Ready { crops, .. } => crops.iter().map(|c| c.storage_key.clone()).collect(),
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
    /// The signed PUT lands in a staging object, not at the key (every presign made since
    /// confirm copies what it checked; older ones are refused at confirm).
    #[serde(default)]
    pub staged: bool,
    /// Confirmed: the item exists. Kept until it expires, so that what its still-valid
    /// URL may PUT afterwards is deleted then.
    #[serde(default)]
    pub confirmed: bool,
    /// The confirm in progress, if any: only it writes the key until it ends or its lease
    /// runs out (a second confirm meanwhile is refused), so two attempts never mix bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirming: Option<ConfirmLease>,
}

/// Which confirm holds a presign, and until when (µs since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmLease {
    pub token: String,
    pub until_us: u64,
}

impl PresignRecord {
    pub fn is_expired(&self, now_us: u64) -> bool {
        self.expires_us < now_us
    }

    /// Another confirm than `token` holds it at `now_us`.
    pub fn confirming_elsewhere(&self, token: &str, now_us: u64) -> bool {
        self.confirming
            .as_ref()
            .is_some_and(|l| l.token != token && l.until_us >= now_us)
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
    /// A new visibility: its files move (`library::Library::set_visibility`), so
    /// `apply` leaves it alone.
    pub visibility: Option<Visibility>,
}

impl MediaPatch {
    /// Changes nothing at all (`{}` still marks the item updated).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

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
        r.updated_us = Some(super::now_us());
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
        for t in [MediaType::Pdf, MediaType::Mp4, MediaType::Webm] {
            let poster = Processing::initial(t).expect("a poster to make");
            assert_eq!((poster.status, poster.poster), (Status::Processing, None));
        }
    }

    #[test]
    fn moving_the_focal_point_of_an_image_remakes_its_crops_under_a_new_version() {
        let mut old = MediaRecord {
            processing: Processing::initial(MediaType::Png),
            ..MediaRecord::sample('a', "a.png", 1, 1)
        };
        let p = old.processing.as_mut().expect("processing");
        p.status = Status::Ready;
        p.crops.push(CropRecord {
            name: "card".into(),
            width: 1200,
            height: 630,
            size: 10,
            storage_key: "2026/01/aaaa-1200x630.webp".into(),
        });
        let mut same = old.clone();
        same.alt = Some("only the alt".into());
        assert_eq!(same.recrop_after(&old), None);
        let mut moved = old.clone();
        moved.focal_x = 10.0;
        assert_eq!(
            moved.recrop_after(&old),
            Some(vec!["2026/01/aaaa-1200x630.webp".to_owned()])
        );
        let p = moved.processing.as_ref().expect("processing");
        assert_eq!(
            (p.status, p.crops.len(), moved.crop_version),
            (Status::Processing, 0, 2)
        );
        // A document has no crops; a failed image is not retried by a patch.
        let mut failed = old.clone();
        failed.processing.as_mut().expect("p").status = Status::Failed;
        let mut failed_moved = failed.clone();
        failed_moved.focal_y = 1.0;
        assert_eq!(failed_moved.recrop_after(&failed), None);
        old.crop_version = 2;
        let mut again = old.clone();
        again.focal_y = 99.0;
        again.recrop_after(&old);
        assert_eq!(again.crop_version, 3);
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
