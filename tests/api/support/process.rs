//! The real `authmail serve` child process, for tests whose subject is the
//! process itself: exit status, `kill -9`, logs, open files, memory, and the
//! process-wide `/metrics`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wait::eventually_blocking;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_authmail")
}

pub struct Process {
    settings: HashMap<String, String>,
    dir: PathBuf,
    child: Option<Child>,
    runs: usize,
}

impl Process {
    pub fn new(settings: HashMap<String, String>, dir: &Path) -> Process {
        Process {
            settings,
            dir: dir.to_path_buf(),
            child: None,
            runs: 0,
        }
    }

    fn log_path(&self, run: usize) -> PathBuf {
        self.dir.join(format!("authmail-{run}.log"))
    }

    /// Spawns the binary with `BIND` at `port` and only the settings given
    /// (no environment of the test run leaks in).
    pub fn start(&mut self, port: u16) {
        self.runs += 1;
        let log = std::fs::File::create(self.log_path(self.runs)).unwrap();
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .current_dir(&self.dir)
            .env_clear()
            .envs(&self.settings)
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        self.child = Some(cmd.spawn().expect("start authmail"));
    }

    /// The exit status when the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().unwrap()
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        eventually_blocking(Duration::from_secs(30), || {
            child
                .try_wait()
                .unwrap()
                .ok_or_else(|| "authmail did not exit after SIGTERM".to_string())
        })
    }

    /// Everything every run has printed.
    pub fn logs(&self) -> String {
        (1..=self.runs)
            .map(|run| std::fs::read_to_string(self.log_path(run)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}
