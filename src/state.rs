//! The state directory: what angrav remembers from one run to the next (aliases,
//! groups, the journal). Several angrav processes may use it at once: every change is
//! a read-modify-write under an exclusive lock on a lock file, and a JSON file is
//! replaced whole (written to a temp file in the same directory, then renamed), so a
//! reader sees the old file or the new one, never half of one.
//!
//! It holds every prompt and answer, so it is private: the directory is made 0700 and
//! every file 0600 whatever the umask, a temp file is created exclusively under an
//! unpredictable name (never through a link someone planted), and a directory found
//! open to others is said on stderr.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
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
            StateError::Io { path, error } => write!(
                f,
                "{}: {error}; angrav keeps its state there: make it a directory angrav can read and write (or set ANGRAV_STATE_DIR), or run with --no-state",
                path.display()
            ),
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

    /// Makes the directory (0700) unless it is there; one found open to others is
    /// said once on stderr.
    fn create(&self) -> Result<(), StateError> {
        let dir = &self.path;
        match fs::metadata(dir) {
            Ok(meta) => {
                warn_if_open(dir, &meta);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(dir, e)),
        }
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| io_error(dir, e))?;
        // The mode given at creation is narrowed by the umask, never widened: set it.
        private(dir, 0o700).map_err(|e| io_error(dir, e))
    }

    /// Waits for the exclusive lock `NAME.lock` (other processes hold it only for the
    /// time of one read-modify-write).
    pub fn lock(&self, name: &str) -> Result<Lock, StateError> {
        self.create()?;
        let path = self.file(&format!("{name}.lock"));
        let file = open_private(
            OpenOptions::new().create(true).truncate(false).write(true),
            &path,
        )?;
        file.lock().map_err(|e| io_error(&path, e))?;
        Ok(Lock { _file: file })
    }

    /// A JSON state file; the default when there is none.
    pub fn read<T: Doc>(&self) -> Result<T, StateError> {
        if let Ok(meta) = fs::metadata(&self.path) {
            warn_if_open(&self.path, &meta);
        }
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
    /// user alone: for secrets such as serve's token.
    pub fn write_private(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        self.create()?;
        self.replace(name, bytes)
    }

    /// Writes `name` whole through a temp file and a rename, the temp file under a
    /// random name.
    fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        self.replace_via(name, bytes, || random_hex(8))
    }

    /// [`StateDir::replace`] with the temp file's names chosen by `pick`. The temp file
    /// is made exclusively (`O_EXCL`: a name someone planted, a symlink included, is
    /// never opened; another name is picked), mode 0600 from its creation on.
    fn replace_via(
        &self,
        name: &str,
        bytes: &[u8],
        mut pick: impl FnMut() -> io::Result<String>,
    ) -> Result<(), StateError> {
        let path = self.file(name);
        let mut tries = 0;
        let (temp, mut f) = loop {
            let random = pick().map_err(|e| io_error(&path, e))?;
            let temp = self.file(&format!(".{name}.{random}.tmp"));
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            match open_private(&mut options, &temp) {
                Ok(f) => break (temp, f),
                // Names nobody can guess are taken only by chance or by an attack:
                // a few more, then the error.
                Err(StateError::Io { error, .. })
                    if error.kind() == io::ErrorKind::AlreadyExists && tries < TEMP_TRIES =>
                {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let written = f
            .write_all(bytes)
            .and_then(|()| f.sync_all())
            .and_then(|()| fs::rename(&temp, &path));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written.map_err(|e| io_error(&path, e))
    }
}

/// How many other temp names a write tries when the one it picked is taken.
const TEMP_TRIES: usize = 3;

/// Opens (or creates) a file of the state directory, mode 0600 whatever the umask.
pub(crate) fn open_private(options: &mut OpenOptions, path: &Path) -> Result<File, StateError> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    let file = options.open(path).map_err(|e| io_error(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode given at creation is narrowed by the umask, never widened; a file
        // left by an older angrav may be open to others: 0600 either way (a file of
        // another user's stays as it is).
        let mode = file.metadata().map(|m| m.permissions().mode() & 0o777);
        if mode.is_ok_and(|m| m != 0o600) {
            let _ = file.set_permissions(fs::Permissions::from_mode(0o600));
        }
    }
    Ok(file)
}

/// Sets a path's mode (unix).
fn private(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Says once per run that the state directory is open to other users.
fn warn_if_open(dir: &Path, meta: &fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        static SAID: AtomicBool = AtomicBool::new(false);
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 && !SAID.swap(true, Ordering::Relaxed) {
            warn!(
                "angrav: the state directory {} is open to other users (mode {mode:04o}) and holds every prompt and answer: chmod -R go= '{}'",
                dir.display(),
                dir.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (dir, meta);
}

/// `bytes` random bytes from the system, as hex: names nobody can guess, tokens.
pub fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn a_temp_name_taken_by_a_planted_link_is_never_written_through() {
        let root = std::env::temp_dir().join(format!("angrav-state-link-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let state = StateDir::at(root.join("state"));
        state.create().unwrap();
        let victim = root.join("victim");
        fs::write(&victim, "the victim\n").unwrap();
        let planted = state.file(".aliases.json.planted.tmp");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        // The first name picked is the planted link: passed over for the next.
        let mut names = ["planted", "fresh"].into_iter().map(String::from);
        state
            .replace_via("aliases.json", b"new\n", || Ok(names.next().unwrap()))
            .unwrap();
        assert_eq!(
            fs::read_to_string(state.file("aliases.json")).unwrap(),
            "new\n"
        );
        assert_eq!(fs::read_to_string(&victim).unwrap(), "the victim\n");
        assert!(fs::symlink_metadata(&planted).unwrap().is_symlink());
        // Every name picked taken: the write fails, and still writes nothing through.
        let o = state.replace_via("aliases.json", b"newer\n", || Ok("planted".into()));
        assert!(
            matches!(&o, Err(StateError::Io { error, .. }) if error.kind() == io::ErrorKind::AlreadyExists),
            "{o:?}"
        );
        assert_eq!(
            fs::read_to_string(state.file("aliases.json")).unwrap(),
            "new\n"
        );
        assert_eq!(fs::read_to_string(&victim).unwrap(), "the victim\n");
        let _ = fs::remove_dir_all(&root);
    }
}
