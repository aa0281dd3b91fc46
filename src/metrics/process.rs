//! This process as Prometheus describes processes (`process_*`): CPU
//! seconds, resident memory, open file descriptors, threads and start
//! time, read from `/proc/self` at each scrape.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Default)]
pub struct ProcessMetrics {
    cpu_seconds: Counter<f64, AtomicU64>,
    /// The CPU seconds last read (the counter grows by the difference).
    cpu_read: Mutex<f64>,
    resident_bytes: Gauge,
    open_fds: Gauge,
    threads: Gauge,
    start_time: Gauge<f64, AtomicU64>,
}

impl ProcessMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            self.cpu_seconds.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size, in bytes",
            self.resident_bytes.clone(),
        );
        registry.register(
            "process_open_fds",
            "Open file descriptors",
            self.open_fds.clone(),
        );
        registry.register("process_threads", "OS threads", self.threads.clone());
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            self.start_time.clone(),
        );
    }

    /// Reads the process's figures now.
    pub fn refresh(&self) {
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        if let Some(stat) = read_stat() {
            let cpu = (stat.utime + stat.stime) as f64 / ticks;
            let mut read = self.cpu_read.lock().expect("cpu lock");
            if cpu > *read {
                self.cpu_seconds.inc_by(cpu - *read);
                *read = cpu;
            }
            self.threads.set(stat.threads);
            if let Some(boot) = boot_time() {
                self.start_time.set(boot + stat.start_ticks as f64 / ticks);
            }
        }
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            let resident: i64 = statm
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            self.resident_bytes
                .set(resident * rustix::param::page_size() as i64);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
    }
}

struct Stat {
    utime: u64,
    stime: u64,
    threads: i64,
    start_ticks: u64,
}

/// `/proc/self/stat`: the fields after the command name (which may hold
/// spaces, inside parentheses).
fn read_stat() -> Option<Stat> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Field n of proc(5) is fields[n - 3].
    Some(Stat {
        utime: fields.get(11)?.parse().ok()?,
        stime: fields.get(12)?.parse().ok()?,
        threads: fields.get(17)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// Boot time since the Unix epoch, in seconds (`btime` of `/proc/stat`).
fn boot_time() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|s| s.trim().parse().ok())
}
