//! Authentication: turns the `authorization: Bearer <key>` metadata of a
//! request into a [`Principal`]. The admin key is held only as a hash; an
//! organization key is looked up by its hash in the registry. Keys are never
//! logged.

use std::sync::Arc;

use tonic::metadata::MetadataMap;

use crate::error::{Error, Result};
use crate::registry::{secrets, Registry};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The server operator: manages organizations.
    Admin,
    /// An organization: manages its own streams.
    Organization(String),
}

#[derive(Clone)]
pub struct Authenticator {
    registry: Arc<Registry>,
    admin_key_hash: String,
}

/// The key of a `Bearer` authorization header, if present and well formed.
pub fn bearer_key(metadata: &MetadataMap) -> Option<&str> {
    parse_bearer(metadata.get("authorization")?.to_str().ok()?)
}

/// The key of an authorization value `Bearer <key>` (gRPC metadata or an
/// HTTP header), if well formed.
pub fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, key) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = key.trim();
    (!key.is_empty()).then_some(key)
}

impl Authenticator {
    pub fn new(registry: Arc<Registry>, admin_key_hash: String) -> Self {
        Self {
            registry,
            admin_key_hash,
        }
    }

    /// The principal a key belongs to, if any.
    pub async fn principal_for_key(&self, key: &str) -> Result<Option<Principal>> {
        if secrets::hash_key(key) == self.admin_key_hash {
            return Ok(Some(Principal::Admin));
        }
        Ok(self
            .registry
            .organization_for_api_key(key)
            .await?
            .map(Principal::Organization))
    }

    /// The principal of a request; `Unauthenticated` without a valid key.
    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal> {
        let key = bearer_key(metadata).ok_or(Error::Unauthenticated)?;
        self.principal_for_key(key)
            .await?
            .ok_or(Error::Unauthenticated)
    }

    /// Requires the admin key.
    pub async fn require_admin(&self, metadata: &MetadataMap) -> Result<()> {
        match self.authenticate(metadata).await? {
            Principal::Admin => Ok(()),
            Principal::Organization(_) => Err(Error::PermissionDenied("the Organizations service")),
        }
    }

    /// Requires an organization key; returns the organization id.
    pub async fn require_organization(&self, metadata: &MetadataMap) -> Result<String> {
        match self.authenticate(metadata).await? {
            Principal::Organization(id) => Ok(id),
            Principal::Admin => Err(Error::PermissionDenied(
                "the LiveProcessing service (use an organization API key)",
            )),
        }
    }
}
