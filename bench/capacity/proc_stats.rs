//! CPU time, resident memory, open files and threads of processes, read
//! from `/proc`.

use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` times: Linux's USER_HZ,
/// fixed at 100 by its ABI on every architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds a process has used so far (0 once it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; 12 and 13 of `rest`.
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or_default();
    ticks / TICKS_PER_SECOND
}

/// A `/proc/<pid>/status` value: KiB for `VmRSS` or `RssAnon`, a count
/// for `Threads`.
fn status_value(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(field)?.strip_prefix(':')?;
                value.split_whitespace().next()?.parse().ok()
            })
        })
        .unwrap_or_default()
}

/// Resident memory of a process, MiB.
pub fn rss_mib(pid: u32) -> f64 {
    status_value(pid, "VmRSS") as f64 / 1024.0
}

/// Anonymous resident memory of a process (the heap and stacks, without
/// mapped files such as its libraries), MiB.
pub fn rss_anon_mib(pid: u32) -> f64 {
    status_value(pid, "RssAnon") as f64 / 1024.0
}

/// Threads of a process.
pub fn threads(pid: u32) -> u64 {
    status_value(pid, "Threads")
}

/// File descriptors a process has open (sockets included).
pub fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count() as u64)
        .unwrap_or_default()
}

/// CPU use of a set of processes over a window, as % of one core.
pub struct CpuWindow {
    pids: Vec<u32>,
    start_cpu: f64,
    start: Instant,
}

impl CpuWindow {
    pub fn start(pids: &[u32]) -> CpuWindow {
        CpuWindow {
            pids: pids.to_vec(),
            start_cpu: pids.iter().map(|&p| cpu_seconds(p)).sum(),
            start: Instant::now(),
        }
    }

    /// CPU % of one core since `start`.
    pub fn percent(&self) -> f64 {
        let used: f64 = self.pids.iter().map(|&p| cpu_seconds(p)).sum::<f64>() - self.start_cpu;
        100.0 * used / self.start.elapsed().as_secs_f64().max(0.001)
    }
}
