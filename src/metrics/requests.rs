//! Counting the requests served: HTTP by route (the route's pattern, not
//! the path, so ids do not make new series) and status; gRPC by method
//! and the code it ended with, read from the response's trailers (or its
//! headers, for an answer with no message), `Cancelled` when the caller
//! went away first.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::{get, GrpcLabels, HttpLabels};

/// Route middleware of the HTTP routes (`route_layer`, where the
/// matched route is known).
pub async fn count_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let response = next.run(request).await;
    count_http_status(route, response.status().as_u16());
    response
}

/// Counts an HTTP answer of `route` (also for answers outside routes).
pub fn count_http_status(route: String, status: u16) {
    get()
        .http_requests
        .get_or_create(&HttpLabels { route, status })
        .inc();
}

/// Middleware of the gRPC services.
pub async fn count_grpc(request: Request, next: Next) -> Response {
    let method = request.uri().path().to_string();
    let response = next.run(request).await;
    if let Some(code) = grpc_code(response.headers()) {
        count_grpc_code(method, code);
        return response;
    }
    response.map(|body| {
        Body::new(Watched {
            inner: body,
            method: Some(method),
        })
    })
}

fn count_grpc_code(method: String, code: tonic::Code) {
    get()
        .grpc_requests
        .get_or_create(&GrpcLabels {
            method,
            code: format!("{code:?}"),
        })
        .inc();
}

fn grpc_code(headers: &axum::http::HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(tonic::Code::from_i32(value.parse().ok()?))
}

/// A gRPC response body that counts its call when its trailers pass, or
/// when it is dropped unfinished.
struct Watched {
    inner: Body,
    /// Taken once the call is counted.
    method: Option<String>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_code) {
                    if let Some(method) = self.method.take() {
                        count_grpc_code(method, code);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(method) = self.method.take() {
                    count_grpc_code(method, tonic::Code::Internal);
                }
            }
            Poll::Ready(None) => {
                if let Some(method) = self.method.take() {
                    count_grpc_code(method, tonic::Code::Unknown);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(method) = self.method.take() {
            count_grpc_code(method, tonic::Code::Cancelled);
        }
    }
}
