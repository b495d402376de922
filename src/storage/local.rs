//! Local-disk backend: `<data_dir>/uploads/YYYY/MM/<token>.<ext>`, private items' files
//! apart in `<data_dir>/private/YYYY/MM/` (served only through signed links), with temp
//! files in `<data_dir>/tmp`. Commit = fsync file, rename, fsync directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::key::{PRIVATE, is_private};
use super::{
    InFlight, Result, SWEEP_BATCH, Sink, StoredFile, Sweep, SweepReport, is_valid_key,
    modified_before, remove_if_present, sweep_temp,
};
use crate::model::random_token;

#[derive(Clone)]
pub struct LocalStorage {
    uploads: PathBuf,
    /// `<data_dir>`: private keys (`private/...`) are paths under it.
    root: PathBuf,
    tmp: PathBuf,
    pub(super) in_flight: InFlight,
    /// See `Sink`: bytes of an upload kept in memory, then its write buffer.
    pub(super) upload_buffer: usize,
}

impl LocalStorage {
    /// Creates the folders if needed.
    pub fn new(data_dir: &Path) -> io::Result<Self> {
        let uploads = data_dir.join("uploads");
        let tmp = data_dir.join("tmp");
        fs::create_dir_all(&uploads)?;
        fs::create_dir_all(data_dir.join(PRIVATE))?;
        fs::create_dir_all(&tmp)?;
        let in_flight = InFlight::default();
        Ok(Self {
            uploads,
            root: data_dir.to_owned(),
            tmp,
            in_flight,
            upload_buffer: super::sink::DEFAULT_BUFFER,
        })
    }

    pub(super) async fn begin(&self) -> Result<Sink> {
        Ok(Sink::new(&self.tmp, &self.in_flight, self.upload_buffer))
    }

    pub(super) async fn commit(&self, mut sink: Sink, key: &str) -> Result<u64> {
        let unwritten = sink.finish().await?;
        let target = self.path_of(key)?;
        let from = sink.path.clone();
        let len = tokio::task::spawn_blocking(move || -> io::Result<u64> {
            let file = match unwritten {
                // A small upload never left memory: written, synced and renamed in one trip.
                Some(bytes) => {
                    let mut file = fs::File::create(&from)?;
                    io::Write::write_all(&mut file, &bytes)?;
                    file
                }
                // By path, not by the sink's handle: the file may have been rewritten
                // (metadata stripped) since the sink wrote it.
                None => fs::File::open(&from)?,
            };
            file.sync_all()?;
            let len = file.metadata()?.len();
            let dir = ensure_folder(&target)?;
            fs::rename(&from, &target)?;
            fs::File::open(dir)?.sync_all()?;
            Ok(len)
        })
        .await
        .map_err(io::Error::other)??;
        sink.committed = true;
        Ok(len)
    }

    /// Writes small generated files (variants) durably: each is written and fsynced in
    /// tmp, renamed into place, then each folder is fsynced once.
    pub(super) async fn put_all(&self, files: Vec<(String, Vec<u8>)>) -> Result<()> {
        let targets = files
            .iter()
            .map(|(key, _)| self.path_of(key))
            .collect::<io::Result<Vec<_>>>()?;
        let tmp = self.tmp.clone();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            let mut folders = std::collections::BTreeSet::new();
            for ((_, bytes), target) in files.iter().zip(&targets) {
                let from = tmp.join(format!("{}.part", random_token(20)));
                let written = fs::File::create(&from).and_then(|mut f| {
                    io::Write::write_all(&mut f, bytes)?;
                    f.sync_all()
                });
                if let Err(e) = written {
                    let _ = fs::remove_file(&from);
                    return Err(e);
                }
                folders.insert(ensure_folder(target)?.to_owned());
                fs::rename(&from, target)?;
            }
            for folder in folders {
                fs::File::open(folder)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(io::Error::other)??;
        Ok(())
    }

    /// A stored file's whole content; `None` when it does not exist.
    pub(super) async fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path_of(key)?).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Where a stored file is on disk (a tool reads it there); `None` when missing.
    pub(super) async fn local_path(&self, key: &str) -> Result<Option<PathBuf>> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(_) => Ok(Some(path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn check(&self) -> Result<()> {
        for dir in [&self.uploads, &self.tmp] {
            if !tokio::fs::metadata(dir).await?.is_dir() {
                return Err(io::Error::other(format!("{} is not a folder", dir.display())).into());
            }
        }
        Ok(())
    }

    pub(super) async fn delete(&self, key: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path_of(key)?).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    pub(super) async fn open(&self, key: &str) -> Result<Option<StoredFile>> {
        let file = match tokio::fs::File::open(self.path_of(key)?).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let meta = file.metadata().await?;
        Ok(Some(StoredFile {
            file,
            len: meta.len(),
            modified: meta.modified()?,
        }))
    }

    /// Removes old temp files no upload holds, then walks `uploads/YYYY/MM/` for stored
    /// files older than `cutoff` that no request holds, and removes those the catalog does
    /// not claim, asking it `SWEEP_BATCH` at a time (on this blocking thread: the walk
    /// never holds more than one batch). Names that are not storage keys are left alone.
    pub(super) fn sweep(
        &self,
        sweep: &Sweep,
        runtime: &tokio::runtime::Handle,
    ) -> Result<SweepReport> {
        let mut report = SweepReport {
            temp_files: sweep_temp(&self.tmp, sweep.cutoff, &self.in_flight)?,
            orphans: 0,
        };
        if !sweep.stored {
            return Ok(report);
        }
        let mut batch = Vec::with_capacity(SWEEP_BATCH);
        // Public files' keys are their paths under uploads/, private ones' under the root.
        let private = self.root.join(PRIVATE);
        for (dir, base) in [(&self.uploads, &self.uploads), (&private, &self.root)] {
            for year in read_dirs(dir)? {
                for month in read_dirs(&year)? {
                    for file in fs::read_dir(&month)? {
                        let path = file?.path();
                        if is_part(&path) && modified_before(&path, sweep.cutoff)? {
                            remove_if_present(&path)?; // a cross-device copy a crash cut off
                            continue;
                        }
                        let key = path.strip_prefix(base).ok().and_then(Path::to_str);
                        if let Some(key) =
                            key.filter(|k| is_valid_key(k) && !self.in_flight.contains(k))
                            && modified_before(&path, sweep.cutoff)?
                        {
                            batch.push(key.to_owned());
                        }
                        if batch.len() == SWEEP_BATCH {
                            report.orphans += self.remove_unclaimed(sweep, runtime, &mut batch);
                        }
                    }
                }
            }
        }
        report.orphans += self.remove_unclaimed(sweep, runtime, &mut batch);
        Ok(report)
    }

    /// Removes the files of `batch` the catalog does not claim, each looked at again
    /// first (a request may have taken or rewritten it meanwhile); how many went. A file
    /// that cannot be removed is logged and left for the next sweep.
    fn remove_unclaimed(
        &self,
        sweep: &Sweep,
        runtime: &tokio::runtime::Handle,
        batch: &mut Vec<String>,
    ) -> usize {
        if batch.is_empty() {
            return 0;
        }
        let claimed = runtime.block_on((sweep.claims)(batch.clone()));
        let mut removed = 0;
        for key in batch.drain(..).filter(|k| !claimed.contains(k)) {
            let Ok(path) = self.path_of(&key) else {
                continue;
            };
            let gone = match modified_before(&path, sweep.cutoff) {
                Ok(true) if !self.in_flight.contains(&key) => remove_if_present(&path),
                Ok(_) => continue,
                Err(e) => Err(e),
            };
            match gone {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(%key, error = %e, "orphan not removed; the next sweep retries")
                }
            }
        }
        removed
    }

    fn path_of(&self, key: &str) -> io::Result<PathBuf> {
        if !is_valid_key(key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid storage key",
            ));
        }
        Ok(if is_private(key) {
            self.root.join(key)
        } else {
            self.uploads.join(key)
        })
    }

    /// Makes the file of `from` also the file of `to` (a hard link: no byte is copied;
    /// a copy where the two are on different file systems), durably. `false` when `from`
    /// does not exist.
    pub(super) async fn copy(&self, from: &str, to: &str) -> Result<bool> {
        let (from, to) = (self.path_of(from)?, self.path_of(to)?);
        let done = tokio::task::spawn_blocking(move || -> io::Result<bool> {
            if !from.exists() {
                return Ok(false);
            }
            let dir = ensure_folder(&to)?;
            match fs::hard_link(&from, &to) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // Left by an earlier attempt that did not commit: made again whole.
                    fs::remove_file(&to)?;
                    fs::hard_link(&from, &to)?;
                }
                Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                    let part = dir.join(format!(".{}{PART}", random_token(12)));
                    fs::copy(&from, &part)?;
                    fs::File::open(&part)?.sync_all()?;
                    fs::rename(&part, &to)?;
                }
                Err(e) => return Err(e),
            }
            fs::File::open(dir)?.sync_all()?;
            Ok(true)
        });
        Ok(done.await.map_err(io::Error::other)??)
    }
}

/// A copy in progress across file systems (`LocalStorage::copy`): `.<token>.part`.
fn is_part(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.ends_with(PART))
}

const PART: &str = ".part";

/// The folder of `target`, created (and made durable, with its parents) if it is new.
fn ensure_folder(target: &Path) -> io::Result<&Path> {
    let dir = target
        .parent()
        .ok_or_else(|| io::Error::other("key has no folder"))?;
    if !dir.exists() {
        fs::create_dir_all(dir)?;
        // New YYYY/MM folders must survive a crash too.
        for d in [dir.parent(), dir.parent().and_then(Path::parent)]
            .into_iter()
            .flatten()
        {
            fs::File::open(d)?.sync_all()?;
        }
    }
    Ok(dir)
}

fn read_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::super::Storage;
    use super::*;

    /// A storage with a committed `keep.txt` and `orphan.txt` and a temp file left by an
    /// upload that never finished.
    async fn storage_with_leftovers(dir: &Path) -> Storage {
        let storage = Storage::Local(LocalStorage::new(dir).expect("storage"));
        for (key, bytes) in [
            ("2026/01/keep.txt", &b"hello"[..]),
            ("2026/01/orphan.txt", b"x"),
        ] {
            let mut sink = storage.begin().await.expect("begin");
            sink.write(bytes).await.expect("write");
            storage
                .commit(sink, key, "text/plain")
                .await
                .expect("commit");
        }
        let mut small = storage.begin().await.expect("begin");
        small.write(b"small").await.expect("write");
        assert_eq!(
            fs::read_dir(dir.join("tmp")).expect("tmp").count(),
            0,
            "a small upload stays in memory until it is committed"
        );
        drop(small);
        // A crash mid-upload leaves a temp file that nothing holds any more.
        fs::write(dir.join("tmp/crashed.part"), [7; 1024]).expect("leftover");
        storage
    }

    #[tokio::test]
    async fn the_sweep_removes_unclaimed_files_older_than_its_cutoff() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = storage_with_leftovers(dir.path()).await;
        let claims: super::super::Claims = Arc::new(|keys: Vec<String>| {
            let kept = keys.into_iter().filter(|k| k == "2026/01/keep.txt");
            Box::pin(std::future::ready(kept.collect()))
        });
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let young = Sweep {
            claims: claims.clone(),
            cutoff: hour_ago,
            stored: true,
        };
        let report = storage.sweep(young).await.expect("sweep");
        assert_eq!(
            report,
            SweepReport::default(),
            "files younger than the grace period may belong to a request in progress"
        );
        // An upload in progress, past the spill size: its temp file is held.
        let mut live = storage.begin().await.expect("begin");
        live.write(&[7; 300 * 1024]).await.expect("write");
        // A name that is no storage key (a desktop's file) is none of the sweep's business,
        // and does not stop it.
        let stray = dir.path().join("uploads/2026/01/.DS_Store");
        fs::write(&stray, b"mac").expect("stray");
        let cutoff = SystemTime::now() + Duration::from_secs(1);
        let report = storage
            .sweep(Sweep {
                claims,
                cutoff,
                stored: true,
            })
            .await
            .expect("sweep");
        assert!(
            live.path().exists(),
            "an upload in progress keeps its temp file"
        );
        let expected = SweepReport {
            temp_files: 1,
            orphans: 1,
        };
        assert_eq!(report, expected);
        let kept = storage.open("2026/01/keep.txt").await.expect("open");
        assert_eq!(kept.expect("exists").len, 5);
        let orphan = storage.open("2026/01/orphan.txt").await.expect("open");
        assert!(orphan.is_none());
        assert!(stray.exists(), "left alone");
    }

    #[tokio::test]
    async fn deletes_are_idempotent_and_keys_stay_inside_uploads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = storage_with_leftovers(dir.path()).await;
        storage.delete("2026/01/keep.txt").await.expect("delete");
        storage
            .delete("2026/01/keep.txt")
            .await
            .expect("deleting twice is fine");
        assert!(
            storage
                .open("2026/01/keep.txt")
                .await
                .expect("open")
                .is_none()
        );
        assert!(storage.open("../etc/passwd").await.is_err());
    }

    #[tokio::test]
    async fn generated_files_are_stored_and_read_back_under_valid_keys_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::Local(LocalStorage::new(dir.path()).expect("storage"));
        storage
            .put_all(vec![
                ("2026/02/keep-400.webp".into(), b"v400".to_vec()),
                ("2026/02/keep-150.webp".into(), b"v150".to_vec()),
            ])
            .await
            .expect("put");
        let read = storage.read("2026/02/keep-150.webp").await.expect("read");
        assert_eq!(read.as_deref(), Some(&b"v150"[..]));
        assert!(
            storage
                .read("2026/02/none.webp")
                .await
                .expect("read")
                .is_none()
        );
        assert!(
            storage
                .put_all(vec![("../x.webp".into(), vec![1])])
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn dropped_sink_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = LocalStorage::new(dir.path()).expect("storage");
        let mut sink = storage.begin().await.expect("begin");
        sink.write(b"partial").await.expect("write");
        let path = sink.path().to_owned();
        drop(sink);
        assert!(!path.exists());
    }
}
