//! The on-disk layout of a data dir, in one place. Every file liveproc
//! writes lives under it:
//!
//! ```text
//! <data_dir>/
//!   registry.redb                        organizations, streams, recordings, clips
//!                                        (not used with --database-url)
//!   admin.key, demo.key                  keys written at first start
//!   url-signing.key                      the key of signed URLs (0600)
//!   streams/<org>/<stream>/thumbnail/    the latest thumbnail (kept over restarts)
//!   recordings/<org>/<stream>/<id>.mp4   recording files (with --object-store: the
//!                                        spool of what is not uploaded yet)
//!   clips/<org>/<stream>/<id>.mp4        replay clips (not kept once uploaded)
//!   replay/<org>/<stream>/<seq>.gop      replay GOPs spilled from memory (with
//!                                        --object-store: only those the store
//!                                        did not take)
//! ```
//!
//! Organization and stream ids are checked to be path-safe before they
//! become folder names (see `validate::stream_id`).

use std::path::{Path, PathBuf};

use crate::ids::StreamRef;

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The registry database.
    pub fn registry_file(&self) -> PathBuf {
        self.root.join("registry.redb")
    }

    /// The admin key written at first start.
    pub fn admin_key_file(&self) -> PathBuf {
        self.root.join("admin.key")
    }

    /// The key signed URLs are made with.
    pub fn url_signing_key_file(&self) -> PathBuf {
        self.root.join("url-signing.key")
    }

    /// The demo organization's key (`--demo`).
    pub fn demo_key_file(&self) -> PathBuf {
        self.root.join("demo.key")
    }

    /// Where a stream's latest thumbnail is kept.
    pub fn thumbnail_dir(&self, stream: &StreamRef) -> PathBuf {
        self.per_stream("streams", stream).join("thumbnail")
    }

    /// Where a stream's recording files are written.
    pub fn recordings_dir(&self, stream: &StreamRef) -> PathBuf {
        self.per_stream("recordings", stream)
    }

    /// Where a stream's replay clips are written.
    pub fn clips_dir(&self, stream: &StreamRef) -> PathBuf {
        self.per_stream("clips", stream)
    }

    /// The folder of every stream's spilled replay GOPs (cleared at start:
    /// the buffers they belonged to are gone).
    pub fn replay_spill_root(&self) -> PathBuf {
        self.root.join("replay")
    }

    /// Where a stream's replay GOPs are spilled.
    pub fn replay_spill_dir(&self, stream: &StreamRef) -> PathBuf {
        self.per_stream("replay", stream)
    }

    fn per_stream(&self, kind: &str, stream: &StreamRef) -> PathBuf {
        self.root
            .join(kind)
            .join(&stream.organization_id)
            .join(&stream.stream_id)
    }
}

/// Writes a secret to a file only its owner can read, and syncs it.
pub fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{secret}")?;
    file.sync_all()
}
