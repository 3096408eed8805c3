//! The simulated Antigravity: a headless Chromium whose tabs are editor windows
//! with a simulated agent panel (`fixtures/`). `angrav simulate` and the tests use it.

mod chromium;
pub mod ls;
mod server;

use std::fmt;
use std::time::{Duration, Instant};

use cdp::methods::runtime::Evaluate;
use cdp::{Connection, Endpoint, TargetInfo};

pub use chromium::Chromium;
pub use server::{FixtureServer, gate_reached, open_gate, receipts};

use crate::panel::Layout;

#[derive(Debug)]
pub enum SimError {
    NoChromium,
    Launch(String),
    Cdp(cdp::Error),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::NoChromium => write!(
                f,
                "Chromium is not installed: run `apt-get install chromium` (Debian), or point ANGRAV_CHROMIUM at a Chromium binary"
            ),
            SimError::Launch(why) => write!(f, "cannot start the simulated Antigravity: {why}"),
            SimError::Cdp(e) => write!(f, "simulated Antigravity: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

impl From<cdp::Error> for SimError {
    fn from(e: cdp::Error) -> Self {
        SimError::Cdp(e)
    }
}

/// How a window's panel markup is arranged: the same panel, wrapped differently, as
/// builds change it (see `fixtures/agent.js`). angrav must read every one alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrangement {
    /// As the markers were first reported.
    Plain,
    /// An extra wrapper element at every level.
    Wrapped,
    /// The conversation container holds the whole panel, header and editor included.
    ContainerAll,
    /// The conversation container has no id.
    NoId,
    /// Approval and error cards render in a popup in `document.body`, outside the panel.
    Popup,
}

impl Arrangement {
    pub const ALL: [Arrangement; 5] = [
        Arrangement::Plain,
        Arrangement::Wrapped,
        Arrangement::ContainerAll,
        Arrangement::NoId,
        Arrangement::Popup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Arrangement::Plain => "plain",
            Arrangement::Wrapped => "wrapped",
            Arrangement::ContainerAll => "container-all",
            Arrangement::NoId => "no-id",
            Arrangement::Popup => "popup",
        }
    }
}

/// One simulated editor window.
#[derive(Debug, Clone)]
pub struct Window {
    pub layout: Layout,
    pub workspace: String,
    /// How the agent answers: comma-separated `instant`, `slow`, `late-busy`,
    /// `flicker`, `approval`, `question`, `error`, `quota` (see `fixtures/agent.js`).
    pub scenario: String,
    /// The state on load: `idle`, `thinking`, `approval`, `error`, `quota`.
    pub start: String,
    /// Finished turns already in the conversation.
    pub history: u32,
    /// False: the agent panel is closed.
    pub panel: bool,
    /// In the `v2` layout: the 2.x desktop app's markers, the profile's other
    /// alternatives (see `fixtures/agent.js`).
    pub alt: bool,
    pub arrange: Arrangement,
    /// The language server its panel calls, with the token and the conversation it
    /// shows: `(url, token, conversation id)`.
    pub ls: Option<(String, String, String)>,
}

impl Window {
    pub fn new(layout: Layout, workspace: &str) -> Window {
        Window {
            layout,
            workspace: workspace.to_string(),
            scenario: String::new(),
            start: "idle".into(),
            history: 0,
            panel: true,
            alt: false,
            arrange: Arrangement::Plain,
            ls: None,
        }
    }

    /// Its panel calls this language server about this conversation, as
    /// Antigravity's panel does (see `fixtures/agent.js`).
    pub fn ls(mut self, ls: &ls::SimLs, conversation: &str) -> Window {
        self.ls = Some((ls.url(), ls.token().to_string(), conversation.to_string()));
        self
    }

    pub fn scenario(mut self, s: &str) -> Window {
        self.scenario = s.to_string();
        self
    }

    pub fn start(mut self, s: &str) -> Window {
        self.start = s.to_string();
        self
    }

    pub fn history(mut self, n: u32) -> Window {
        self.history = n;
        self
    }

    pub fn closed_panel(mut self) -> Window {
        self.panel = false;
        self
    }

    pub fn alt(mut self) -> Window {
        self.alt = true;
        self
    }

    pub fn arrange(mut self, a: Arrangement) -> Window {
        self.arrange = a;
        self
    }

    fn path(&self) -> String {
        let enc = cdp::discovery::percent_encode;
        let ls = self.ls.as_ref().map_or(String::new(), |(url, token, id)| {
            format!(
                "&ls={}&lstoken={}&cascade={}",
                enc(url),
                enc(token),
                enc(id)
            )
        });
        format!(
            "/workbench.html?layout={}&workspace={}&scenario={}&start={}&history={}&panel={}&alt={}&arrange={}{ls}",
            self.layout.name(),
            enc(&self.workspace),
            enc(&self.scenario),
            enc(&self.start),
            self.history,
            if self.panel { "open" } else { "closed" },
            u8::from(self.alt),
            self.arrange.name(),
        )
    }
}

pub struct Simulator {
    chromium: Chromium,
    server: FixtureServer,
}

const LOAD_TIMEOUT: Duration = Duration::from_secs(20);

impl Simulator {
    pub fn start() -> Result<Simulator, SimError> {
        Simulator::start_on(0)
    }

    /// As [`Simulator::start`], with the browser's DevTools on `port` (0: any).
    pub fn start_on(port: u16) -> Result<Simulator, SimError> {
        let server = FixtureServer::start()?;
        let chromium = Chromium::launch_on(port)?;
        Ok(Simulator { chromium, server })
    }

    /// Kills the browser at once (SIGKILL), as a crash would.
    pub fn kill(self) {
        self.chromium.kill();
    }

    pub fn endpoint(&self) -> &Endpoint {
        self.chromium.endpoint()
    }

    pub fn chromium(&self) -> &Chromium {
        &self.chromium
    }

    /// Opens a window and returns once its page (with any panel iframe) has loaded.
    pub fn open(&self, window: &Window) -> Result<TargetInfo, SimError> {
        self.open_path(&window.path())
    }

    /// Opens the Agent Manager window, which is not a session.
    pub fn open_manager(&self) -> Result<TargetInfo, SimError> {
        self.open_path("/workbench-jetski-agent.html")
    }

    /// Closes a window, and returns once it is gone: its own DevTools socket has
    /// ended, so no later listing shows it.
    pub fn close(&self, target_id: &str) -> Result<(), SimError> {
        let mut window = Connection::open(&self.endpoint().page_ws_url(target_id)).ok();
        self.endpoint().close_target(target_id)?;
        if let Some(conn) = &mut window {
            let deadline = Instant::now() + LOAD_TIMEOUT;
            while let Ok(Some(_)) = conn.next_event(Some(deadline)) {}
        }
        Ok(())
    }

    /// Opens any fixture page by path and query (for example `/foreign/workbench.html`).
    pub fn open_path(&self, path: &str) -> Result<TargetInfo, SimError> {
        let url = format!("http://127.0.0.1:{}{path}", self.server.port());
        let target = self.endpoint().new_target(&url)?;
        let ws = target
            .web_socket_debugger_url
            .as_deref()
            .unwrap_or_default();
        wait_loaded(&mut Connection::open(ws)?)?;
        Ok(target)
    }
}

/// Waits for the load event of the document the tab navigates to. A tab opens on
/// `about:blank` first; the promise made there dies with its context, so retry.
pub fn wait_loaded(conn: &mut Connection) -> Result<(), SimError> {
    let expression = "new Promise(r => (document.readyState === 'complete' && location.href !== 'about:blank') ? r(true) : addEventListener('load', () => r(true)))";
    let deadline = Instant::now() + LOAD_TIMEOUT;
    loop {
        let call = Evaluate {
            expression,
            return_by_value: true,
            await_promise: true,
            ..Default::default()
        };
        match conn.call(&call, deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => return Ok(()),
            Err(e) if e.is_context_gone() && Instant::now() < deadline => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
