//! Crops of any size on demand: `GET /api/v1/public/media/{id}/crop?w=&h=&sig=`.
//!
//! The signature and the size bounds are checked before anything is read; then the item
//! (404 unless a raster image). A crop already made is answered from the cache; else one
//! request makes it (single flight per crop: the others wait for it) on the processing
//! pool, under the pool's backpressure (503 when the backlog is full), stores it next to
//! its original as `<token>-c<w>x<h>[-v<n>].webp` and records it in the catalog, which
//! evicts the least recently used past `delivery.crop_cache_bytes`. A focal point moved
//! or a file replaced drops an item's cached crops (new ones get a new version).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::actors::catalog::CatalogHandle;
use crate::actors::processing::ProcessingHandle;
use crate::actors::storage::StorageHandle;
use crate::catalog::{CacheCrop, CatalogError};
use crate::config::Config;
use crate::delivery::Signer;
use crate::media::image::{Focal, PipelineError};
use crate::metrics as m;
use crate::model::{CropSize, MediaRecord, Status, now_us};
use crate::storage::StorageError;
use crate::storage::key::{ondemand_crop_key, ondemand_crop_prefix};

/// Crops being made, by key prefix (see `Flight`).
type Flights = Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// The longest one node's claim on making a crop holds the others back (and how long they
/// wait for it before making the crop themselves).
const CLAIM_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

/// One request's place in the single flight of a crop: the lock the makers of one crop
/// take in turn. Dropped (answered, or its client gone mid-way), it takes the crop's
/// entry out of the map once no other request holds it, so a client that disconnects
/// leaves nothing behind.
struct Flight<'a> {
    flights: &'a Flights,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> Flight<'a> {
    fn join(flights: &'a Flights, key: &str) -> Self {
        let mut map = flights.lock().unwrap_or_else(|e| e.into_inner());
        let lock = map.entry(key.to_owned()).or_default().clone();
        Self {
            flights,
            key: key.to_owned(),
            lock,
        }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut map = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&self.lock) <= 2 {
            map.remove(&self.key); // the map's and this one: nobody else waits
        }
    }
}

/// A cached crop's last use is written at most this often (a hit is otherwise a read).
const TOUCH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum CropError {
    #[error("missing or invalid signature for this crop")]
    BadSignature,
    #[error("a crop's sides must be 1-{0} pixels")]
    OutOfBounds(u32),
    #[error("media item not found, or not an image")]
    NotFound,
    #[error("image processing is behind ({backlog} images waiting); retry in {retry_after} s")]
    Busy { backlog: u64, retry_after: u64 },
    #[error("the crop cannot be made: {0}")]
    Pipeline(#[from] PipelineError),
    #[error(
        "this crop is larger than the whole crop cache ({0} bytes, delivery.crop_cache_bytes): \
         it cannot be kept"
    )]
    OverBudget(u64),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a crop URL carries beside its size: the signature, and for a private item's crop
/// when it ends (Unix seconds).
pub struct Grant {
    pub sig: String,
    pub expires: Option<u64>,
}

pub struct Cropper {
    catalog: CatalogHandle,
    storage: StorageHandle,
    processing: ProcessingHandle,
    signer: Arc<Signer>,
    max_side: u32,
    budget: u64,
    retry_after: u64,
    /// Crops being made, by key prefix: a second request waits on the first.
    flights: Flights,
    /// Crops whose last use is being written (one write at a time per crop).
    touching: Arc<Mutex<HashSet<String>>>,
}

impl Cropper {
    pub fn new(
        catalog: CatalogHandle,
        storage: StorageHandle,
        processing: ProcessingHandle,
        signer: Arc<Signer>,
        config: &Config,
    ) -> Self {
        let d = &config.delivery;
        Self {
            catalog,
            storage,
            processing,
            signer,
            max_side: d.max_crop_side,
            budget: d.crop_cache_bytes,
            retry_after: config.processing.retry_after_secs,
            flights: Mutex::default(),
            touching: Arc::default(),
        }
    }

    /// Refuses sizes past the bound (signed or not).
    pub fn check_size(&self, size: CropSize) -> Result<(), CropError> {
        let ok = |side| (1..=self.max_side).contains(&side);
        if ok(size.width) && ok(size.height) {
            Ok(())
        } else {
            Err(CropError::OutOfBounds(self.max_side))
        }
    }

    /// The storage key of the crop `size` of item `id`, made if it is not cached. A
    /// private item's crops are made only for a grant that expires (and has not): to
    /// anyone else the item does not exist.
    pub async fn crop(&self, id: &str, size: CropSize, grant: &Grant) -> Result<String, CropError> {
        let valid = match grant.expires {
            None => self.signer.verify(id, size, &grant.sig),
            Some(e) => self
                .signer
                .verify_until(id, size, e, &grant.sig, super::links::unix_now()),
        };
        if !valid {
            return Err(CropError::BadSignature);
        }
        self.check_size(size)?;
        let record = self.image(id).await?;
        if record.visibility.is_private() && grant.expires.is_none() {
            return Err(CropError::NotFound);
        }
        let prefix = ondemand_crop_prefix(&record.storage_key, size, record.crop_version);
        if let Some(key) = self.hit(id, &prefix).await? {
            return Ok(key);
        }
        let flight = Flight::join(&self.flights, &prefix);
        let _turn = flight.lock.lock().await;
        if let Some(key) = self.hit(id, &prefix).await? {
            return Ok(key);
        }
        // The same across nodes: one makes it, the others find it made.
        let cluster = self.catalog.exclusive(&prefix, CLAIM_HOLD).await;
        if cluster.is_some()
            && let Some(key) = self.hit(id, &prefix).await?
        {
            return Ok(key);
        }
        self.make(&record, size).await
    }

    /// The item, if it has a picture (a raster image, a video's or PDF's poster) and its
    /// processing did not fail.
    async fn image(&self, id: &str) -> Result<MediaRecord, CropError> {
        let record = self.catalog.get(id).await?.ok_or(CropError::NotFound)?;
        let failed = record
            .processing
            .as_ref()
            .is_some_and(|p| p.status == Status::Failed);
        if record.picture().is_none() || failed {
            return Err(CropError::NotFound);
        }
        Ok(record)
    }

    /// The key of the cached crop whose key starts with `prefix`, if it is cached; a hit
    /// older than `TOUCH_EVERY` is marked used.
    async fn hit(&self, id: &str, prefix: &str) -> Result<Option<String>, CropError> {
        let Some((key, last_used)) = self.catalog.cached_crop(id, prefix).await? else {
            return Ok(None);
        };
        let stale = now_us().saturating_sub(last_used) > TOUCH_EVERY.as_micros() as u64;
        let first = || {
            let mut touching = self.touching.lock().unwrap_or_else(|e| e.into_inner());
            touching.insert(key.to_owned())
        };
        if stale && first() {
            let (catalog, touching) = (self.catalog.clone(), self.touching.clone());
            let (id, key) = (id.to_owned(), key.clone());
            tokio::spawn(async move {
                let _ = catalog.touch_crop(id, key.clone()).await;
                touching
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
            });
        }
        Ok(Some(key))
    }

    /// Makes, stores and records one crop (under the pool's backpressure), under a key of
    /// its own, held from the orphan sweep until its record commits.
    async fn make(&self, record: &MediaRecord, size: CropSize) -> Result<String, CropError> {
        let _slot = self
            .processing
            .try_reserve()
            .ok_or_else(|| CropError::Busy {
                backlog: self.catalog.job_count(),
                retry_after: self.retry_after,
            })?;
        // Within the pool's in-flight window: each crop holds its whole original.
        let _turn = self.processing.crop_turn().await;
        let (picture, kind) = record.picture().ok_or(CropError::NotFound)?;
        let original = self
            .storage
            .read(picture.to_owned())
            .await?
            .ok_or(CropError::NotFound)?;
        let focal = Focal {
            x: record.focal_x,
            y: record.focal_y,
        };
        let webp = self
            .processing
            .make_crop(original, kind, size, focal)
            .await?;
        metrics::counter!(m::CROPS_MADE).increment(1);
        let len = webp.len() as u64;
        if len > self.budget {
            return Err(CropError::OverBudget(self.budget));
        }
        let key = ondemand_crop_key(&record.storage_key, size, record.crop_version);
        let _held = self.storage.hold(key.clone());
        self.storage.put_all(vec![(key.clone(), webp)]).await?;
        let cached = self
            .catalog
            .cache_crop(CacheCrop {
                id: record.id.clone(),
                key: key.clone(),
                size: len,
                source: record.storage_key.clone(),
                version: record.crop_version,
                now_us: now_us(),
                budget: self.budget,
            })
            .await?;
        if !cached.evicted.is_empty() {
            self.storage.drain_deletes(cached.evicted);
        }
        if cached.kept {
            Ok(key)
        } else {
            Err(CropError::NotFound) // replaced, moved or deleted meanwhile
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flight_leaves_the_map_with_its_last_request_even_one_whose_client_left() {
        let flights: Arc<Flights> = Arc::default();
        let first = Flight::join(&flights, "k");
        let held = first.lock.clone().lock_owned().await;
        // A second request waits for the first one's crop; its client goes away.
        let waiting = {
            let flights = flights.clone();
            tokio::spawn(async move {
                let second = Flight::join(&flights, "k");
                let _turn = second.lock.lock().await;
            })
        };
        tokio::task::yield_now().await;
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(
            flights.lock().expect("map").len(),
            1,
            "the first still holds it"
        );
        drop(held);
        drop(first);
        assert!(
            flights.lock().expect("map").is_empty(),
            "nothing left behind"
        );
    }
}
