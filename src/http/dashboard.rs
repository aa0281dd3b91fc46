//! The dashboard: a web page at `/` where organizations set up live
//! processing and watch, rewind and clip their streams, and the operator
//! manages organizations. Its assets (`dashboard/`, bundled by esbuild
//! with `make dashboard`) are embedded in the binary: nothing is read from
//! disk. The page calls the API over grpc-web and loads media from the
//! routes beside it, on the same address, so it needs no CORS.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /dashboard/app.js`, `app.css` | its script and style |
//! | `GET /dashboard/config.json` | the settings the page shows (the operator's contact) |

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::HttpState;

/// One embedded file.
struct Asset {
    content_type: &'static str,
    body: &'static [u8],
    /// A hash of the content, made on first use.
    tag: OnceLock<String>,
}

impl Asset {
    const fn new(content_type: &'static str, body: &'static [u8]) -> Self {
        Self {
            content_type,
            body,
            tag: OnceLock::new(),
        }
    }

    fn tag(&self) -> &str {
        self.tag
            .get_or_init(|| format!("\"{}\"", hex::encode(&Sha256::digest(self.body)[..12])))
    }

    /// The file, with an `ETag` of its content: a browser asks again each
    /// time (`no-cache`) and gets 304 until the server is upgraded.
    fn serve(&self, headers: &HeaderMap) -> Response {
        let mut response = if super::client_has(headers, self.tag()) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            ([(header::CONTENT_TYPE, self.content_type)], self.body).into_response()
        };
        let out = response.headers_mut();
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        out.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        out.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        out.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if let Ok(tag) = HeaderValue::from_str(self.tag()) {
            out.insert(header::ETAG, tag);
        }
        response
    }
}

static INDEX: Asset = Asset::new(
    "text/html; charset=utf-8",
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboard/dist/index.html"
    )),
);
static SCRIPT: Asset = Asset::new(
    "text/javascript; charset=utf-8",
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboard/dist/app.js"
    )),
);
static STYLE: Asset = Asset::new(
    "text/css; charset=utf-8",
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboard/dist/app.css"
    )),
);

/// What the page may load and from where: only this server (media as
/// `blob:` too, which the player and thumbnails make; hls.js runs its
/// worker from a `blob:`). No framing by other sites.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' blob: data:; \
media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; \
frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move { INDEX.serve(&headers) }),
        )
        .route(
            "/dashboard/app.js",
            get(|headers: HeaderMap| async move { SCRIPT.serve(&headers) }),
        )
        .route(
            "/dashboard/app.css",
            get(|headers: HeaderMap| async move { STYLE.serve(&headers) }),
        )
        .route("/dashboard/config.json", get(config))
}

async fn config(State(state): State<HttpState>) -> Response {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        axum::Json(serde_json::json!({ "operatorContact": &*state.operator_contact })),
    )
        .into_response()
}
