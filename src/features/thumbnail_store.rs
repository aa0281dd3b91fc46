//! On-disk copy of each stream's latest thumbnail, so that it survives a
//! restart: `latest.pb` in the stream's thumbnail folder ([`DataDir`]; the
//! whole `Thumbnail` message) beside `latest.<jpg|png|webp>` (the image, for
//! people and static file servers). Written to a temporary file and renamed,
//! so a crash leaves the previous thumbnail, never a torn one.

use std::path::{Path, PathBuf};

use prost::Message;

use crate::ids::StreamRef;
use crate::options::ImageFormat;
use crate::proto::v1 as pb;
use crate::store::DataDir;

pub struct ThumbnailStore {
    data: DataDir,
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

impl ThumbnailStore {
    pub fn new(data: DataDir) -> Self {
        Self { data }
    }

    fn dir(&self, stream: &StreamRef) -> PathBuf {
        self.data.thumbnail_dir(stream)
    }

    pub fn save(&self, stream: &StreamRef, thumbnail: &pb::Thumbnail) -> std::io::Result<()> {
        let dir = self.dir(stream);
        std::fs::create_dir_all(&dir)?;
        let format = ImageFormat::from_proto(thumbnail.format());
        write_atomically(
            &dir.join(format!("latest.{}", format.extension())),
            &thumbnail.data,
        )?;
        write_atomically(&dir.join("latest.pb"), &thumbnail.encode_to_vec())
    }

    pub fn load(&self, stream: &StreamRef) -> Option<pb::Thumbnail> {
        let bytes = std::fs::read(self.dir(stream).join("latest.pb")).ok()?;
        pb::Thumbnail::decode(bytes.as_slice()).ok()
    }

    /// Removes the thumbnail of a deleted stream.
    pub fn remove(&self, stream: &StreamRef) {
        let _ = std::fs::remove_dir_all(self.dir(stream));
    }
}
