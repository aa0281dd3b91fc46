//! HTTP errors: the crate's [`Error`] (and refused credentials) as a status
//! code and a small JSON body, `{"error": {"code": 404, "message": ...}}`.
//! Another organization's resource answers exactly like a missing one.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::url_signing::TokenError;

#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
}

impl From<Error> for HttpError {
    fn from(error: Error) -> Self {
        let status = match &error {
            Error::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            Error::NotFound { .. } | Error::NotLive { .. } => StatusCode::NOT_FOUND,
            Error::AlreadyExists { .. }
            | Error::PublisherActive { .. }
            | Error::TakenOver { .. }
            | Error::Fenced { .. } => StatusCode::CONFLICT,
            Error::UpgradeNeeded { .. } | Error::PermissionDenied(_) => StatusCode::FORBIDDEN,
            Error::Unauthenticated | Error::KeyRotated { .. } => StatusCode::UNAUTHORIZED,
            Error::InvalidMedia { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::StorageUnavailable(_)
            | Error::ShuttingDown
            | Error::NodeFull { .. }
            | Error::NodeOverloaded { .. }
            | Error::Shed { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Storage(_) | Error::Media(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %error, "HTTP request failed");
        }
        Self::new(
            status,
            crate::error::bounded(&error.to_string(), crate::error::MAX_MESSAGE_LEN),
        )
    }
}

impl From<TokenError> for HttpError {
    fn from(error: TokenError) -> Self {
        let status = match error {
            TokenError::Expired => StatusCode::UNAUTHORIZED,
            TokenError::Malformed | TokenError::BadSignature => StatusCode::FORBIDDEN,
        };
        Self::new(status, error.to_string())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.status.as_u16(), "message": self.message }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"liveproc\""),
            );
        }
        // Every 503 is "not now": players (hls.js) and clients retry it.
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

pub type HttpResult<T> = Result<T, HttpError>;
