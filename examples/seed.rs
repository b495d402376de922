//! Seeds a data dir's catalog with synthetic records, for `make perf`'s listing at 1M items:
//!
//! `cargo run --release --example seed -- DATA_DIR [COUNT]` (COUNT defaults to 1,000,000)
//!
//! Records come from `MediaRecord::synthetic` (100 folders, four types, no files behind
//! them) and go in through the catalog's own write path, 20,000 per transaction. The server
//! must be stopped: the catalog is single-process.

use std::path::PathBuf;
use std::time::Instant;

use darkroom::catalog::{Catalog, Write};
use darkroom::model::MediaRecord;

const BATCH: u64 = 20_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: seed DATA_DIR [COUNT]")?);
    let count: u64 = args.next().map_or(Ok(1_000_000), |c| c.parse())?;
    std::fs::create_dir_all(&dir)?;
    let catalog = Catalog::open(&dir.join("darkroom.redb"))?;
    let started = Instant::now();
    let mut next = 0;
    while next < count {
        let end = (next + BATCH).min(count);
        let batch = (next..end).map(MediaRecord::synthetic).collect();
        catalog.apply_single(Write::InsertMedia(batch))?;
        next = end;
        eprint!("\rseeded {next} of {count}");
    }
    eprintln!("\nseeded {count} records in {:.1?}", started.elapsed());
    Ok(())
}
