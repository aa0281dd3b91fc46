//! Object storage: where recordings and replay clips live when
//! `--object-store s3://bucket/prefix` is set, so that they outlive the
//! machine that made them. Any S3-compatible store, through the
//! `object_store` crate; the endpoint, region and credentials come from
//! the standard `AWS_*` variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`).
//!
//! Layout under the prefix (every key is a leaf: no key is also the
//! "folder" of another):
//!
//! ```text
//! recordings/<org>/<stream>/<recording>/init.mp4       ftyp + moov
//! recordings/<org>/<stream>/<recording>/<seq>.m4s      one fragment each (seq from 1)
//! clips/<org>/<stream>/<clip>.mp4                      a replay clip
//! replay/<node>/<org>/<stream>/<session>/<seq>.gop      replay media spilled from memory
//! ```
//!
//! Recordings and clips are indexed in the registry (`RecordingPart`,
//! `uploaded`), never found by listing the bucket. Spilled replay media
//! is a node's scratch space, indexed in its memory only: the node
//! deletes a session's objects when the next one starts, and all of its
//! own at start.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Error, Result};
use crate::registry::{ClipRecord, RecordingRecord};

/// Marks a check error where the store answered and refused.
const REFUSED: &str = ", refused";

/// A bucket and prefix in S3-compatible storage.
#[derive(Clone)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// `s3://bucket/prefix`, for logs.
    name: String,
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// The crate's error for an object store error: the store being
/// unreachable or failing may pass; a missing object is not found.
fn storage_error(what: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound {
            kind: "object",
            name: what.to_string(),
        },
        e => Error::StorageUnavailable(format!("object storage, {what}: {e}")),
    }
}

/// Whether requests go over HTTPS (AWS itself when no endpoint is set).
/// Then TLS protects each part's bytes, and SigV4 need not hash them too
/// (`UNSIGNED-PAYLOAD`, as AWS allows over HTTPS): that hash was 7 % of
/// the server's CPU with 8 recordings uploading. Over plain HTTP the
/// parts stay signed. `AWS_UNSIGNED_PAYLOAD` decides when set.
fn body_protected_by_tls(builder: &object_store::aws::AmazonS3Builder) -> bool {
    use object_store::aws::AmazonS3ConfigKey;
    builder
        .get_config_value(&AmazonS3ConfigKey::Endpoint)
        .is_none_or(|endpoint| endpoint.to_ascii_lowercase().starts_with("https://"))
}

impl ObjectStorage {
    /// Opens `url` (`s3://bucket/prefix`) with the settings of the `AWS_*`
    /// variables, and checks that it can write, read and delete there,
    /// so that a wrong bucket or wrong credentials stop the server at
    /// start rather than at the first recording.
    pub async fn connect(url: &str) -> Result<Self> {
        // reqwest takes TLS from rustls' process-wide provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::invalid("object_store", format!("not a URL: {e}")))?;
        if parsed.scheme() != "s3" {
            return Err(Error::invalid(
                "object_store",
                "only s3://bucket/prefix URLs are supported",
            ));
        }
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Error::invalid("object_store", "the URL names no bucket"))?;
        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        if std::env::var_os("AWS_UNSIGNED_PAYLOAD").is_none() {
            let unsigned = body_protected_by_tls(&builder);
            builder = builder.with_unsigned_payload(unsigned);
        }
        let store = builder
            .build()
            .map_err(|e| Error::invalid("object_store", e.to_string()))?;
        let prefix = ObjectPath::from(parsed.path().trim_matches('/'));
        let storage = Self {
            store: Arc::new(store),
            name: format!("s3://{bucket}/{prefix}"),
            prefix,
        };
        storage.check().await?;
        Ok(storage)
    }

    /// Writes, reads back and deletes a small object. The store refusing
    /// (credentials, a bucket that is not there or not ours) is an error;
    /// the store not answering is not: the server starts, recordings wait
    /// in the local spool, and the health check says so.
    async fn check(&self) -> Result<()> {
        match self.try_check().await {
            Err(Error::StorageUnavailable(reason)) if !reason.contains(REFUSED) => {
                tracing::error!(store = %self.name, %reason, "object storage does not answer now; recordings wait in the local spool");
                Ok(())
            }
            checked => checked,
        }
    }

    async fn try_check(&self) -> Result<()> {
        let key = self.key(&format!(
            "liveproc-check/{}",
            crate::registry::secrets::new_stream_key()
        ));
        let probe = Bytes::from_static(b"liveproc storage check");
        let failed = |step: &str, e: object_store::Error| {
            let refused = matches!(
                e,
                object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::NotFound { .. }
            );
            Error::StorageUnavailable(format!(
                "object storage {}: cannot {step}{} (check the bucket, AWS_ENDPOINT_URL and the credentials): {e}",
                self.name,
                if refused { REFUSED } else { "" },
            ))
        };
        self.store
            .put(&key, PutPayload::from(probe.clone()))
            .await
            .map_err(|e| failed("write", e))?;
        let read = self
            .store
            .get(&key)
            .await
            .map_err(|e| failed("read", e))?
            .bytes()
            .await
            .map_err(|e| failed("read", e))?;
        if read != probe {
            return Err(Error::Storage(format!(
                "object storage {}: read back other bytes than were written",
                self.name
            )));
        }
        self.store
            .delete(&key)
            .await
            .map_err(|e| failed("delete", e))?;
        Ok(())
    }

    /// `s3://bucket/prefix`.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn key(&self, relative: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/{relative}", self.prefix).trim_start_matches('/'))
    }

    /// The object of a recording's part: its init segment (`seq` 0) or a
    /// fragment.
    pub fn recording_part(&self, record: &RecordingRecord, seq: u32) -> ObjectPath {
        let name = match seq {
            0 => "init.mp4".to_string(),
            n => format!("{n:08}.m4s"),
        };
        self.key(&format!(
            "recordings/{}/{}/{}/{name}",
            record.organization_id, record.stream_id, record.id
        ))
    }

    /// The object of a replay clip.
    pub fn clip(&self, clip: &ClipRecord) -> ObjectPath {
        self.key(&format!(
            "clips/{}/{}/{}.mp4",
            clip.organization_id, clip.stream_id, clip.id
        ))
    }

    /// The folder of a node's spilled replay media: all of it, or one
    /// stream's, or one session's of a stream.
    pub fn replay_folder(
        &self,
        node: &str,
        stream: Option<&crate::ids::StreamRef>,
        session: Option<&str>,
    ) -> ObjectPath {
        let mut relative = format!("replay/{node}");
        if let Some(stream) = stream {
            relative += &format!("/{}/{}", stream.organization_id, stream.stream_id);
            if let Some(session) = session {
                relative += &format!("/{session}");
            }
        }
        self.key(&relative)
    }

    /// A spilled replay GOP in a session's folder.
    pub fn replay_gop(folder: &ObjectPath, sequence: u64) -> ObjectPath {
        folder.clone().join(format!("{sequence:010}.gop"))
    }

    /// Deletes every object under `folder`, except those under `keep`;
    /// returns how many were deleted.
    pub async fn delete_folder(
        &self,
        folder: &ObjectPath,
        keep: Option<&ObjectPath>,
    ) -> Result<usize> {
        let what = folder.to_string();
        let keys: Vec<ObjectPath> = self
            .store
            .list(Some(folder))
            .map_ok(|meta| meta.location)
            .try_filter(|key| {
                let kept = keep.is_some_and(|keep| key.prefix_matches(keep));
                std::future::ready(!kept)
            })
            .try_collect()
            .await
            .map_err(|e| storage_error(&what, e))?;
        let count = keys.len();
        let deleted: Vec<ObjectPath> = self
            .store
            .delete_stream(futures::stream::iter(keys.into_iter().map(Ok)).boxed())
            .try_collect()
            .await
            .map_err(|e| storage_error(&what, e))?;
        debug_assert!(deleted.len() <= count);
        Ok(count)
    }

    /// A whole (small) object.
    pub async fn get(&self, key: &ObjectPath) -> Result<Bytes> {
        let what = key.to_string();
        self.store
            .get(key)
            .await
            .map_err(|e| storage_error(&what, e))?
            .bytes()
            .await
            .map_err(|e| storage_error(&what, e))
    }

    pub async fn put(&self, key: &ObjectPath, data: Bytes) -> Result<()> {
        self.store
            .put(key, PutPayload::from(data))
            .await
            .map(|_| ())
            .map_err(|e| storage_error(key.as_ref(), e))
    }

    /// Copies a local file to `key`, in parts when it is large (never
    /// held whole in memory).
    pub async fn upload_file(&self, key: &ObjectPath, path: &std::path::Path) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::Storage(format!("opening {}: {e}", path.display())))?;
        let mut writer =
            object_store::buffered::BufWriter::new(Arc::clone(&self.store), key.clone());
        let copied = async {
            tokio::io::copy(&mut file, &mut writer).await?;
            writer.shutdown().await
        }
        .await;
        if let Err(e) = copied {
            let _ = writer.abort().await;
            return Err(Error::StorageUnavailable(format!(
                "object storage, {key}: {e}"
            )));
        }
        Ok(())
    }

    pub async fn delete(&self, key: &ObjectPath) -> Result<()> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error(key.as_ref(), e)),
        }
    }

    /// The bytes `range` of an object, as the store sends them.
    pub async fn read(
        &self,
        key: &ObjectPath,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..Default::default()
        };
        let what = key.to_string();
        let result = self
            .store
            .get_opts(key, options)
            .await
            .map_err(|e| storage_error(&what, e))?;
        Ok(result
            .into_stream()
            .map(move |chunk| chunk.map_err(|e| storage_error(&what, e)))
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::aws::AmazonS3Builder;

    #[test]
    fn parts_go_unsigned_only_over_https() {
        let over = |endpoint: Option<&str>| {
            let builder = AmazonS3Builder::new();
            let builder = match endpoint {
                Some(e) => builder.with_endpoint(e),
                None => builder,
            };
            body_protected_by_tls(&builder)
        };
        assert!(over(None), "AWS itself is HTTPS");
        assert!(over(Some("https://s3.example.net")));
        assert!(over(Some("HTTPS://s3.example.net")));
        assert!(!over(Some("http://127.0.0.1:9000")));
    }
}
