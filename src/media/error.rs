//! What goes wrong with media, typed: the one error of the media layers
//! (container writers, GStreamer jobs, the per-stream pipeline, feature
//! files). The API maps it once (`From<MediaError> for crate::error::Error`).

use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// A GStreamer element is not installed.
    #[error("GStreamer element {0} is missing (its plugin package is not installed)")]
    MissingElement(String),
    /// A GStreamer pipeline could not be built, or an element failed; the
    /// message names the element and why.
    #[error("{0}")]
    Pipeline(String),
    /// The media is not what this writer or job can use.
    #[error("{0}")]
    Unsupported(String),
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The disk is (nearly) full: no new file is started.
    #[error("{0}")]
    DiskFull(String),
    /// A file is not what it should be (a recording being repaired).
    #[error("{0}")]
    Malformed(String),
    /// A job did not finish in time.
    #[error("media job timed out")]
    TimedOut,
}

pub type MediaResult<T> = Result<T, MediaError>;

impl MediaError {
    /// Wraps an I/O error with what was being done (`map_err(MediaError::io("…"))`).
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| MediaError::Io { context, source }
    }

    /// A pipeline failure described by `e`.
    pub fn pipeline(e: impl Display) -> Self {
        MediaError::Pipeline(e.to_string())
    }

    /// Whether the disk is full (or under the free-space floor).
    pub fn is_disk_full(&self) -> bool {
        match self {
            MediaError::DiskFull(_) => true,
            MediaError::Io { source, .. } => is_disk_full(source),
            _ => false,
        }
    }
}

/// Whether an I/O error means the disk (or the user's quota) is full.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
}

impl From<std::io::Error> for MediaError {
    fn from(source: std::io::Error) -> Self {
        MediaError::Io {
            context: "I/O".into(),
            source,
        }
    }
}
