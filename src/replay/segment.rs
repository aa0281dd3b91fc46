//! A GOP as MPEG-TS (`appsrc`s ! `mpegtsmux` ! `appsink`), made once per
//! GOP on first request and shared by every subscriber. Timestamps are
//! kept as they were received, so consecutive segments concatenate into
//! one continuous, playable stream.

use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::buffer::Gop;
use crate::processing::gst_job::{self, make, JobResult};

/// The GOP's MPEG-TS bytes (blocking on first use).
pub fn mpeg_ts(gop: &Gop) -> JobResult<Bytes> {
    if let Some(ts) = gop.mpeg_ts.get() {
        return Ok(ts.clone());
    }
    let ts = mux(gop)?;
    Ok(gop.mpeg_ts.get_or_init(|| ts).clone())
}

fn mux(gop: &Gop) -> JobResult<Bytes> {
    let pipeline = gst::Pipeline::new();
    let mux = make("mpegtsmux")?;
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline
        .add_many([&mux, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    mux.link(&sink).map_err(|e| e.to_string())?;
    let mut inputs = vec![];
    for video in [true, false] {
        let units: Vec<_> = gop
            .units
            .iter()
            .filter(|u| u.codec.is_video() == video)
            .collect();
        let Some(caps) = units.first().and_then(|u| u.caps.clone()) else {
            continue;
        };
        let src = gst_job::unit_source(&caps);
        pipeline.add(&src).map_err(|e| e.to_string())?;
        src.link(&mux).map_err(|e| e.to_string())?;
        inputs.push((src, units));
    }
    for (src, units) in &inputs {
        gst_job::feed(src, units, Duration::ZERO)?;
    }
    let samples = gst_job::collect(&pipeline, &sink)?;
    Ok(Bytes::from(gst_job::concat(&samples)?))
}
