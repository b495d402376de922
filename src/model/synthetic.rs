//! Synthetic catalogs for benchmarks and `make perf`: records that look like a real
//! library (camera-style and word-based filenames, alt texts from a vocabulary, one rare
//! word in about 2,000 items) so that search is measured on realistic text.
//!
//! The shape the perf harness checks stays fixed: item `i` is in folder `/f{i % 100}`,
//! of type jpeg, png, pdf, mp4 in turn by sevens (`(i / 7) % 4`), created 1 ms after `i - 1`.

use super::id::{new_media_id, new_storage_token};
use super::{MediaRecord, MediaType};

const ADJECTIVES: [&str; 16] = [
    "golden", "quiet", "misty", "bright", "old", "red", "blue", "green", "frozen", "sunny",
    "wooden", "narrow", "crowded", "calm", "wild", "empty",
];
/// "beach" is listed three times: the common term of `make perf` (about 10% of items).
const NOUNS: [&str; 20] = [
    "beach",
    "harbor",
    "mountain",
    "forest",
    "street",
    "bridge",
    "garden",
    "market",
    "beach",
    "river",
    "lighthouse",
    "cathedral",
    "meadow",
    "canyon",
    "village",
    "station",
    "skyline",
    "beach",
    "vineyard",
    "island",
];
const SUBJECTS: [&str; 10] = [
    "dog",
    "cyclist",
    "boat",
    "child",
    "couple",
    "train",
    "kite",
    "fisherman",
    "horse",
    "tram",
];
const PLACES: [&str; 6] = ["at", "near", "on", "under", "beside", "across"];
/// One item in about 2,000 names one of these (the selective term of `make perf`).
const RARE: [&str; 2] = ["aurora", "narwhal"];

/// A deterministic stream of numbers for item `i` (splitmix64).
struct Dice(u64);

impl Dice {
    fn roll(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[(self.roll() % words.len() as u64) as usize]
    }

    fn noun(&mut self) -> &'static str {
        if self.roll().is_multiple_of(1000) {
            self.pick(&RARE)
        } else {
            self.pick(&NOUNS)
        }
    }

    /// `YYYYMMDD_HHMMSS` somewhere in 2019-2025.
    fn stamp(&mut self) -> String {
        let r = self.roll();
        format!(
            "{}{:02}{:02}_{:02}{:02}{:02}",
            2019 + r % 7,
            1 + (r >> 8) % 12,
            1 + (r >> 16) % 28,
            (r >> 24) % 24,
            (r >> 32) % 60,
            (r >> 40) % 60
        )
    }
}

fn filename(i: u64, media_type: MediaType, dice: &mut Dice) -> String {
    let ext = media_type.ext();
    match (media_type, dice.roll() % 4) {
        (MediaType::Jpeg | MediaType::Png, 0) => format!("IMG_{}.{ext}", dice.stamp()),
        (MediaType::Jpeg | MediaType::Png, 1) => format!("DSC_{:04}.{ext}", i % 10_000),
        (MediaType::Jpeg | MediaType::Png, 2) => {
            format!("PXL_{}{:03}.{ext}", dice.stamp(), i % 1000)
        }
        (MediaType::Mp4, 0 | 1) => format!("VID_{}.{ext}", dice.stamp()),
        (MediaType::Pdf, 0) => format!("invoice-{}-{:04}.{ext}", 2019 + i % 7, i % 10_000),
        (MediaType::Pdf, 1) => format!("{}-guide-{}.{ext}", dice.noun(), 1 + i % 12),
        _ => format!("{}-{}-{i}.{ext}", dice.pick(&ADJECTIVES), dice.noun()),
    }
}

fn alt(dice: &mut Dice) -> String {
    let (subject, place) = (dice.pick(&SUBJECTS), dice.pick(&PLACES));
    let (adjective, noun) = (dice.pick(&ADJECTIVES), dice.noun());
    format!("A {subject} {place} the {adjective} {noun}")
}

impl MediaRecord {
    /// The `i`th record of a synthetic catalog (see the module). It has no file behind it.
    #[doc(hidden)]
    pub fn synthetic(i: u64) -> Self {
        let types = [
            MediaType::Jpeg,
            MediaType::Png,
            MediaType::Pdf,
            MediaType::Mp4,
        ];
        let media_type = types[((i / 7) % 4) as usize];
        let mut dice = Dice(i);
        let filename = filename(i, media_type, &mut dice);
        Self {
            id: new_media_id(),
            filename,
            media_type,
            size: 1000 + (i * 7919) % 5_000_000,
            width: Some(1920),
            height: Some(1080),
            duration: None,
            frames: None,
            alt: (!i.is_multiple_of(3)).then(|| alt(&mut dice)),
            title: None,
            description: None,
            folder: format!("/f{:02}", i % 100),
            focal_x: 50.0,
            focal_y: 50.0,
            created_us: 1_700_000_000_000_000 + i * 1000,
            storage_key: format!("2026/01/{}.{}", new_storage_token(), media_type.ext()),
            processing: None,
            crop_version: 0,
            updated_us: None,
            visibility: super::Visibility::Public,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_index_makes_the_same_text_and_shape() {
        let (a, b) = (MediaRecord::synthetic(4242), MediaRecord::synthetic(4242));
        assert_eq!((&a.filename, &a.alt), (&b.filename, &b.alt));
        assert_eq!(a.folder, "/f42");
        assert_eq!(a.media_type, MediaType::Pdf, "(4242 / 7) % 4 = 2");
        let texts: Vec<String> = (0..20_000)
            .map(MediaRecord::synthetic)
            .map(|r| format!("{} {}", r.filename, r.alt.unwrap_or_default()).to_lowercase())
            .collect();
        let share =
            |term: &str| texts.iter().filter(|t| t.contains(term)).count() as f64 / 20_000.0;
        assert!(share("beach") >= 0.10, "common term: {}", share("beach"));
        assert!(
            share("aurora") <= 0.001,
            "selective term: {}",
            share("aurora")
        );
        assert!(share("aurora") > 0.0);
        assert!(share("img_") > 0.05, "camera-style names");
    }
}
