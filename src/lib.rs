//! liveproc: a live video processing server.
//!
//! Broadcasters publish live streams (SRT, RTMP, gRPC `PushMedia`, or a
//! URI the server pulls). Each live stream gets one pipeline that demuxes and
//! parses the media once and fans the encoded access units out to the
//! processing features. The gRPC API (`liveproc.v1`) manages
//! organizations, streams and their processing options.
//!
//! Modules, from the top down; each uses only modules below it:
//! - [`server`]: wiring and lifecycle of a running server.
//! - [`http`]: the same outputs as URLs (thumbnails, HLS replay,
//!   recordings, clips), on the gRPC address, with signed URLs.
//! - [`api`]: the tonic services; errors mapped once ([`error`]).
//! - [`service`]: what both adapters ask (recordings, clips, thumbnails at
//!   a time, sessions' recordings, replay segments): the one place that
//!   chooses storage; `http` and `api` never call each other.
//! - [`ingest`]: SRT and RTMP listeners, gRPC push and URI pull: media in, one
//!   publisher session per stream.
//! - [`webhooks`]: events told to the organizations' servers: made by
//!   the features and the service, queued in the registry's outbox,
//!   signed and delivered by its own task.
//! - [`cluster`]: this node among the nodes on one registry: its
//!   heartbeat, and the lease by which it holds each session it runs.
//! - [`headroom`]: whether this node keeps up with its media: admission
//!   of new sessions and shedding of the newest when it does not.
//! - [`heap`]: the heap's free memory given back to the system (a leaf).
//! - [`features`]: thumbnails, motion clips, recording and replay, driven
//!   by each session's access units.
//! - [`streams`]: the runtime side of each stream (state, events,
//!   publisher slot).
//! - [`pipeline`]: the per-session demux + parse, emitting access units.
//! - [`auth`], [`url_signing`], [`registry`]: API keys, signed URLs;
//!   durable records (redb).
//! - [`store`]: the on-disk layout of the data dir.
//! - [`gst_util`]: GStreamer helpers shared by the pipeline and the jobs;
//!   [`gst_format`]: caps and buffers made from typed media (the only
//!   place GStreamer meets [`media`]).
//! - [`container`]: MP4, fragmented MP4 and MPEG-TS written from access
//!   units (pure bytes, no GStreamer).
//! - [`media`]: access units, codecs, ticks, NAL units, ADTS (a leaf).
//! - [`pull_policy`]: what the server may reach for an organization
//!   (pulled sources, webhook endpoints) (a leaf).
//! - [`redact`]: URIs and their secrets out of logs and messages (a leaf).
//! - [`tls`]: the server's certificate, reloaded in place, and its TLS
//!   acceptors (gRPC/HTTP and RTMPS) (a leaf).
//! - [`config`], [`options`] and [`validate`], [`ids`], [`proto`]: settings,
//!   processing options and their ranges, identities, generated API types.

pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod cluster;
pub mod config;
pub(crate) mod container;
pub mod error;
pub(crate) mod features;
pub(crate) mod gst_format;
pub(crate) mod gst_util;
pub(crate) mod headroom;
pub mod heap;
pub(crate) mod http;
pub mod ids;
pub(crate) mod ingest;
pub(crate) mod media;
pub(crate) mod metrics;
pub mod migrate;
pub(crate) mod objects;
pub(crate) mod options;
pub(crate) mod pipeline;
pub mod proto;
pub(crate) mod pull_policy;
pub(crate) mod redact;
pub mod registry;
pub(crate) mod runtime;
pub mod server;
pub(crate) mod service;
pub(crate) mod store;
pub(crate) mod streams;
pub(crate) mod tls;
pub(crate) mod url_signing;
pub(crate) mod validate;
pub(crate) mod webhooks;
