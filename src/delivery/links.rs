//! How answers name files. A public item's files have plain URLs (`storage::FileUrls`); a
//! private item's have signed links that expire: this server's own (`sign`) on local disk,
//! presigned GETs of the private bucket on S3. Every answer that holds items gets its URLs
//! from one `Named`, made here for exactly those items, so no path can forget to sign.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::actors::storage::StorageHandle;
use crate::config::Config;
use crate::model::{CropSize, MediaRecord};
use crate::storage::key::is_private;
use crate::storage::{FileUrls, StorageError};

use super::Signer;

pub struct Links {
    urls: FileUrls,
    signer: Arc<Signer>,
    storage: StorageHandle,
    /// Lifetime of a link when the request asks for none, and the longest it may ask for.
    ttl: u64,
    max_ttl: u64,
}

/// The URLs of one answer's files.
pub struct Named<'a> {
    urls: &'a FileUrls,
    /// Private files' links, by storage key.
    signed: HashMap<String, String>,
    /// When the signed links end (Unix seconds).
    expires: u64,
}

impl Links {
    pub fn new(config: &Config, signer: Arc<Signer>, storage: StorageHandle) -> Self {
        Self {
            urls: FileUrls::new(&config.storage),
            signer,
            storage,
            ttl: config.media.link_ttl_secs,
            max_ttl: config.media.max_link_ttl_secs,
        }
    }

    /// The one signer of every URL (crops and links).
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The longest lifetime a request may ask for (`?urlTtl=`).
    pub fn max_ttl(&self) -> u64 {
        self.max_ttl
    }

    /// Names for answers that hold public items only (the public API).
    pub fn plain(&self) -> Named<'_> {
        Named {
            urls: &self.urls,
            signed: HashMap::new(),
            expires: 0,
        }
    }

    /// Names for every file of `records`: links to private items' files that last `ttl`
    /// seconds (the configured lifetime when `None`; callers bound it by `max_ttl`).
    pub async fn name<'r>(
        &self,
        records: impl IntoIterator<Item = &'r MediaRecord>,
        ttl: Option<u64>,
    ) -> Result<Named<'_>, StorageError> {
        let ttl = ttl.unwrap_or(self.ttl).clamp(1, self.max_ttl);
        let expires = unix_now() + ttl;
        let keys: Vec<String> = records
            .into_iter()
            .filter(|r| r.visibility.is_private())
            .flat_map(MediaRecord::storage_keys)
            .filter(|k| is_private(k))
            .collect();
        let mut signed = HashMap::with_capacity(keys.len());
        if !keys.is_empty() {
            match self
                .storage
                .presign_gets(keys.clone(), Duration::from_secs(ttl))
                .await?
            {
                Some(urls) => signed.extend(keys.into_iter().zip(urls)),
                None => {
                    for key in keys {
                        let link = self.signer.link(&self.urls.url(&key), expires);
                        signed.insert(key, link);
                    }
                }
            }
        }
        Ok(Named {
            urls: &self.urls,
            signed,
            expires,
        })
    }

    /// The link to one private file (an on-demand crop) that lasts until `expires`.
    pub async fn link(&self, key: &str, expires: u64) -> Result<String, StorageError> {
        let left = expires.saturating_sub(unix_now()).max(1);
        let presigned = self
            .storage
            .presign_gets(vec![key.to_owned()], Duration::from_secs(left))
            .await?;
        Ok(match presigned.and_then(|urls| urls.into_iter().next()) {
            Some(url) => url,
            None => self.signer.link(&self.urls.url(key), expires),
        })
    }

    /// The plain URL of a public file.
    pub fn url(&self, key: &str) -> String {
        self.urls.url(key)
    }
}

impl Named<'_> {
    /// Where a client reads the file `key`: its signed link when it is a private item's.
    pub fn url(&self, key: &str) -> String {
        match self.signed.get(key) {
            Some(link) => link.clone(),
            None => self.urls.url(key),
        }
    }

    /// When the links of item `r` end (Unix seconds), for a private item.
    pub fn expires(&self, r: &MediaRecord) -> Option<u64> {
        r.visibility.is_private().then_some(self.expires)
    }

    /// A crop URL of item `r` (`POST /api/v1/media/{id}/crops`): a private item's ends
    /// with its links.
    pub fn crop_url(&self, signer: &Signer, r: &MediaRecord, size: CropSize) -> String {
        signer.url(&r.id, size, self.expires(r))
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
