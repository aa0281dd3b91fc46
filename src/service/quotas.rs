//! Organizations' quotas on this node: the limits the media path enforces
//! itself ([`crate::features::usage`]) kept current from the registry,
//! and each organization's usage as the API reports it. Streams and live
//! sessions are checked against the registry where they start (creation,
//! session claim); stored bytes and replay memory here.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::features::usage::UsageLedger;
use crate::proto::v1 as pb;
use crate::registry::{OrganizationRecord, Quotas, Registry};

/// How often limits and catalogued bytes are re-read: how long a quota
/// set on another node, or space freed by a deletion, takes to apply.
pub const REFRESH: Duration = Duration::from_secs(5);

/// Applies the organization's limits here and re-counts its stored bytes
/// (only when they are limited: the count is a registry query).
pub async fn refresh(
    registry: &Registry,
    ledger: &UsageLedger,
    org: &OrganizationRecord,
) -> Result<()> {
    let usage = ledger.of(&org.id);
    usage.set_limits(&org.quotas);
    if org.quotas.stored_bytes > 0 {
        usage.set_catalogued(registry.stored_bytes(&org.id).await?);
    }
    Ok(())
}

/// Refreshes every organization this node has streams of, every
/// [`REFRESH`], until `shutdown`.
pub async fn run(registry: Arc<Registry>, ledger: Arc<UsageLedger>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(REFRESH);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        for usage in ledger.organizations() {
            let refreshed = match registry.organization(usage.organization_id()).await {
                Ok(Some(org)) => refresh(&registry, &ledger, &org).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = refreshed {
                tracing::warn!(organization = %usage.organization_id(), error = %e, "quota usage not refreshed");
                break;
            }
        }
    }
}

/// The organization's quotas as the API shows them.
pub fn to_api(quotas: &Quotas) -> pb::Quotas {
    pb::Quotas {
        streams: quotas.streams,
        live_sessions: quotas.live_sessions,
        stored_bytes: quotas.stored_bytes,
        replay_memory_bytes: quotas.replay_memory_bytes,
    }
}

pub fn from_api(quotas: &pb::Quotas) -> Quotas {
    Quotas {
        streams: quotas.streams,
        live_sessions: quotas.live_sessions,
        stored_bytes: quotas.stored_bytes,
        replay_memory_bytes: quotas.replay_memory_bytes,
    }
}

/// What the organization uses of each quota now: streams, live sessions
/// and stored bytes over every node; replay memory on this node.
pub async fn usage(
    registry: &Registry,
    ledger: &UsageLedger,
    org: &OrganizationRecord,
) -> Result<pb::OrganizationUsage> {
    let here = ledger.of(&org.id);
    let (streams, live_sessions, catalogued) = tokio::try_join!(
        registry.stream_count(&org.id),
        registry.live_sessions(&org.id, ""),
        registry.stored_bytes(&org.id),
    )?;
    here.set_catalogued(catalogued);
    Ok(pb::OrganizationUsage {
        organization_id: org.id.clone(),
        quotas: Some(to_api(&org.quotas)),
        usage: Some(pb::Usage {
            streams,
            live_sessions,
            stored_bytes: here.stored_bytes(),
            replay_memory_bytes: here.replay_bytes(),
        }),
    })
}
