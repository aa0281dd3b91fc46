//! `liveproc.v1.Organizations`: the operator's service (admin key) to
//! create organizations, grant packages and rotate API keys; an
//! organization may read its own record (`GetOrganization`).

use tonic::{Request, Response, Status};

use super::Services;
use crate::auth::Principal;
use crate::error::Error;
use crate::proto::v1 as pb;
use crate::proto::v1::organizations_server::Organizations;
use crate::registry::OrganizationRecord;
use crate::service::audit::{self, action, Actor};
use crate::service::{convert, quotas};
use crate::validate;
use serde_json::json;

pub struct OrganizationsService {
    state: Services,
}

impl OrganizationsService {
    pub fn new(state: Services) -> Self {
        Self { state }
    }

    /// The organization `id`; `NOT_FOUND` when there is none.
    async fn organization_record(&self, id: &str) -> crate::error::Result<OrganizationRecord> {
        self.state
            .registry
            .organization(id)
            .await?
            .ok_or_else(|| Error::organization_not_found(id))
    }

    /// Records a change to the organization `org_id` itself.
    async fn audit(&self, actor: &Actor, org_id: &str, action: &str, details: serde_json::Value) {
        let resource = format!("organizations/{org_id}");
        audit::record(
            &self.state.registry,
            actor,
            org_id,
            action,
            resource,
            details,
        )
        .await;
    }
}

#[tonic::async_trait]
impl Organizations for OrganizationsService {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        self.state.auth.require_admin(request.metadata()).await?;
        let actor = Actor::new(&Principal::Admin, request.remote_addr());
        let req = request.into_inner();
        validate::required("name", req.name.trim())?;
        validate::name("name", &req.name)?;
        let (org, key) = self
            .state
            .registry
            .create_organization(req.name.trim(), req.live_processing)
            .await?;
        tracing::info!(organization = %org.id, live_processing = org.live_processing, "organization created");
        self.audit(
            &actor,
            &org.id,
            action::ORGANIZATION_CREATE,
            json!({"name": org.name, "live_processing": org.live_processing}),
        )
        .await;
        Ok(Response::new(convert::organization(&org, Some(key))))
    }

    /// The admin key reads any organization; an organization's key reads
    /// its own (with `id` empty or its id; any other is "not found").
    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        let principal = self.state.auth.authenticate(request.metadata()).await?;
        let id = organization_asked(principal, "id", request.into_inner().id)?;
        let org = self.organization_record(&id).await?;
        Ok(Response::new(convert::organization(&org, None)))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        self.state.auth.require_admin(request.metadata()).await?;
        let req = request.into_inner();
        let page_size = validate::page_size("page_size", req.page_size)?;
        let page = self
            .state
            .registry
            .list_organizations(&req.page_token, page_size)
            .await?;
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: page
                .items
                .iter()
                .map(|o| convert::organization(o, None))
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn set_packages(
        &self,
        request: Request<pb::SetPackagesRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        self.state.auth.require_admin(request.metadata()).await?;
        let actor = Actor::new(&Principal::Admin, request.remote_addr());
        let req = request.into_inner();
        validate::id("organization_id", &req.organization_id)?;
        let org = self
            .state
            .registry
            .set_live_processing(&req.organization_id, req.live_processing)
            .await?;
        tracing::info!(organization = %org.id, live_processing = org.live_processing, "packages set");
        self.audit(
            &actor,
            &org.id,
            action::PACKAGES_SET,
            json!({"live_processing": org.live_processing}),
        )
        .await;
        Ok(Response::new(convert::organization(&org, None)))
    }

    async fn revoke_signed_urls(
        &self,
        request: Request<pb::RevokeSignedUrlsRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        let principal = self.state.auth.authenticate(request.metadata()).await?;
        let actor = Actor::new(&principal, request.remote_addr());
        let id = organization_asked(
            principal,
            "organization_id",
            request.into_inner().organization_id,
        )?;
        let org = self.state.registry.rotate_url_signing(&id).await?;
        tracing::info!(organization = %org.id, "signed URLs revoked");
        self.audit(
            &actor,
            &org.id,
            action::SIGNED_URLS_REVOKE,
            json!({"url_signing_generation": org.url_signing_generation}),
        )
        .await;
        Ok(Response::new(convert::organization(&org, None)))
    }

    async fn rotate_api_key(
        &self,
        request: Request<pb::RotateApiKeyRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        self.state.auth.require_admin(request.metadata()).await?;
        let actor = Actor::new(&Principal::Admin, request.remote_addr());
        let req = request.into_inner();
        validate::id("organization_id", &req.organization_id)?;
        let (org, key) = self
            .state
            .registry
            .rotate_api_key(&req.organization_id)
            .await?;
        tracing::info!(organization = %org.id, "API key rotated");
        self.audit(
            &actor,
            &org.id,
            action::API_KEY_ROTATE,
            serde_json::Value::Null,
        )
        .await;
        Ok(Response::new(convert::organization(&org, Some(key))))
    }

    async fn set_quotas(
        &self,
        request: Request<pb::SetQuotasRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        self.state.auth.require_admin(request.metadata()).await?;
        let actor = Actor::new(&Principal::Admin, request.remote_addr());
        let req = request.into_inner();
        validate::id("organization_id", &req.organization_id)?;
        let quotas = quotas::from_api(&req.quotas.unwrap_or_default());
        let org = self
            .state
            .registry
            .set_quotas(&req.organization_id, &quotas)
            .await?;
        // At once here; other nodes at their next refresh.
        quotas::refresh(&self.state.registry, self.state.features.usage(), &org).await?;
        tracing::info!(organization = %org.id, ?quotas, "quotas set");
        self.audit(&actor, &org.id, action::QUOTAS_SET, json!(quotas))
            .await;
        Ok(Response::new(convert::organization(&org, None)))
    }

    async fn get_usage(
        &self,
        request: Request<pb::GetUsageRequest>,
    ) -> Result<Response<pb::OrganizationUsage>, Status> {
        let principal = self.state.auth.authenticate(request.metadata()).await?;
        let id = organization_asked(
            principal,
            "organization_id",
            request.into_inner().organization_id,
        )?;
        let org = self.organization_record(&id).await?;
        let usage = quotas::usage(&self.state.registry, self.state.features.usage(), &org).await?;
        Ok(Response::new(usage))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let principal = self.state.auth.authenticate(request.metadata()).await?;
        let req = request.into_inner();
        let page_size = validate::page_size("page_size", req.page_size)?;
        if !req.page_token.is_empty() {
            validate::id("page_token", &req.page_token)?;
        }
        let organization = match principal {
            Principal::Admin if req.organization_id.is_empty() => None,
            principal => Some(organization_asked(
                principal,
                "organization_id",
                req.organization_id,
            )?),
        };
        let page = self
            .state
            .registry
            .list_audit_events(organization.as_deref(), &req.page_token, page_size)
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: page.items.iter().map(audit::to_api).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

/// The organization a call that an organization may make for itself is
/// about: with the admin key, the one named in `field` (`id`); with an
/// organization's key, its own (`id` empty or its own; another one is
/// `NOT_FOUND`, as if it did not exist).
fn organization_asked(
    principal: Principal,
    field: &str,
    id: String,
) -> crate::error::Result<String> {
    match principal {
        Principal::Admin => {
            validate::id(field, &id)?;
            Ok(id)
        }
        Principal::Organization(own) if id.is_empty() || id == own => Ok(own),
        Principal::Organization(_) => {
            validate::id(field, &id)?;
            Err(Error::organization_not_found(&id))
        }
    }
}
