//! The state directory: what angrav remembers from one run to the next (aliases,
//! groups, the journal). Several angrav processes may use it at once: every change is
//! a read-modify-write under an exclusive lock on a lock file, and a JSON file is
//! replaced whole (written to a temp file in the same directory, then renamed), so a
//! reader sees the old file or the new one, never half of one.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Every JSON state file says what it is: `{"angrav": "aliases/1", ...}`.
const MARK: &str = "angrav";

/// What can go wrong with the state directory; each message names the path.
#[derive(Debug)]
pub enum StateError {
    /// Neither `ANGRAV_STATE_DIR` nor a home directory is known.
    NoDir,
    Io {
        path: PathBuf,
        error: io::Error,
    },
    /// A file angrav cannot read as its own: left as it is.
    Corrupt {
        path: PathBuf,
        why: String,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::NoDir => write!(
                f,
                "no place for angrav's state: set ANGRAV_STATE_DIR (or HOME), or run with --no-state"
            ),
            StateError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            StateError::Corrupt { path, why } => write!(
                f,
                "{}: not an angrav state file ({why}); angrav left it as it is: repair or remove it, or run with --no-state",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StateError {}

/// A kind of JSON state file: its name (`NAME.json`) and what it holds.
pub trait Doc: Serialize + DeserializeOwned + Default {
    /// The file's name without `.json`; also its mark, with the format version.
    const NAME: &'static str;
    const VERSION: u32 = 1;
}

/// The state directory (created on the first write).
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

/// An exclusive lock on one of the state's lock files, released when dropped.
pub struct Lock {
    _file: File,
}

impl StateDir {
    /// `ANGRAV_STATE_DIR`; else `$XDG_STATE_HOME/angrav`, else `~/.local/state/angrav`
    /// (macOS: `~/Library/Application Support/angrav`; Windows: `%LOCALAPPDATA%\angrav`).
    pub fn locate() -> Result<StateDir, StateError> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(dir) = var("ANGRAV_STATE_DIR") {
            return Ok(StateDir::at(dir));
        }
        let base = if cfg!(windows) {
            var("LOCALAPPDATA").map(PathBuf::from)
        } else if cfg!(target_os = "macos") {
            var("HOME").map(|h| PathBuf::from(h).join("Library/Application Support"))
        } else {
            var("XDG_STATE_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        };
        base.map(|b| StateDir::at(b.join("angrav")))
            .ok_or(StateError::NoDir)
    }

    pub fn at(path: impl Into<PathBuf>) -> StateDir {
        StateDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn create(&self) -> Result<(), StateError> {
        fs::create_dir_all(&self.path).map_err(|e| io_error(&self.path, e))
    }

    /// Waits for the exclusive lock `NAME.lock` (other processes hold it only for the
    /// time of one read-modify-write).
    pub fn lock(&self, name: &str) -> Result<Lock, StateError> {
        self.create()?;
        let path = self.file(&format!("{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        file.lock().map_err(|e| io_error(&path, e))?;
        Ok(Lock { _file: file })
    }

    /// A JSON state file; the default when there is none.
    pub fn read<T: Doc>(&self) -> Result<T, StateError> {
        let path = self.file(&format!("{}.json", T::NAME));
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(T::default()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(corrupt(&path, "not UTF-8"));
            }
            Err(e) => return Err(io_error(&path, e)),
        };
        let mut value: Value =
            serde_json::from_str(&text).map_err(|e| corrupt(&path, &e.to_string()))?;
        let mark = format!("{}/{}", T::NAME, T::VERSION);
        match value.as_object_mut().and_then(|o| o.remove(MARK)) {
            Some(Value::String(m)) if m == mark => {}
            _ => return Err(corrupt(&path, &format!("no \"{MARK}\": \"{mark}\" mark"))),
        }
        serde_json::from_value(value).map_err(|e| corrupt(&path, &e.to_string()))
    }

    /// Changes a JSON state file: under its lock, reads it, applies `change`, and
    /// replaces it atomically. A file angrav cannot read stays as it is.
    pub fn update<T: Doc, R>(&self, change: impl FnOnce(&mut T) -> R) -> Result<R, StateError> {
        let _lock = self.lock(T::NAME)?;
        let mut doc: T = self.read()?;
        let out = change(&mut doc);
        let mut value = serde_json::to_value(&doc).expect("state serialises");
        if let Some(o) = value.as_object_mut() {
            o.insert(
                MARK.into(),
                Value::String(format!("{}/{}", T::NAME, T::VERSION)),
            );
        }
        let text = serde_json::to_string_pretty(&value).expect("state serialises") + "\n";
        self.replace(&format!("{}.json", T::NAME), text.as_bytes())?;
        Ok(out)
    }

    /// Writes `name` whole (a temp file, then a rename), readable and writable by the
    /// user alone (mode 0600 from its creation on): for secrets such as serve's token.
    pub fn write_private(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        self.create()?;
        let path = self.file(name);
        let temp = self.file(&format!(".{name}.tmp"));
        let write = || -> io::Result<()> {
            let _ = fs::remove_file(&temp);
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&temp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&temp, &path)
        };
        write().map_err(|e| io_error(&path, e))
    }

    /// Writes `name` whole through a temp file and a rename; the caller holds the lock.
    fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let path = self.file(name);
        let temp = self.file(&format!(".{name}.tmp"));
        let write = || -> io::Result<()> {
            let mut f = File::create(&temp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&temp, &path)
        };
        write().map_err(|e| io_error(&path, e))
    }
}

pub(crate) fn io_error(path: &Path, error: io::Error) -> StateError {
    StateError::Io {
        path: path.to_path_buf(),
        error,
    }
}

pub(crate) fn corrupt(path: &Path, why: &str) -> StateError {
    StateError::Corrupt {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}
