//! Finding Antigravity's DevTools endpoint when none is given: the default port
//! 9222; else the port Antigravity wrote to `DevToolsActivePort` in its user-data
//! directory (it may have picked one at random); else the first of 9223-9229 that
//! answers as a DevTools endpoint.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cdp::Endpoint;

pub const DEFAULT_PORT: u16 = 9222;
const LAST_PORT: u16 = 9229;
/// A local port answers or refuses at once; this only bounds a host that drops packets.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// How the endpoint in use was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Named by the user: `--cdp`, `ANGRAV_CDP` or `BROWSER_CDP_ENDPOINT`.
    Given(&'static str),
    /// Nothing named; the default port answered.
    DefaultPort,
    /// The port written in the `DevToolsActivePort` file of this user-data directory.
    ActivePortFile(PathBuf),
    /// The first of the ports 9223-9229 that answered as a DevTools endpoint.
    PortScan,
    /// Nothing answered anywhere: the default port stands, so the error names it.
    NothingAnswered {
        /// Antigravity's user-data directory looked in, if one is known here.
        user_data_dir: Option<PathBuf>,
    },
}

impl Source {
    /// angrav found this endpoint by itself, off the default port: worth saying so.
    pub fn is_discovered(&self) -> bool {
        matches!(self, Source::ActivePortFile(_) | Source::PortScan)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Given(by) => write!(f, "given by {by}"),
            Source::DefaultPort => write!(f, "the default port"),
            Source::ActivePortFile(dir) => write!(f, "DevToolsActivePort in {}", dir.display()),
            Source::PortScan => {
                write!(f, "the first of ports {DEFAULT_PORT}-{LAST_PORT} to answer")
            }
            Source::NothingAnswered { user_data_dir } => {
                write!(f, "nothing answered at port {DEFAULT_PORT}, ")?;
                match user_data_dir {
                    Some(d) => write!(
                        f,
                        "no live port in {}",
                        d.join("DevToolsActivePort").display()
                    )?,
                    None => write!(f, "no user-data directory known (set ANGRAV_USER_DATA_DIR)")?,
                }
                write!(f, ", nor at ports {}-{LAST_PORT}", DEFAULT_PORT + 1)
            }
        }
    }
}

/// The endpoint to use when the user named none, and how it was found.
pub fn locate() -> (Endpoint, Source) {
    if connects(DEFAULT_PORT) {
        return (local(DEFAULT_PORT), Source::DefaultPort);
    }
    let dir = user_data_dir();
    if let Some(dir) = &dir
        && let Some(port) = active_port(dir)
        && is_devtools(port)
    {
        return (local(port), Source::ActivePortFile(dir.clone()));
    }
    for port in DEFAULT_PORT + 1..=LAST_PORT {
        if is_devtools(port) {
            return (local(port), Source::PortScan);
        }
    }
    let source = Source::NothingAnswered { user_data_dir: dir };
    (local(DEFAULT_PORT), source)
}

/// Antigravity's user-data directory: `ANGRAV_USER_DATA_DIR`, else where Electron
/// keeps an app's data on this system.
pub fn user_data_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("ANGRAV_USER_DATA_DIR") {
        return Some(dir.into());
    }
    let app_data = if cfg!(windows) {
        PathBuf::from(var("APPDATA")?)
    } else if cfg!(target_os = "macos") {
        PathBuf::from(var("HOME")?).join("Library/Application Support")
    } else {
        var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from(var("HOME")?).join(".config")))?
    };
    Some(app_data.join("Antigravity"))
}

/// The port on the first line of `DevToolsActivePort` (the second names the
/// browser's WebSocket path, not needed here).
fn active_port(dir: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(dir.join("DevToolsActivePort")).ok()?;
    text.lines().next()?.trim().parse().ok().filter(|&p| p != 0)
}

fn local(port: u16) -> Endpoint {
    Endpoint::parse(&format!("127.0.0.1:{port}")).expect("a loopback address parses")
}

fn connects(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).is_ok()
}

/// Answers `/json/version`: a stale `DevToolsActivePort`, or another program on a
/// port of the range, does not.
fn is_devtools(port: u16) -> bool {
    connects(port) && local(port).version().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_the_first_line_of_devtools_active_port() {
        let dir = std::env::temp_dir().join(format!("angrav-locate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("DevToolsActivePort");
        std::fs::write(&file, "40123\n/devtools/browser/8d0c\n").unwrap();
        assert_eq!(active_port(&dir), Some(40123));
        std::fs::write(&file, "0\n").unwrap();
        assert_eq!(active_port(&dir), None);
        std::fs::write(&file, "garbage").unwrap();
        assert_eq!(active_port(&dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(active_port(&dir), None);
    }

    #[test]
    fn a_failed_search_says_where_it_looked() {
        let s = Source::NothingAnswered {
            user_data_dir: Some(PathBuf::from("/home/u/.config/Antigravity")),
        };
        assert_eq!(
            s.to_string(),
            "nothing answered at port 9222, no live port in \
             /home/u/.config/Antigravity/DevToolsActivePort, nor at ports 9223-9229"
        );
    }
}
