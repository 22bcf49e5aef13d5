//! Logging: tracing to stderr and to `$JJFS_HOME/sync.log`, which is rotated by size so it
//! stays bounded (`sync.log`, `sync.log.1`, `sync.log.2`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Rotate when the log grows past this size.
pub(crate) const MAX_LOG_BYTES: u64 = 8 << 20;
const KEEP_ROTATED: u32 = 2;

/// What the libraries may log at levels up to `info`: jj-lib logs every lock it takes, and
/// fuser a failed unmount of a mount the daemon had already detached.
const QUIET_LIBRARIES: &str = "jj_lib=warn,fuser=warn,fuser::mnt=error";

/// The log filter: `JJFS_LOG` (an `EnvFilter` string, or just a level), default `info`.
fn filter() -> EnvFilter {
    let wanted = std::env::var("JJFS_LOG").unwrap_or_default();
    let wanted = wanted.trim();
    let directives = match wanted {
        "" => format!("info,{QUIET_LIBRARIES}"),
        "error" | "warn" | "info" => format!("{wanted},{QUIET_LIBRARIES}"),
        // `debug`, `trace` or a full filter: as given.
        other => other.to_owned(),
    };
    EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET_LIBRARIES}")))
}

/// Installs the global subscriber.
pub(crate) fn init(log_path: &Path) -> std::io::Result<()> {
    let file = RotatingFile::open(log_path.to_owned(), MAX_LOG_BYTES)?;
    let filter = filter();
    tracing_subscriber::registry()
        .with(filter)
        // Both layers share span fields formatted once, so neither may add colour codes.
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(std::io::stderr),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(file),
        )
        .try_init()
        .map_err(std::io::Error::other)
}

/// An append-only file that renames itself to `<name>.1` when it grows past a limit.
pub(crate) struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    state: Mutex<(File, u64)>,
}

impl RotatingFile {
    pub(crate) fn open(path: PathBuf, max_bytes: u64) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        Ok(Self {
            path,
            max_bytes,
            state: Mutex::new((file, len)),
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&self, state: &mut (File, u64)) -> std::io::Result<()> {
        for n in (1..KEEP_ROTATED).rev() {
            let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
        }
        std::fs::rename(&self.path, self.rotated(1))?;
        state.0 = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        state.1 = 0;
        Ok(())
    }
}

impl Write for &RotatingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.1 + buf.len() as u64 > self.max_bytes && state.1 > 0 {
            self.rotate(&mut state)?;
        }
        state.0.write_all(buf)?;
        state.1 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for RotatingFile {
    type Writer = &'a RotatingFile;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_the_limit_and_keeps_two() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.log");
        let log = RotatingFile::open(path.clone(), 100).unwrap();
        for i in 0..10 {
            (&log).write_all(format!("{i:049}\n").as_bytes()).unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
        assert!(dir.path().join("sync.log.1").exists());
        assert!(dir.path().join("sync.log.2").exists());
        assert!(!dir.path().join("sync.log.3").exists());
    }
}
