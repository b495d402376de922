//! Delivery: the URLs answers give (`links`: plain for public items, signed and expiring
//! for private ones), and crops of any size on demand, behind signed URLs (`sign`), made
//! once through the processing pool and kept in a cache with a byte budget (`ondemand`).
//! The crop presets themselves are made by the image job.

pub mod links;
pub mod ondemand;
pub mod sign;

use serde::Deserialize;

use crate::config::Secret;
use crate::model::Presets;

pub use links::{Links, Named};
pub use ondemand::{CropError, Cropper, Grant};
pub use sign::Signer;

/// `[delivery]` in config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Crops every raster image gets, by name.
    pub presets: Presets,
    /// The HMAC key of on-demand crop URLs (else `<data_dir>/crop-signing.key`).
    #[serde(default)]
    pub signing_key: Option<Secret>,
    /// Largest side of an on-demand crop, signed or not.
    pub max_crop_side: u32,
    /// Bytes the cached on-demand crops may take.
    pub crop_cache_bytes: u64,
}
