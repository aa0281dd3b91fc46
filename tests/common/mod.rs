//! Test helpers, by concern: [`server`] (the real `liveproc` binary, started
//! on free ports with a temporary data dir), [`grpc`] (clients with API
//! keys, streams, publishers, watchers), [`media`] (real H.264/AAC
//! MPEG-TS made by ffmpeg, published over SRT), [`images`] and [`av`]
//! (outputs checked as a viewer sees them), [`postgres`] (a private
//! PostgreSQL server for the registry's second backend), [`s3`] (a
//! private S3 server for object storage).
//!
//! Each test binary uses a part of them.
#![allow(dead_code)]

use std::time::Duration;

mod av;
mod grpc;
mod images;
mod media;
pub mod postgres;
pub mod s3;
mod server;

#[allow(unused_imports)]
pub use av::*;
#[allow(unused_imports)]
pub use grpc::*;
#[allow(unused_imports)]
pub use images::*;
#[allow(unused_imports)]
pub use media::*;
#[allow(unused_imports)]
pub use server::*;

/// Runs `future` with a deadline; a timeout fails the test with `what`.
pub async fn within<T>(secs: u64, what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs} s waiting for {what}"))
}
