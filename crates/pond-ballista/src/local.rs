//! A cluster of the real binaries on 127.0.0.1, for tests and figures.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `pond-scheduler` and `pond-executor`s on 127.0.0.1, on ports the
/// system had free; the processes are killed when it is dropped.
#[derive(Debug)]
pub struct LocalCluster {
    scheduler: Child,
    executors: Vec<Child>,
    scheduler_port: u16,
    _work: tempfile::TempDir,
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.scheduler).chain(&mut self.executors) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nobody listens on now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `child` listens on `port`.
fn wait_for_port(port: u16, child: &mut Child, what: &str) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait()? {
            return Err(std::io::Error::other(format!(
                "{what} exited with {status} before it listened on port {port}"
            )));
        }
        if Instant::now() > deadline {
            return Err(std::io::Error::other(format!(
                "{what} did not listen on port {port} within a minute"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

impl LocalCluster {
    /// Starts `pond-scheduler` and `executors` `pond-executor`s from
    /// `bin_dir`, each executor with `slots` task slots, all with `env` in
    /// their environment (a store's credentials, say).
    pub fn start(
        bin_dir: &Path,
        executors: usize,
        slots: usize,
        env: &[(&str, String)],
    ) -> std::io::Result<Self> {
        let work = tempfile::tempdir()?;
        let scheduler_port = free_port()?;
        let binary = |name: &str| -> PathBuf {
            bin_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
        };
        let mut scheduler = Command::new(binary("pond-scheduler"))
            .args(["--bind-host", "127.0.0.1", "--external-host", "127.0.0.1"])
            .args(["--bind-port", &scheduler_port.to_string()])
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdout(Stdio::null())
            .spawn()?;
        wait_for_port(scheduler_port, &mut scheduler, "pond-scheduler")?;
        let mut cluster = Self {
            scheduler,
            executors: Vec::new(),
            scheduler_port,
            _work: work,
        };
        for i in 0..executors {
            let (port, grpc, health) = (free_port()?, free_port()?, free_port()?);
            let dir = cluster._work.path().join(format!("executor{i}"));
            std::fs::create_dir(&dir)?;
            let mut executor = Command::new(binary("pond-executor"))
                .args(["--scheduler-host", "127.0.0.1"])
                .args(["--scheduler-port", &scheduler_port.to_string()])
                .args(["--bind-host", "127.0.0.1", "--external-host", "127.0.0.1"])
                .args(["--bind-port", &port.to_string()])
                .args(["--bind-grpc-port", &grpc.to_string()])
                .args(["--bind-health-port", &health.to_string()])
                .args(["--vcores", &slots.to_string()])
                .arg("--work-dir")
                .arg(&dir)
                .envs(env.iter().map(|(k, v)| (*k, v)))
                .stdout(Stdio::null())
                .spawn()?;
            let started = wait_for_port(port, &mut executor, "pond-executor");
            cluster.executors.push(executor);
            started?;
        }
        // Executors register with the scheduler by their first heartbeat.
        std::thread::sleep(Duration::from_secs(1));
        Ok(cluster)
    }

    /// The scheduler's URL, for `pond sql --cluster`.
    pub fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.scheduler_port)
    }

    /// The executors' process ids.
    pub fn executor_pids(&self) -> Vec<u32> {
        self.executors.iter().map(Child::id).collect()
    }
}
