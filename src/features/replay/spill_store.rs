//! Where the older GOPs of an `entire_stream` replay buffer go once they
//! leave memory: one file each under `<data_dir>/replay/<org>/<stream>/`,
//! or, with `--object-store`, one object each under
//! `replay/<node>/<org>/<stream>/<session>/` ([`crate::objects`]), so that
//! a long buffer does not fill the node's disk. A GOP the object store
//! does not take (it is down) goes to the local folder instead; only when
//! both fail is the GOP dropped (the buffer then evicts its oldest media).
//!
//! A new session of a stream clears what the previous one spilled; a
//! deleted stream's spill is cleared, and a node clears all of its own at
//! start. Writing and reading block: they run on blocking threads (the
//! spill task, segment and clip jobs), the object store's futures on the
//! server's runtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use tokio::runtime::Handle;

use super::spill;
use crate::ids::StreamRef;
use crate::media::AccessUnit;
use crate::objects::ObjectStorage;
use crate::store::DataDir;

/// How long a GOP may take to reach the object store before it goes to
/// the local disk instead (the store's client retries for minutes; the
/// GOP stays in memory meanwhile).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long reading a spilled GOP back may take.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// The object store side of spilling.
pub struct Objects {
    storage: ObjectStorage,
    /// This node's id: its spill is kept apart from other nodes'.
    node: String,
    runtime: Handle,
}

/// Where every stream of this node spills.
pub struct SpillStore {
    data: DataDir,
    objects: Option<Arc<Objects>>,
}

/// Where one session of one stream spills.
#[derive(Clone)]
pub struct SessionSpill {
    dir: PathBuf,
    objects: Option<(Arc<Objects>, ObjectPath)>,
}

/// Where a spilled GOP is.
pub enum SpilledAt {
    File(PathBuf),
    Object {
        objects: Arc<Objects>,
        key: ObjectPath,
    },
}

impl SpillStore {
    /// Spilling to the data dir only.
    pub fn local(data: DataDir) -> Self {
        Self {
            data,
            objects: None,
        }
    }

    /// Spilling to `storage` (local folder as the fallback), under `node`.
    /// Called on the runtime that runs the store's requests.
    pub fn with_objects(data: DataDir, storage: ObjectStorage, node: &str) -> Self {
        Self {
            data,
            objects: Some(Arc::new(Objects {
                storage,
                node: node.to_string(),
                runtime: Handle::current(),
            })),
        }
    }

    /// Where a new session of `stream` spills; what its previous session
    /// spilled is removed.
    pub fn session(&self, stream: &StreamRef) -> SessionSpill {
        let dir = self.data.replay_spill_dir(stream);
        let _ = std::fs::remove_dir_all(&dir);
        let objects = self.objects.as_ref().map(|objects| {
            let session = format!("{:013}", crate::media::now_millis());
            let folder = objects
                .storage
                .replay_folder(&objects.node, Some(stream), Some(&session));
            let of_stream = objects
                .storage
                .replay_folder(&objects.node, Some(stream), None);
            objects.clear(of_stream, Some(folder.clone()));
            (Arc::clone(objects), folder)
        });
        SessionSpill { dir, objects }
    }

    /// Removes a deleted stream's spill.
    pub fn forget(&self, stream: &StreamRef) {
        let _ = std::fs::remove_dir_all(self.data.replay_spill_dir(stream));
        if let Some(objects) = &self.objects {
            objects.clear(
                objects
                    .storage
                    .replay_folder(&objects.node, Some(stream), None),
                None,
            );
        }
    }

    /// Removes what an earlier run of this node spilled (the buffers it
    /// belonged to are gone).
    pub fn clear_all(&self) {
        let _ = std::fs::remove_dir_all(self.data.replay_spill_root());
        if let Some(objects) = &self.objects {
            objects.clear(
                objects.storage.replay_folder(&objects.node, None, None),
                None,
            );
        }
    }
}

impl Objects {
    /// Deletes `folder` (but `keep`) in the background.
    fn clear(&self, folder: ObjectPath, keep: Option<ObjectPath>) {
        let storage = self.storage.clone();
        self.runtime.spawn(async move {
            match storage.delete_folder(&folder, keep.as_ref()).await {
                Ok(0) => {}
                Ok(deleted) => tracing::debug!(%folder, deleted, "replay: spilled media removed"),
                Err(e) => {
                    tracing::warn!(%folder, error = %e, "replay: cannot remove spilled media")
                }
            }
        });
    }
}

impl SessionSpill {
    /// Spilling to a folder only (tests).
    #[cfg(test)]
    pub fn in_folder(dir: PathBuf) -> Self {
        Self { dir, objects: None }
    }

    /// Writes a GOP's units (blocking): to the object store, else to the
    /// local folder.
    pub fn write(&self, sequence: u64, units: &[AccessUnit]) -> std::io::Result<SpilledAt> {
        if let Some((objects, folder)) = &self.objects {
            let key = ObjectStorage::replay_gop(folder, sequence);
            let bytes = bytes::Bytes::from(spill::encode(units));
            // The timer is made inside: it needs the runtime's context.
            let put = async {
                tokio::time::timeout(WRITE_TIMEOUT, objects.storage.put(&key, bytes)).await
            };
            match objects.runtime.block_on(put) {
                Ok(Ok(())) => {
                    return Ok(SpilledAt::Object {
                        objects: Arc::clone(objects),
                        key,
                    })
                }
                Ok(Err(e)) => {
                    tracing::warn!(%key, error = %e, "replay: the object store refused a GOP; spilled to the local disk")
                }
                Err(_) => {
                    tracing::warn!(%key, "replay: the object store did not take a GOP in time; spilled to the local disk")
                }
            }
        }
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{sequence:010}.gop"));
        spill::write(&path, units)?;
        Ok(SpilledAt::File(path))
    }
}

impl std::fmt::Debug for SpilledAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpilledAt::File(path) => write!(f, "{}", path.display()),
            SpilledAt::Object { key, .. } => write!(f, "{key}"),
        }
    }
}

impl SpilledAt {
    /// The GOP's units, read back (blocking).
    pub fn read(&self) -> std::io::Result<Vec<AccessUnit>> {
        match self {
            SpilledAt::File(path) => spill::read(path),
            SpilledAt::Object { objects, key } => {
                let get =
                    async { tokio::time::timeout(READ_TIMEOUT, objects.storage.get(key)).await };
                let bytes = objects
                    .runtime
                    .block_on(get)
                    .map_err(|_| {
                        std::io::Error::other(format!("object store: reading {key} timed out"))
                    })?
                    .map_err(std::io::Error::other)?;
                spill::decode(bytes)
            }
        }
    }
}
