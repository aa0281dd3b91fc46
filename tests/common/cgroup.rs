//! A CPU limit on a process: a cgroup of its own (v1's `cpu` controller or
//! v2's `cpu.max`) with a quota of a share of one core, removed on drop.
//! Needs root; in CI its absence is a failure, elsewhere the caller skips.

use std::path::PathBuf;

pub struct CpuLimit {
    dir: PathBuf,
}

impl CpuLimit {
    /// Holds `pid` (and every thread it has or starts) to `percent` % of
    /// one core; `None` where cgroups cannot be made (not root).
    pub fn hold(pid: u32, percent: u32) -> Option<CpuLimit> {
        let name = format!("liveproc-test-{}-{pid}", std::process::id());
        let v1 = PathBuf::from("/sys/fs/cgroup/cpu");
        let made = if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(name);
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join("cpu.cfs_period_us"), "100000"))
                .and_then(|()| {
                    std::fs::write(dir.join("cpu.cfs_quota_us"), format!("{}", percent * 1000))
                })
                .map(|()| dir)
        } else {
            let dir = PathBuf::from("/sys/fs/cgroup").join(name);
            std::fs::create_dir_all(&dir)
                .and_then(|()| {
                    std::fs::write(dir.join("cpu.max"), format!("{} 100000", percent * 1000))
                })
                .map(|()| dir)
        };
        let dir = match made {
            Ok(dir) => dir,
            Err(e) => {
                let ci =
                    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
                assert!(
                    !ci,
                    "CI must be able to make a CPU cgroup (run as root): {e}"
                );
                eprintln!("### SKIPPING: cannot make a CPU cgroup here ({e}; needs root)");
                return None;
            }
        };
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
            .expect("move the server into its cgroup");
        Some(CpuLimit { dir })
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        // A cgroup with processes in it cannot be removed: what is left
        // goes back to the parent first.
        let parent = self.dir.parent().unwrap().join("cgroup.procs");
        if let Ok(procs) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = std::fs::write(&parent, pid);
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
