//! The admin key: from `LIVEPROC_ADMIN_KEY` when set (its hash is stored so
//! that the key the server accepts is the one it was last started with), or
//! generated on first start, printed once, and kept in `admin.key` (mode
//! 0600) in the data dir. Only its hash is kept in memory and the registry.

use anyhow::Context;

use crate::config::Config;
use crate::registry::{secrets, Registry};
use crate::store::{write_secret, DataDir};

/// Returns the hash of the admin key to accept.
pub async fn resolve(
    registry: &Registry,
    config: &Config,
    data: &DataDir,
) -> anyhow::Result<String> {
    if let Some(key) = &config.admin_key {
        let hash = secrets::hash_key(key);
        registry.set_admin_key_hash(&hash).await?;
        return Ok(hash);
    }
    if let Some(hash) = registry.admin_key_hash().await? {
        return Ok(hash);
    }
    let key = secrets::new_admin_key();
    let path = data.admin_key_file();
    write_secret(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    let hash = secrets::hash_key(&key);
    registry.set_admin_key_hash(&hash).await?;
    println!(
        "liveproc: generated admin key (shown once, also saved in {}):",
        path.display()
    );
    println!("  {key}");
    Ok(hash)
}
