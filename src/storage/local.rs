//! Local-disk backend: `<data_dir>/uploads/YYYY/MM/<token>.<ext>`, with temp files in
//! `<data_dir>/tmp`. Commit = fsync file, rename, fsync directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Result, Sink, StoredFile, SweepReport, is_valid_key};
use crate::catalog::model::random_token;

pub struct LocalStorage {
    uploads: PathBuf,
    tmp: PathBuf,
}

impl LocalStorage {
    /// Creates the folders if needed.
    pub fn new(data_dir: &Path) -> io::Result<Self> {
        let uploads = data_dir.join("uploads");
        let tmp = data_dir.join("tmp");
        fs::create_dir_all(&uploads)?;
        fs::create_dir_all(&tmp)?;
        Ok(Self { uploads, tmp })
    }

    pub(super) async fn begin(&self) -> Result<Sink> {
        let path = self.tmp.join(format!("{}.part", random_token(20)));
        let file = tokio::fs::File::create(&path).await?;
        Ok(Sink::new(path, file))
    }

    pub(super) async fn commit(&self, mut sink: Sink, key: &str) -> Result<u64> {
        sink.flush().await?;
        let target = self.path_of(key)?;
        let from = sink.path.clone();
        let len = tokio::task::spawn_blocking(move || -> io::Result<u64> {
            // By path, not by the sink's handle: the file may have been rewritten
            // (metadata stripped) since the sink wrote it.
            let file = fs::File::open(&from)?;
            file.sync_all()?;
            let len = file.metadata()?.len();
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
            fs::rename(&from, &target)?;
            fs::File::open(dir)?.sync_all()?;
            Ok(len)
        })
        .await
        .map_err(io::Error::other)??;
        sink.committed = true;
        Ok(len)
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

    pub(super) fn sweep(&self, is_known: &dyn Fn(&str) -> bool) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        for entry in fs::read_dir(&self.tmp)? {
            fs::remove_file(entry?.path())?;
            report.temp_files += 1;
        }
        for year in read_dirs(&self.uploads)? {
            for month in read_dirs(&year)? {
                for file in fs::read_dir(&month)? {
                    let path = file?.path();
                    let key = path.strip_prefix(&self.uploads).ok().and_then(Path::to_str);
                    if !key.is_some_and(is_known) {
                        fs::remove_file(&path)?;
                        report.orphans += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    fn path_of(&self, key: &str) -> io::Result<PathBuf> {
        if !is_valid_key(key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid storage key",
            ));
        }
        Ok(self.uploads.join(key))
    }
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
    use super::super::Storage;
    use super::*;

    #[tokio::test]
    async fn commit_sweep_and_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::Local(LocalStorage::new(dir.path()).expect("storage"));
        let mut sink = storage.begin().await.expect("begin");
        sink.write(b"hello").await.expect("write");
        storage
            .commit(sink, "2026/01/keep.txt")
            .await
            .expect("commit");
        let mut orphan = storage.begin().await.expect("begin");
        orphan.write(b"x").await.expect("write");
        storage
            .commit(orphan, "2026/01/orphan.txt")
            .await
            .expect("commit");
        let abandoned = storage.begin().await.expect("begin");
        std::mem::forget(abandoned); // a crash mid-upload leaves a temp file

        let report = storage.sweep(&|k| k == "2026/01/keep.txt").expect("sweep");
        assert_eq!(
            report,
            SweepReport {
                temp_files: 1,
                orphans: 1
            }
        );
        let kept = storage
            .open("2026/01/keep.txt")
            .await
            .expect("open")
            .expect("exists");
        assert_eq!(kept.len, 5);
        assert!(
            storage
                .open("2026/01/orphan.txt")
                .await
                .expect("open")
                .is_none()
        );

        storage.delete("2026/01/keep.txt").await.expect("delete");
        storage
            .delete("2026/01/keep.txt")
            .await
            .expect("deleting twice is fine");
        assert!(storage.open("../etc/passwd").await.is_err());
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
