//! Who is asking over HTTP: an organization, by its API key in
//! `Authorization: Bearer <key>`, or by a signed URL's `token` query
//! parameter (made by `SignUrl`) for exactly the path requested. No
//! credentials, an unknown key or an expired token → 401; a tampered
//! token or the admin key → 403. Keys and tokens are never logged.

use axum::http::{header, HeaderMap, StatusCode};

use super::error::{HttpError, HttpResult};
use super::HttpState;
use crate::auth::Principal;
use crate::media::now_millis;
use crate::url_signing::{Signer, TokenError, UrlSigner};

/// How a request was allowed in (it decides whether a response may be
/// cached publicly, and whether the URLs in a playlist need tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API key in a header: URLs it reaches need the same header.
    ApiKey,
    /// A signed URL valid until this Unix time (s), signed with the
    /// organization's key of this generation.
    Token { expires: i64, generation: u32 },
}

/// An organization allowed to read one path.
#[derive(Debug, Clone)]
pub struct Access {
    pub organization_id: String,
    pub credential: Credential,
}

/// The `token` of a query string, if any.
pub fn token_of(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
}

/// Checks a request's credentials for `path`.
pub async fn check(
    state: &HttpState,
    headers: &HeaderMap,
    path: &str,
    query: Option<&str>,
) -> HttpResult<Access> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let key = value
            .to_str()
            .ok()
            .and_then(crate::auth::parse_bearer)
            .ok_or_else(|| {
                HttpError::new(
                    StatusCode::UNAUTHORIZED,
                    "Authorization must be Bearer <API key>",
                )
            })?;
        return match state.services.auth.principal_for_key(key).await? {
            Some(Principal::Organization(organization_id)) => Ok(Access {
                organization_id,
                credential: Credential::ApiKey,
            }),
            Some(Principal::Admin) => Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "media URLs need an organization API key, not the admin key",
            )),
            None => Err(HttpError::new(StatusCode::UNAUTHORIZED, "unknown API key")),
        };
    }
    if let Some(token) = token_of(query) {
        // The organization's current key: a token signed before its last
        // rotation no longer matches, nor one of an organization gone.
        let organization = UrlSigner::organization_of(&token)?;
        let generation = state
            .services
            .registry
            .organization(organization)
            .await?
            .ok_or(TokenError::BadSignature)?
            .url_signing_generation;
        let (organization_id, expires) =
            state
                .services
                .signer
                .verify(&token, path, now_millis() / 1000, generation)?;
        return Ok(Access {
            organization_id,
            credential: Credential::Token {
                expires,
                generation,
            },
        });
    }
    Err(HttpError::new(
        StatusCode::UNAUTHORIZED,
        "send Authorization: Bearer <API key>, or use a signed URL (SignUrl)",
    ))
}

impl Access {
    /// `url` (a path of this server) as the client should fetch it: with
    /// a token of the same expiry when this request came with a token.
    pub fn link(&self, state: &HttpState, path: &str) -> String {
        match self.credential {
            Credential::ApiKey => path.to_string(),
            Credential::Token {
                expires,
                generation,
            } => {
                let signer = Signer {
                    organization: &self.organization_id,
                    generation,
                };
                format!(
                    "{path}?token={}",
                    state.services.signer.sign(&signer, path, expires)
                )
            }
        }
    }

    /// `Cache-Control` for what this access may see: shared caches may
    /// keep what a signed URL fetched (the URL is the credential), not
    /// what a header key fetched.
    pub fn cache_control(&self, max_age_seconds: u32) -> String {
        let scope = match self.credential {
            Credential::ApiKey => "private",
            Credential::Token { .. } => "public",
        };
        format!("{scope}, max-age={max_age_seconds}")
    }
}
