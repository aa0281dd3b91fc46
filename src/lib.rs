//! liveproc: a live video processing server.
//!
//! Broadcasters publish live streams (SRT, gRPC `PushMedia`, or a URI the
//! server pulls). Each live stream gets one GStreamer pipeline that demuxes
//! and parses the media once and fans the encoded access units out to the
//! processing features. The gRPC API (`liveproc.v1`) manages organizations,
//! streams and their processing options.
//!
//! Module map:
//! - [`config`]: settings from flags, `LIVEPROC_*` env vars and a TOML file.
//! - [`proto`]: generated API types.
//! - [`error`]: the crate's error type, mapped once to `tonic::Status`.
//! - [`validate`]: processing option ranges, in one place.
//! - [`registry`]: organizations, API keys and streams in a durable store.
//! - [`auth`]: API keys to principals.
//! - [`streams`]: the runtime side of each stream (state, events, publisher).
//! - [`pipeline`]: the per-session GStreamer pipeline.
//! - [`container`]: MP4 and fragmented MP4 files written from access units
//!   (pure bytes, no GStreamer).
//! - [`ingest`]: SRT listener, gRPC push and URI pull feeding the pipeline.
//! - [`processing`]: thumbnails and motion clips from the parsed media.
//! - [`recording`]: VOD files of live streams and their catalogue.
//! - [`replay`]: the rewind buffer, replay segments and replay clips.
//! - [`api`]: the tonic services.
//! - [`server`]: wiring and lifecycle of a running server.

pub mod api;
pub mod auth;
pub mod config;
pub mod container;
pub mod error;
pub mod ingest;
pub mod options;
pub mod pipeline;
pub mod processing;
pub mod proto;
pub mod recording;
pub mod registry;
pub mod replay;
pub mod server;
pub mod streams;
pub mod validate;
