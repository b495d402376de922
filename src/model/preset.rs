//! Crop presets: named sizes from config (`[delivery] presets = { card = "1200x630" }`)
//! that the processing job cuts from every raster image around its focal point, and the
//! record of the crops it made.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Largest side of a preset, in pixels.
pub const MAX_CROP_SIDE: u32 = 4096;

/// A crop's size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CropSize {
    pub width: u32,
    pub height: u32,
}

impl CropSize {
    /// `"WxH"`, each side 1..=`MAX_CROP_SIDE`.
    pub fn parse(text: &str) -> Option<Self> {
        let (w, h) = text.split_once('x')?;
        let side = |s: &str| {
            s.parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_CROP_SIDE).contains(n) && !s.starts_with('0'))
        };
        Some(Self {
            width: side(w)?,
            height: side(h)?,
        })
    }
}

/// The presets of a deployment, by name (sorted, so every job cuts them in one order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presets(BTreeMap<String, CropSize>);

impl Presets {
    pub fn iter(&self) -> impl Iterator<Item = (&str, CropSize)> {
        self.0.iter().map(|(name, size)| (name.as_str(), *size))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The distinct sizes, each cut once however many presets share it.
    pub fn sizes(&self) -> Vec<CropSize> {
        let mut sizes: Vec<CropSize> = self.0.values().copied().collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    /// Whether an item's crops are exactly these presets.
    pub fn made(&self, crops: &[CropRecord]) -> bool {
        crops.len() == self.0.len() && crops.iter().all(|c| self.0.get(&c.name) == Some(&c.size()))
    }
}

/// A preset name: 1-32 of `a-z`, `0-9`, `_`, `-`, starting with a letter or digit.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && (b == b'_' || b == b'-'))
        })
}

impl<'de> Deserialize<'de> for Presets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        let mut presets = BTreeMap::new();
        for (name, size) in raw {
            if !valid_name(&name) {
                return Err(serde::de::Error::custom(format!(
                    "preset name {name:?}: use 1-32 of a-z, 0-9, _ and -"
                )));
            }
            let size = CropSize::parse(&size).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "preset {name} = {size:?}: want \"WIDTHxHEIGHT\", each 1-{MAX_CROP_SIDE}"
                ))
            })?;
            presets.insert(name, size);
        }
        Ok(Self(presets))
    }
}

/// One crop of an image, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CropRecord {
    /// The preset's name.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    /// `YYYY/MM/<token>-<w>x<h>.webp`, with `-v<n>` once the focal point has moved.
    pub storage_key: String,
}

impl CropRecord {
    pub fn size(&self) -> CropSize {
        CropSize {
            width: self.width,
            height: self.height,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_names_are_checked() {
        assert_eq!(
            CropSize::parse("1200x630"),
            Some(CropSize {
                width: 1200,
                height: 630
            })
        );
        for bad in [
            "", "1200", "0x10", "10x0", "01x10", "4097x10", "axb", "10x10x10", "-1x5",
        ] {
            assert_eq!(CropSize::parse(bad), None, "{bad}");
        }
        assert!(valid_name("card") && valid_name("og-1200_x") && valid_name("4k"));
        assert!(!valid_name("") && !valid_name("Card") && !valid_name("-x"));
        assert!(!valid_name(&"a".repeat(33)) && !valid_name("a b") && !valid_name("a/b"));
    }

    /// `presets` as the config has it.
    #[derive(Debug, Deserialize)]
    struct Delivery {
        presets: Presets,
    }

    #[test]
    fn presets_come_from_a_table_of_sizes_and_share_sizes() {
        let d: Delivery = toml::from_str(
            "presets = { square = \"400x400\", card = \"1200x630\", avatar = \"400x400\" }",
        )
        .expect("presets");
        let names: Vec<&str> = d.presets.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["avatar", "card", "square"]);
        assert_eq!(d.presets.sizes().len(), 2);
        let bad: Result<Delivery, _> = toml::from_str("presets = { card = \"big\" }");
        assert!(
            bad.expect_err("refused")
                .to_string()
                .contains("WIDTHxHEIGHT")
        );
    }
}
