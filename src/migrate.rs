//! `liveproc migrate`: moves a single-node data dir (its embedded registry
//! and its media files) into PostgreSQL and, when given, object storage.
//!
//! Run it with the server stopped. It is idempotent and resumable: what is
//! already there is skipped (organizations and streams by id, recordings
//! and clips once marked uploaded), and a recording cut off half-way goes
//! on from the last part the registry lists. Each file copied is read
//! back from the store and compared by SHA-256 with the local file; the
//! local files are left as they are. It ends with the counts, and fails
//! when anything did not verify.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::features::recording::RecordingStore;
use crate::objects::ObjectStorage;
use crate::registry::{setting, Page, Registry};
use crate::service::media::Media;
use crate::service::uploads::Uploader;
use crate::store::DataDir;

/// Flags of `liveproc migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The data dir to move (its registry.redb and media files).
    #[arg(long, env = "LIVEPROC_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// The PostgreSQL registry to move it into.
    #[arg(long, env = "LIVEPROC_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The object store for recordings and clips (`s3://bucket/prefix`);
    /// without it the files stay in the data dir.
    #[arg(long, env = "LIVEPROC_OBJECT_STORE")]
    pub object_store: Option<String>,
}

/// What a run found and did.
#[derive(Debug, Default)]
pub struct Report {
    pub organizations: usize,
    pub streams: usize,
    pub recordings: usize,
    pub clips: usize,
    /// Files copied to the store and verified in this run.
    pub files_copied: usize,
    pub bytes_copied: u64,
    /// Files already in the store from an earlier run.
    pub files_already_there: usize,
    /// Files that could not be copied or did not verify.
    pub failures: Vec<String>,
}

/// Pages through a listing.
async fn all<T, F, Fut>(mut page: F) -> crate::error::Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = crate::error::Result<Page<T>>>,
{
    let mut items = vec![];
    let mut token = String::new();
    loop {
        let next = page(token).await?;
        items.extend(next.items);
        if next.next_page_token.is_empty() {
            return Ok(items);
        }
        token = next.next_page_token;
    }
}

/// SHA-256 of all of `media`.
async fn checksum(media: &Media) -> crate::error::Result<String> {
    let mut hash = Sha256::new();
    let mut bytes = media.read(0..media.len).await?;
    while let Some(chunk) = bytes.next().await {
        hash.update(&chunk?);
    }
    Ok(hex::encode(hash.finalize()))
}

/// Moves `args.data_dir` into the database and store.
pub async fn run(args: MigrateArgs) -> anyhow::Result<Report> {
    let data = DataDir::new(&args.data_dir);
    if !data.registry_file().exists() {
        bail!("{} has no registry.redb", args.data_dir.display());
    }
    let source = Registry::open_embedded(&data.registry_file())
        .context("opening the data dir's registry (is a server still running on it?)")?;
    let target = Arc::new(
        Registry::connect_postgres(&args.database_url)
            .await
            .context("opening the PostgreSQL registry")?,
    );
    let objects = match &args.object_store {
        Some(url) => Some(
            ObjectStorage::connect(url)
                .await
                .context("opening the object store")?,
        ),
        None => None,
    };
    let mut report = Report::default();

    if let Some(hash) = source.admin_key_hash().await? {
        target
            .setting_or_insert(setting::ADMIN_KEY_HASH, &hash)
            .await?;
    }
    if let Ok(key) = std::fs::read_to_string(data.url_signing_key_file()) {
        let stored = target
            .setting_or_insert(setting::URL_SIGNING_KEY, key.trim())
            .await?;
        if stored != key.trim() {
            tracing::warn!("the database already has another URL-signing key: URLs signed by this data dir's server will not verify");
        }
    }

    let organizations = all(|token| {
        let source = &source;
        async move { source.list_organizations(&token, 100).await }
    })
    .await?;
    for org in &organizations {
        target.import_organization(org).await?;
        report.organizations += 1;
        let streams = all(|token| {
            let (source, org) = (&source, &org.id);
            async move { source.list_streams(org, &token, 100).await }
        })
        .await?;
        for stream in &streams {
            match target.create_stream(stream, None).await {
                Ok(()) | Err(crate::error::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            report.streams += 1;
        }
    }

    // Recordings and clips of every stream, then their files.
    let recordings_store = Arc::new(RecordingStore::new(
        data.clone(),
        Arc::clone(&target),
        0,
        false,
    ));
    let uploader = objects.as_ref().map(|objects| {
        Uploader::copying(
            Arc::clone(&target),
            objects.clone(),
            Arc::clone(&recordings_store),
        )
    });
    for stream in source.all_streams().await? {
        let recordings = all(|token| {
            let (source, stream) = (&source, &stream);
            async move {
                source
                    .list_recordings(&stream.organization_id, &stream.id, &token, 100)
                    .await
            }
        })
        .await?;
        for record in recordings {
            report.recordings += 1;
            let already = target
                .recording(&record.organization_id, &record.id)
                .await?
                .is_some_and(|r| r.uploaded);
            if already {
                report.files_already_there += 1;
                continue;
            }
            let mut copy = record.clone();
            copy.uploaded = false;
            target.put_recording(&copy, None).await?;
            let (Some(uploader), Some(objects)) = (&uploader, &objects) else {
                continue;
            };
            let local = Media::file(recordings_store.path(&record)).await;
            let Ok(local) = local else {
                report
                    .failures
                    .push(format!("recording {}: its file is missing", record.id));
                continue;
            };
            match uploader.upload_closed(copy).await {
                Ok(true) => {}
                Ok(false) => {
                    report.failures.push(format!(
                        "recording {}: not wholly uploaded (is it still being written?)",
                        record.id
                    ));
                    continue;
                }
                Err(e) => {
                    report
                        .failures
                        .push(format!("recording {}: {e}", record.id));
                    continue;
                }
            }
            let parts = target.recording_parts(&record.id).await?;
            let stored = Media::objects(objects.clone(), record.clone(), parts);
            if stored.len != local.len || checksum(&stored).await? != checksum(&local).await? {
                report.failures.push(format!(
                    "recording {}: the copy in the store differs from the file",
                    record.id
                ));
                continue;
            }
            report.files_copied += 1;
            report.bytes_copied += local.len;
        }

        let clips = all(|token| {
            let (source, stream) = (&source, &stream);
            async move {
                source
                    .list_clips(&stream.organization_id, &stream.id, &token, 100)
                    .await
            }
        })
        .await?;
        for mut clip in clips {
            report.clips += 1;
            let already = target
                .clip(&clip.organization_id, &clip.id)
                .await?
                .is_some_and(|c| c.uploaded);
            if already {
                report.files_already_there += 1;
                continue;
            }
            clip.uploaded = false;
            target.put_clip(&clip, None, None).await?;
            let Some(objects) = &objects else {
                continue;
            };
            let path = data
                .clips_dir(&crate::ids::StreamRef::new(
                    &clip.organization_id,
                    &clip.stream_id,
                ))
                .join(&clip.file_name);
            let Ok(local) = Media::file(path.clone()).await else {
                report
                    .failures
                    .push(format!("clip {}: its file is missing", clip.id));
                continue;
            };
            let key = objects.clip(&clip);
            if let Err(e) = objects.upload_file(&key, &path).await {
                report.failures.push(format!("clip {}: {e}", clip.id));
                continue;
            }
            let stored = Media::pieces(objects.clone(), vec![(key, local.len)]);
            if checksum(&stored).await? != checksum(&local).await? {
                report.failures.push(format!(
                    "clip {}: the copy in the store differs from the file",
                    clip.id
                ));
                continue;
            }
            clip.uploaded = true;
            clip.size_bytes = local.len;
            target.put_clip(&clip, None, None).await?;
            report.files_copied += 1;
            report.bytes_copied += local.len;
        }
    }
    recordings_store
        .catalogue
        .flush(std::time::Duration::from_secs(30))
        .await;
    Ok(report)
}
