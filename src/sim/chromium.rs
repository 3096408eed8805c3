//! Launches a headless Chromium for the simulator and the tests.
//!
//! Chromium runs under a small `sh` watchdog that holds the read end of a pipe from
//! us: when this process exits, however it exits, the pipe closes and the watchdog
//! stops Chromium and removes its profile directory. Nothing outlives us.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use cdp::Endpoint;

use super::SimError;

/// The flags DEVELOPERS.md names: headless, no network chatter, no throttling of
/// background tabs (every simulated window is one).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--site-per-process",
];

/// Once Chromium runs, the watchdog ignores INT, TERM and HUP so that it lives to clean
/// up, which it does when our end of its stdin closes; with SIGKILL, as a crash would
/// end it, when the line it reads is `kill`. The watchdog leads a process group of its
/// own (Chromium and its helpers are in it, a terminal's Ctrl-C is not sent to it):
/// Chromium's helper processes (the network service, the GPU process) outlive the
/// browser by a moment and write into the profile directory, so once the browser is
/// gone the group is told to end (TERM, which the watchdog ignores) and the directory
/// is removed until it stays removed: a file written while `rm -rf` runs makes it fail
/// with "Directory not empty", which left the directory behind in about half the runs.
const WATCHDOG: &str = r#"dir=$1; shift
"$@" & c=$!
trap '' INT TERM HUP
read how
if [ "$how" = kill ]; then kill -KILL $c 2>/dev/null; else kill $c 2>/dev/null; fi
wait $c 2>/dev/null
kill -TERM 0 2>/dev/null
n=0
while [ -e "$dir" ] && [ $n -lt 100 ]; do rm -rf "$dir" 2>/dev/null || sleep 0.05; n=$((n+1)); done"#;

const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Chromium {
    watchdog: Child,
    stdin: Option<ChildStdin>,
    endpoint: Endpoint,
    port: u16,
    dir: PathBuf,
}

impl Chromium {
    /// Starts Chromium (`ANGRAV_CHROMIUM`, else `chromium` on the PATH).
    pub fn launch() -> Result<Chromium, SimError> {
        Chromium::launch_on(0)
    }

    /// As [`Chromium::launch`], with DevTools on `port` (0: any free port).
    pub fn launch_on(port: u16) -> Result<Chromium, SimError> {
        let binary = find_binary()?;
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "angrav-chromium-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        let mut watchdog = Command::new("sh");
        // Chromium's own temporary files (`.org.chromium.Chromium.*`) go inside the
        // profile directory, which the watchdog removes whole: nothing is left in the
        // user's TMPDIR. Unless TMPDIR is so deep that Chromium's socket there
        // (`.org.chromium.Chromium.XXXXXX/SingletonSocket`) would pass the 107 bytes
        // a socket path may have: then it could not start at all.
        let tmp = dir.join("t");
        if tmp.as_os_str().len() + "/.org.chromium.Chromium.XXXXXX/SingletonSocket".len() <= 107 {
            std::fs::create_dir_all(&tmp)
                .map_err(|e| SimError::Launch(format!("{}: {e}", tmp.display())))?;
            watchdog.env("TMPDIR", &tmp);
        }
        // Its own process group: the watchdog's `kill 0` reaches Chromium's helpers
        // and nothing of ours.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut watchdog, 0);
        let mut watchdog = watchdog
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(&dir)
            .arg(&binary)
            .args(FLAGS)
            .arg(format!("--remote-debugging-port={port}"))
            .arg(format!("--user-data-dir={}", dir.display()))
            .arg("about:blank")
            // A throwaway browser: its config and cache (crash reports, dconf) go in
            // its profile, removed with it, never in the user's home.
            .env("XDG_CONFIG_HOME", &dir)
            .env("XDG_CACHE_HOME", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SimError::Launch(format!("cannot run sh: {e}")))?;
        let stdin = watchdog.stdin.take();
        let stderr = watchdog.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        // Chromium says where DevTools listen on stderr; the rest of its chatter is
        // kept only until then, for the error message if it never says so.
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut lines = BufReader::new(stderr).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(Ok(url.trim().to_string()));
                    break;
                }
                seen.push(line);
            }
            let _ = tx.send(Err(seen.join("\n")));
            lines.for_each(drop);
        });
        let mut chromium = Chromium {
            watchdog,
            stdin,
            endpoint: Endpoint::Target {
                ws_url: String::new(),
                id: String::new(),
            },
            port: 0,
            dir: dir.clone(),
        };
        let listening = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(url)) => url,
            Ok(Err(said)) => {
                return Err(SimError::Launch(format!(
                    "{} exited at start:\n{said}",
                    binary.display()
                )));
            }
            Err(_) => {
                return Err(SimError::Launch(format!(
                    "{} did not start within 30 s",
                    binary.display()
                )));
            }
        };
        chromium.port = read_port(&dir, &listening)?;
        chromium.endpoint = Endpoint::parse(&format!("127.0.0.1:{}", chromium.port))?;
        Ok(chromium)
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its user-data directory, where it writes `DevToolsActivePort`.
    pub fn user_data_dir(&self) -> &Path {
        &self.dir
    }

    /// Ends Chromium at once (SIGKILL), as a crash would: it closes no window first.
    pub fn kill(mut self) {
        self.end(b"kill\n");
    }

    /// Tells the watchdog how to end Chromium, and reaps it.
    fn end(&mut self, how: &[u8]) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(how);
        }
        let _ = self.watchdog.wait();
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // A line, or the pipe closing, is the watchdog's signal.
        self.end(b"\n");
    }
}

/// The port from `DevToolsActivePort`; Chromium may announce itself on stderr a
/// moment before it writes that file, so the announced URL stands in until then.
fn read_port(dir: &Path, listening: &str) -> Result<u16, SimError> {
    let from_file = std::fs::read_to_string(dir.join("DevToolsActivePort"))
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse().ok());
    let from_url = || {
        let hostport = listening.strip_prefix("ws://")?.split('/').next()?;
        hostport.rsplit(':').next()?.parse().ok()
    };
    from_file.or_else(from_url).ok_or_else(|| {
        SimError::Launch(format!(
            "no DevTools port in {} nor in '{listening}'",
            dir.display()
        ))
    })
}

fn find_binary() -> Result<PathBuf, SimError> {
    if let Some(p) = std::env::var_os("ANGRAV_CHROMIUM") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(SimError::Launch(format!(
                "ANGRAV_CHROMIUM names {}, which is not a file; unset it to use `chromium` \
                 from the PATH (Debian: apt-get install chromium)",
                p.display()
            )));
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(SimError::NoChromium)
}
