//! The threads that run the features' jobs: decoding a keyframe and
//! encoding a picture, exporting a clip. A fixed set of them, started
//! once, each at a lower scheduling priority (nice +10) than the rest of
//! the server: when the machine is saturated, the kernel gives the CPU to
//! ingest first (the SRT receive threads, demux, recording and replay),
//! and it is the outputs that come late, not the media that is lost.
//! A thread that has waited [`QUIET`] for a job runs the housekeeping it
//! was given (dropping what the jobs kept for reuse and no longer use).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Nice value of job threads: CFS gives a nice-10 thread about a tenth of
/// the CPU of a nice-0 one when both want it.
const JOB_NICE: i32 = 10;
/// How long a thread waits for a job before it does the housekeeping.
const QUIET: Duration = Duration::from_secs(10);

/// Why a job gave no result.
#[derive(Debug)]
pub enum JobFailure {
    /// The server is stopping: no thread takes jobs any more.
    Stopped,
    /// The job panicked (its thread carries on).
    Panicked(String),
}

pub struct JobThreads {
    queue: mpsc::Sender<Job>,
}

impl JobThreads {
    /// Starts `threads` job threads; `housekeeping` runs on one of them
    /// after [`QUIET`] without a job, and again after each [`QUIET`].
    pub fn start(threads: usize, housekeeping: fn()) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("liveproc-job-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = jobs.lock().expect("job queue lock").recv_timeout(QUIET);
                        match job {
                            Ok(job) => job(),
                            Err(mpsc::RecvTimeoutError::Timeout) => housekeeping(),
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                })?;
        }
        Ok(Self { queue })
    }

    /// Runs `job` on a job thread; its result.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, JobFailure> {
        let (done, result) = oneshot::channel();
        let wrapped: Job = Box::new(move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(job)).map_err(|panic| {
                panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            });
            let _ = done.send(outcome);
        });
        self.queue.send(wrapped).map_err(|_| JobFailure::Stopped)?;
        match result.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(JobFailure::Panicked(message)),
            Err(_) => Err(JobFailure::Stopped),
        }
    }
}

/// This thread at [`JOB_NICE`] (allowed without privileges: it only
/// lowers the priority).
fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(thread), JOB_NICE) {
        tracing::warn!(error = %e, "cannot lower the priority of a job thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_at_a_lower_priority_and_survive_panics() {
        let threads = JobThreads::start(2, || {}).unwrap();
        let nice = threads
            .run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid())))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(nice, JOB_NICE);
        let failed = threads.run(|| panic!("broken job")).await;
        assert!(matches!(failed, Err(JobFailure::Panicked(m)) if m == "broken job"));
        assert_eq!(threads.run(|| 2 + 2).await.unwrap(), 4);
    }
}
