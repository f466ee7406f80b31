//! Evidence files on disk (issue 15 item 1): content-addressed by SHA-256, written
//! atomically, checked against their name when read back.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ids::new_id;

/// Evidence files on disk, content-addressed: `<dir>/<sha[0..2]>/<sha>`.
#[derive(Debug)]
pub struct EvidenceStore {
    dir: PathBuf,
}

impl EvidenceStore {
    /// Opens (and creates) the directory.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2]).join(sha256)
    }

    /// Keeps `bytes` under their SHA-256: a temporary file in the same directory, written and
    /// fsynced, renamed into place, and the directory fsynced. A file already there with the
    /// same length is kept as is (the name is its content's hash).
    pub fn put(&self, sha256: &str, bytes: &[u8]) -> std::io::Result<()> {
        let target = self.path_of(sha256);
        if std::fs::metadata(&target).is_ok_and(|m| m.len() == bytes.len() as u64) {
            return Ok(());
        }
        let folder = self.dir.join(&sha256[..2]);
        std::fs::create_dir_all(&folder)?;
        let temp = folder.join(format!(".{sha256}.{}.tmp", new_id("tmp")));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, &target)?;
            std::fs::File::open(&folder)?.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }

    /// The file named `sha256`, checked against its name.
    pub fn get(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        let bytes = std::fs::read(self.path_of(sha256))?;
        if hex::encode(Sha256::digest(&bytes)) != sha256 {
            return Err(std::io::Error::other(format!(
                "evidence file {sha256} does not match its SHA-256"
            )));
        }
        Ok(bytes)
    }
}
