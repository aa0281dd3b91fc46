//! The server's resident memory, open files, threads and data on disk,
//! read every second: a point on the curves every `every`, and the peak
//! since a cycle asked for it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::proc_stats::{open_fds, rss_anon_mib, rss_mib, threads};

/// One reading of the server.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Minutes since the soak began.
    pub minute: f64,
    pub rss_mib: f64,
    /// The heap and stacks alone, without mapped libraries.
    pub rss_anon_mib: f64,
    pub fds: u64,
    pub threads: u64,
    /// Bytes under the server's data directory.
    pub data_mib: f64,
    /// What the allocator has handed out and not had back, from the
    /// server's own gauge (on the curve's points only).
    #[serde(default)]
    pub heap_in_use_mib: f64,
}

struct State {
    curve: Vec<Sample>,
    peak_rss_mib: f64,
}

/// Reads the server every second until [`Sampler::finish`].
pub struct Sampler {
    pid: u32,
    data_dir: PathBuf,
    began: Instant,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Reads process `pid`, the files under `data_dir`, and the heap gauge
    /// of the server's metrics listener at `metrics`.
    pub fn start(pid: u32, data_dir: PathBuf, metrics: SocketAddr, every: Duration) -> Sampler {
        let began = Instant::now();
        let state = Arc::new(Mutex::new(State {
            curve: vec![],
            peak_rss_mib: 0.0,
        }));
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (state, stop, data_dir) = (state.clone(), stop.clone(), data_dir.clone());
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                let mut next_point = began;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tick.tick() => {}
                    }
                    let mut sample = read(pid, &data_dir, began);
                    let point = Instant::now() >= next_point;
                    if point {
                        sample.heap_in_use_mib = heap_in_use_mib(metrics).await;
                        next_point += every;
                    }
                    let mut state = state.lock().unwrap();
                    state.peak_rss_mib = state.peak_rss_mib.max(sample.rss_mib);
                    if point {
                        state.curve.push(sample);
                    }
                }
            }
        });
        Sampler {
            pid,
            data_dir,
            began,
            state,
            stop,
            task,
        }
    }

    /// The server as it is now.
    pub fn now(&self) -> Sample {
        read(self.pid, &self.data_dir, self.began)
    }

    /// The highest resident memory since the last call.
    pub fn take_peak_rss_mib(&self) -> f64 {
        let mut state = self.state.lock().unwrap();
        std::mem::take(&mut state.peak_rss_mib)
    }

    /// Stops reading; the curve.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.cancel();
        self.task.abort();
        let mut state = self.state.lock().unwrap();
        std::mem::take(&mut state.curve)
    }
}

/// The server's `liveproc_heap_in_use_bytes` in MiB; 0 when it cannot be
/// read (a point of the curve is not worth failing the soak for).
async fn heap_in_use_mib(metrics: SocketAddr) -> f64 {
    let Ok(response) = reqwest::get(format!("http://{metrics}/metrics")).await else {
        return 0.0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("liveproc_heap_in_use_bytes")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|bytes| bytes / (1024.0 * 1024.0))
        .unwrap_or_default()
}

fn read(pid: u32, data_dir: &Path, began: Instant) -> Sample {
    Sample {
        minute: began.elapsed().as_secs_f64() / 60.0,
        rss_mib: rss_mib(pid),
        rss_anon_mib: rss_anon_mib(pid),
        fds: open_fds(pid),
        threads: threads(pid),
        data_mib: dir_bytes(data_dir) as f64 / (1024.0 * 1024.0),
        heap_in_use_mib: 0.0,
    }
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| match entry.file_type() {
                    Ok(t) if t.is_dir() => dir_bytes(&entry.path()),
                    Ok(_) => entry.metadata().map(|m| m.len()).unwrap_or_default(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or_default()
}
