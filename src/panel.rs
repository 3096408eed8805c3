//! Finding a window's agent panel in either known layout, and talking to it.
//!
//! Every probe runs in an isolated world of the frame that holds the panel: page
//! scripts cannot see or disturb it, and it sees the same DOM. The probe library
//! (`js/panel.js`) is installed once per world; each operation is then one
//! `Runtime.callFunctionOn` with JSON arguments.

use std::time::{Duration, Instant};

use cdp::methods::input::{DispatchKeyEvent, InsertText};
use cdp::methods::page::{CreateIsolatedWorld, GetFrameTree};
use cdp::methods::runtime::{CallArgument, CallFunctionOn, CallScript, Script};
use std::sync::{Arc, LazyLock};

use cdp::{CallId, CloseGroup, Connection, Endpoint};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Error;
use crate::profile::Profile;

const LIBRARY_SOURCE: &str = include_str!("js/panel.js");
/// Escaped once per process, for every window's installation.
static LIBRARY: LazyLock<Script> = LazyLock::new(|| Script::new(LIBRARY_SOURCE));
/// Runs an operation of this build and profile's library (`key`) in a world: every
/// angrav process shares the world, and each library stays under its own key in a
/// map kept in the order of use (see `js/panel.js`, which keeps only the latest few).
/// `angrav_missing` when the world does not hold it: a new document, a world no run of
/// this build and profile installed in yet, or one whose map let it go. Asked (op
/// `first`) before installing the library: a world outlives the connection that made
/// it (every connection asking a frame for the world named angrav gets the same one),
/// so a list or a status after the first in a window compiles and sends nothing more.
const RUN_OP: &str = "function (key, op, args) { const m = globalThis.__angravLibraries; const a = m && m.get(key); if (!a) return { angrav_missing: true }; m.delete(key); m.set(key, a); return a[op](args); }";
const WORLD: &str = "angrav";
/// What a page that does not answer a probe library call did not answer.
const LIBRARY_WHAT: &str = "the probe library";
/// The longest a single probe may take; they take a millisecond or two.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a page may take to answer a probe before it counts as `unresponsive`
/// (its main thread busy or frozen) where a state must be shown now: `list`,
/// `status`, a monitor.
pub const PROBE_WITHIN: Duration = Duration::from_secs(2);
/// A call may end this much after its command's deadline, so that a page answering
/// right at the deadline (its own timer) is heard rather than cut off.
const DEADLINE_GRACE: Duration = Duration::from_millis(50);

/// When a command must be done (its `--timeout`): every call to a page ends by then,
/// whether or not the page answers, as [`Error::Timeout`].
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    after: Duration,
}

impl Deadline {
    pub fn within(after: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + after,
            after,
        }
    }

    /// Whichever comes first.
    pub fn earliest(self, other: Deadline) -> Deadline {
        if other.at < self.at { other } else { self }
    }

    pub fn at(&self) -> Instant {
        self.at
    }

    /// The time left (zero once passed).
    pub fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The timeout error, naming what was still awaited.
    pub fn missed(&self, pending: impl Into<String>) -> Error {
        Error::Timeout {
            after: self.after,
            pending: pending.into(),
        }
    }
}

/// Sends `cmd` and waits for its reply at most `own`, and never past `deadline`.
/// The page not answering within its own bound is [`Error::Unresponsive`]; reaching
/// the deadline is [`Error::Timeout`].
fn call<C: cdp::Command>(
    conn: &mut Connection,
    cmd: &C,
    own: Duration,
    deadline: Option<Deadline>,
    what: &str,
) -> Result<C::Response, Error> {
    let sent = conn.send(cmd)?;
    wait(conn, sent, own, deadline, what)
}

/// As [`call`], for a call already sent (several may be sent before any is awaited).
fn wait<R: serde::de::DeserializeOwned>(
    conn: &mut Connection,
    sent: CallId<R>,
    own: Duration,
    deadline: Option<Deadline>,
    what: &str,
) -> Result<R, Error> {
    let left = deadline.map(|d| d.left() + DEADLINE_GRACE);
    let bound = left.map_or(own, |l| l.min(own));
    match conn.wait(sent, Instant::now() + bound) {
        Err(cdp::Error::Timeout { after, .. }) => Err(match deadline {
            Some(d) if left.is_some_and(|l| l <= own) => {
                d.missed(format!("the page to answer {what} (busy or frozen)"))
            }
            _ => Error::Unresponsive {
                what: what.to_string(),
                after,
            },
        }),
        other => Ok(other?),
    }
}

/// Where the panel lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// About 1.18 on: rendered in the `workbench.html` document itself.
    Current,
    /// Before: the `cascade-panel.html` iframe, in the window's process.
    LegacyFrame,
    /// The same iframe run out of process: a target of its own.
    LegacyTarget,
    /// 2.x: in the window's document, with the 2.x markers (`layout_v2`).
    V2,
}

impl Layout {
    pub const ALL: [Layout; 4] = [
        Layout::Current,
        Layout::LegacyFrame,
        Layout::LegacyTarget,
        Layout::V2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Current => "current",
            Layout::LegacyFrame => "legacy-frame",
            Layout::LegacyTarget => "legacy-target",
            Layout::V2 => "v2",
        }
    }

    pub fn parse(s: &str) -> Option<Layout> {
        Layout::ALL.into_iter().find(|l| l.name() == s)
    }

    /// A panel in the window's own document: which of the two, as its probe says.
    fn in_document(v2: bool) -> Layout {
        if v2 { Layout::V2 } else { Layout::Current }
    }
}

/// What the agent is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Idle,
    Thinking,
    AwaitingApproval,
    /// A question form (`ask_question`) waits for the user's answer: not an approval,
    /// never submitted by angrav (the snapshot's `question` says what it asks).
    AwaitingInput,
    Error,
    NoPanel,
    /// The panel shows, but its editor or its conversation cannot be read (the
    /// snapshot's `unreadable` names which): the markup changed beyond the profile.
    Unreadable,
    /// The page did not answer a probe in time: its main thread is busy or frozen,
    /// or its endpoint is lost. The window is still there.
    Unresponsive,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Thinking => "thinking",
            State::AwaitingApproval => "awaiting_approval",
            State::AwaitingInput => "awaiting_input",
            State::Error => "error",
            State::NoPanel => "no_panel",
            State::Unreadable => "unreadable",
            State::Unresponsive => "unresponsive",
        }
    }

    /// In a turn: working, or stopped for the user (an approval, a question form).
    /// Such an agent takes no prompt and no new conversation; it is not idle.
    pub fn in_turn(self) -> bool {
        matches!(
            self,
            State::Thinking | State::AwaitingApproval | State::AwaitingInput
        )
    }
}

/// One probe of the panel: everything `status` shows, from one round trip.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub state: State,
    #[serde(default)]
    pub layout: Option<Layout>,
    pub busy: bool,
    /// The agent's error text (`error`), or why the page is `unresponsive`.
    pub error: Option<String>,
    pub quota_resume: Option<String>,
    /// Every approval that shows, each on its own, in document order.
    pub approvals: Vec<Approval>,
    /// The first of `approvals` (for scripts that read one).
    #[serde(default)]
    pub approval: Option<Approval>,
    /// The question form that shows (state `awaiting_input`).
    #[serde(default)]
    pub question: Option<Box<Question>>,
    pub input_found: bool,
    pub input_editable: bool,
    pub user_messages: u32,
    pub agent_messages: u32,
    pub answer_blocks: u32,
    /// The last message is the user's: the agent has not answered it yet.
    pub turn_open: bool,
    /// The conversation's title, the mode (`Fast`, `Planning`) and the model, where
    /// the page shows them.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// The roles that could not be read in a panel that shows (`input`,
    /// `conversation`): the state is then `unreadable`.
    #[serde(default)]
    pub unreadable: Vec<String>,
    /// Which profile markers matched: why angrav reads the state as it does.
    pub markers: Vec<String>,
    /// Changes whenever anything above does (computed in the page).
    #[serde(default, skip_serializing)]
    pub key: String,
    /// No panel here, but a panel iframe exists: look again.
    #[serde(default, skip_serializing)]
    pub panel_frame: bool,
    /// From [`Panel::watch_quiet`]: how long ago the document last changed during the
    /// watch (`None`: it did not change at all).
    #[serde(default, skip_serializing)]
    pub quiet_ms: Option<u64>,
    /// The panel shows 2.x markers.
    #[serde(default, skip_serializing)]
    pub v2: bool,
    /// The probe ran in the window's top frame (not in a panel iframe).
    #[serde(default, skip_serializing)]
    pub top: bool,
    /// The presses angrav made in this page, newest last (by any angrav process:
    /// they are noted in the page): who answered an approval that went away.
    #[serde(default, skip_serializing)]
    pub answered: Vec<Answered>,
}

/// A press angrav made, as the page noted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    /// The approval's id (as the pressing library's profile saw it), the card's mark
    /// (the same for every library: see [`Approval::mark`]; none from a build before
    /// marks were noted), and the choice pressed.
    pub id: String,
    #[serde(default)]
    pub mark: Option<String>,
    pub label: String,
    /// Who had it pressed: `{"client": …}` or `{"rule": N}`.
    #[serde(default)]
    pub by: Value,
}

/// What a question form asks, and the answers it offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    pub text: Option<String>,
    pub options: Vec<String>,
}

impl Snapshot {
    /// A page that does not answer: the counts are those last seen (none when it
    /// never answered), `error` says why.
    pub fn unresponsive(last: Option<&Snapshot>, why: String) -> Snapshot {
        let (layout, user_messages, agent_messages, answer_blocks, turn_open) =
            last.map_or((None, 0, 0, 0, false), |s| {
                (
                    s.layout,
                    s.user_messages,
                    s.agent_messages,
                    s.answer_blocks,
                    s.turn_open,
                )
            });
        Snapshot {
            state: State::Unresponsive,
            layout,
            busy: false,
            error: Some(why),
            quota_resume: None,
            approvals: Vec::new(),
            input_found: false,
            input_editable: false,
            user_messages,
            agent_messages,
            answer_blocks,
            turn_open,
            unreadable: Vec::new(),
            markers: Vec::new(),
            key: "unresponsive".into(),
            panel_frame: false,
            quiet_ms: None,
            approval: None,
            question: None,
            title: None,
            mode: None,
            model: None,
            v2: false,
            top: false,
            answered: Vec::new(),
        }
    }
}

/// An approval the agent waits for, one card of the page: its identity, what kind,
/// and the choices it offers (its own: choices never cross cards).
///
/// The `id` is computed in the page from what the card shows (kind, command, choice
/// labels) and the mark it sets on the card's element when first seen: it stays while
/// those stay, and changes when any of them does or the card is another element (a
/// later turn's card alike, or the second of two). A press names the id it answers
/// ([`Panel::press_approval`]), so what is pressed is what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub kind: ApprovalKind,
    /// For a command: the command it would run (without the `<dir> $ ` prompt).
    pub command: Option<String>,
    pub choices: Vec<Choice>,
    /// Where it shows: in the `conversation`, elsewhere in the `panel`, or in a
    /// `popup` outside the panel.
    #[serde(rename = "where")]
    pub place: Place,
    /// The mark the page's card carries (`data-angrav-card`), set by the first angrav
    /// to see it, whatever its profile: what a press noted in the page names, since
    /// the id differs between profiles that tell other choices. None when read from
    /// the language server. Not reported.
    #[serde(default, skip_serializing)]
    pub mark: Option<String>,
}

impl Approval {
    /// An approval read elsewhere than in the page (the language server): its id
    /// comes from what it shows and `card`, what tells it from another alike (for the
    /// LS, the conversation and the step), as the page's comes from the card's mark.
    pub fn new(
        kind: ApprovalKind,
        command: Option<String>,
        labels: &[&str],
        place: Place,
        card: &str,
    ) -> Approval {
        let shown = json!([kind.name(), command, labels, card]).to_string();
        Approval {
            id: approval_id(&shown),
            kind,
            command,
            choices: labels
                .iter()
                .map(|l| Choice {
                    label: l.to_string(),
                })
                .collect(),
            place,
            mark: None,
        }
    }
}

/// FNV-1a over the UTF-16 code units of `shown`, as 8 hex digits, as the page's
/// `fnv` in `js/panel.js` makes its cards' ids.
fn approval_id(shown: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for unit in shown.encode_utf16() {
        h ^= u32::from(unit);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    Conversation,
    Panel,
    Popup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    /// `Run command?` with `Run` / `Reject`.
    Command,
    /// `Accept all` / `Reject all` (or `Accept` / `Reject`).
    FileEdits,
    /// `Allow Once`, `Allow This Conversation`, `Always Allow`, `Deny`.
    Permission,
    /// Planning mode's card (`Proceed`).
    Plan,
    /// A collapsed step that `requires input`: `Expand` shows the choice.
    Collapsed,
}

impl ApprovalKind {
    pub fn name(self) -> &'static str {
        match self {
            ApprovalKind::Command => "command",
            ApprovalKind::FileEdits => "file_edits",
            ApprovalKind::Permission => "permission",
            ApprovalKind::Plan => "plan",
            ApprovalKind::Collapsed => "collapsed",
        }
    }
}

/// Which control of an approval [`Panel::press_approval`] presses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press<'a> {
    /// The narrowest allowing choice offered (the profile's `approval_allow_labels`,
    /// in order: never an `Always …`).
    Allow,
    /// The choice this names: a label in any case, or words of exactly one label
    /// (`once`, `accept-all`).
    Named(&'a str),
    /// The first of the profile's `approval_deny_labels` offered.
    Deny,
    /// None: only expand a collapsed step (refused on any other card).
    Open,
}

/// What [`Panel::press_approval`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pressing {
    /// `label` pressed on `approval`; `key` is the state's key before the press.
    Pressed {
        label: String,
        approval: Approval,
        key: String,
    },
    /// The approval addressed was a collapsed step: it was expanded, and `approval`
    /// is what opened. Nothing in it was pressed: the caller has not seen it.
    Opened { approval: Approval },
    /// Nothing pressed, and why; `approvals`: those that show now. `changed`: the
    /// approval named no longer shows.
    Refused {
        state: State,
        approvals: Vec<Approval>,
        reason: String,
        changed: bool,
    },
}

/// What [`Panel::press_new_conversation`] did.
#[derive(Debug, Clone)]
pub enum Renewing {
    /// Clicked; `key` is the state's key before the click (see
    /// [`crate::approve::new_conversation`], which confirms it).
    Pressed { key: String },
    /// Nothing clicked: the chat was already empty.
    Empty,
    /// Nothing clicked: the agent is not idle or in error, or shows its busy marker.
    Refused(Box<Snapshot>),
}

/// How long a collapsed step may take to show its choice once expanded.
const EXPAND_WITHIN: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
struct PressReply {
    ok: bool,
    #[serde(default)]
    pressed: Option<String>,
    #[serde(default)]
    approval: Option<Approval>,
    #[serde(default)]
    opened: Option<Approval>,
    #[serde(default)]
    approvals: Vec<Approval>,
    #[serde(default)]
    changed: bool,
    #[serde(default)]
    state: Option<State>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    key: Option<String>,
}

/// One choice offered: its label, without a shortcut suffix, is what a later
/// operation looks for to press it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Agent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thoughts: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_blocks: Vec<CodeBlock>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeBlock {
    pub lang: String,
    pub code: String,
}

/// One sender's claim on a window's editor, for the whole type-submit-confirm sequence
/// of a prompt. It lives in the page (an attribute of the document element), so every
/// angrav process sees it; it is a lease, renewed by every editor operation, so the
/// claim of an angrav killed mid-sequence lapses by itself.
#[derive(Debug)]
pub struct Claim {
    token: String,
}

impl Claim {
    /// How long a claim lasts unless renewed.
    pub const LEASE: Duration = Duration::from_secs(5);
    /// How often a sender renews it while it waits.
    pub const RENEW_EVERY: Duration = Duration::from_secs(1);

    /// A token no other sender has: random per thread, with the process id.
    pub fn new() -> Claim {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Claim {
            token: format!("{:016x}-{}", h.finish(), std::process::id()),
        }
    }

    fn args(&self) -> Value {
        json!({ "token": self.token, "lease_ms": Claim::LEASE.as_millis() as u64 })
    }
}

impl Default for Claim {
    fn default() -> Self {
        Claim::new()
    }
}

/// The editor and the newest user message, as a sender checks them.
#[derive(Debug, Clone, Deserialize)]
pub struct Editor {
    /// The claim is still this sender's.
    pub claimed: bool,
    pub state: State,
    pub busy: bool,
    /// An editor was found (the rest says nothing about it otherwise).
    pub found: bool,
    pub editable: bool,
    /// What the editor holds, as the page renders it.
    pub text: String,
    /// User messages in the conversation, and the newest one's text.
    pub users: u32,
    pub last_user: Option<String>,
    /// What the page made of the Enter pressed since [`Panel::prepare`]: `None` if it
    /// did not reach the window (a handler stopped it).
    pub enter: Option<EnterSeen>,
    /// Changes whenever anything above but `claimed` and `enter` does.
    pub key: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct EnterSeen {
    /// A page handler called `preventDefault()`: the page took the key.
    pub prevented: bool,
}

/// Where a window's panel was found: the target holding its frame, and angrav's
/// isolated world there. The world outlives the connection and the process that made
/// it, so a later run probes the panel there with one call (see [`Panel::read_state`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelPlace {
    /// The window's target, or its out-of-process panel iframe's.
    pub ws_url: String,
    /// The world's execution context id in that target.
    pub context: i64,
    pub layout: Layout,
}

/// The window a panel belongs to: enough to find the panel again after a reload.
#[derive(Debug, Clone)]
pub struct WindowRef {
    pub endpoint: Endpoint,
    pub target_id: String,
    pub ws_url: String,
    /// The WebSocket URL of an out-of-process panel iframe, when the target list
    /// showed one: tried first, and looked up again when it fails.
    pub panel_target: Option<String>,
}

impl WindowRef {
    pub fn new(endpoint: Endpoint, target_id: String, ws_url: String) -> WindowRef {
        WindowRef {
            endpoint,
            target_id,
            ws_url,
            panel_target: None,
        }
    }

    /// The WebSocket URLs of this window's out-of-process iframes, as the browser's
    /// target list shows them: its child targets, and the frames of `frames` (ids).
    pub fn frame_targets(&self, frames: &[String]) -> Vec<String> {
        let Ok(targets) = self.endpoint.list() else {
            return Vec::new();
        };
        targets
            .into_iter()
            .filter(|t| {
                t.kind == "iframe"
                    && (t.parent_id.as_deref() == Some(&self.target_id) || frames.contains(&t.id))
            })
            .filter_map(|t| t.web_socket_debugger_url)
            .collect()
    }
}

pub struct Panel {
    window: WindowRef,
    layout: Option<Layout>,
    /// The connection of the target that holds the panel's frame (the window's own
    /// target unless the panel runs out of process).
    conn: Connection,
    context: i64,
    profile: Profile,
    /// Names this build's library with `profile` in the world (see [`RUN_OP`]).
    key: Value,
    /// Closing it stops this panel's connections, including those it opens later.
    group: Arc<CloseGroup>,
    /// Every call ends by then (see [`Panel::set_deadline`]).
    deadline: Option<Deadline>,
}

impl Panel {
    /// Finds the panel: in the window's document, then in a panel iframe of the same
    /// process, then in an out-of-process iframe target. Without one, the panel probes
    /// the window's main frame and reads `no_panel`.
    pub fn attach(window: &WindowRef, profile: &Profile) -> Result<(Panel, Snapshot), Error> {
        Panel::attach_in(window, profile, Arc::default(), None)
    }

    /// As [`Panel::attach`], with every connection in `group`, so that another thread
    /// can stop this panel at once, whatever it is waiting for; and every call, these
    /// and later ones, ending by `deadline` (see [`Panel::set_deadline`]).
    pub fn attach_in(
        window: &WindowRef,
        profile: &Profile,
        group: Arc<CloseGroup>,
        deadline: Option<Deadline>,
    ) -> Result<(Panel, Snapshot), Error> {
        Panel::find(window, profile, group, deadline, false)
    }

    /// The state and the layout, as `sessions list` shows them: the panel found and
    /// read by the same code as [`Panel::attach_in`], leaving out what only `status`
    /// shows (the conversation's title, mode and model), which costs a page more than
    /// the rest of the reading. Probed first where an earlier run found it (`known`);
    /// returned with where it is now (`None`: no panel).
    pub fn read_state(
        window: &WindowRef,
        profile: &Profile,
        deadline: Deadline,
        known: Option<&PanelPlace>,
    ) -> Result<(Snapshot, Option<PanelPlace>), Error> {
        if let Some(place) = known {
            let setup = &Setup::new(profile, true);
            match Panel::revisit(window, place, setup, deadline) {
                Ok(Some((snap, place))) => return Ok((snap, Some(place))),
                // A page that does not answer there would not answer the search either.
                Err(e) if e.is_unanswered() => return Err(e),
                // Gone from there (a reload, a new layout): found anew.
                _ => {}
            }
        }
        let (panel, snap) = Panel::find(window, profile, Arc::default(), Some(deadline), true)?;
        Ok((snap, panel.place()))
    }

    /// Probes the panel at `place` with one call, and says where it is: `None` when the
    /// world there is gone, holds no library of this build, or sees no panel.
    fn revisit(
        window: &WindowRef,
        place: &PanelPlace,
        setup: &Setup,
        deadline: Deadline,
    ) -> Result<Option<(Snapshot, PanelPlace)>, Error> {
        // Only this window's own target, or its panel iframe's as the target list shows
        // it now: a place never leads to another window's page.
        if place.ws_url != window.ws_url && window.panel_target.as_ref() != Some(&place.ws_url) {
            return Ok(None);
        }
        let mut conn = Connection::open(&place.ws_url)?;
        let Some(mut snap) = installed(&mut conn, place.context, setup, Some(deadline))? else {
            return Ok(None);
        };
        if snap.state == State::NoPanel {
            return Ok(None);
        }
        // Where the probe ran, not the layout remembered: a new document numbers its
        // worlds anew (from 1 after a cross-site navigation), so the id may now name
        // another frame's world of this window.
        let layout = if snap.top {
            Layout::in_document(snap.v2)
        } else if place.ws_url == window.ws_url {
            Layout::LegacyFrame
        } else {
            Layout::LegacyTarget
        };
        snap.layout = Some(layout);
        Ok(Some((
            snap,
            PanelPlace {
                layout,
                ..place.clone()
            },
        )))
    }

    /// [`Panel::attach_in`]; `lean`: the first probe leaves out the title, mode and model.
    fn find(
        window: &WindowRef,
        profile: &Profile,
        group: Arc<CloseGroup>,
        deadline: Option<Deadline>,
        lean: bool,
    ) -> Result<(Panel, Snapshot), Error> {
        let setup = &Setup::new(profile, lean);
        // Out of process, as the target list said: the panel is its own target.
        if let Some(ws) = &window.panel_target {
            match Panel::enter_target(window, ws, profile, setup, &group, deadline) {
                Ok(Some(found)) => return Ok(found),
                // The deadline passed: nothing else can be tried in time.
                Err(e @ Error::Timeout { .. }) => return Err(e),
                _ => {}
            }
        }
        let mut conn = Connection::open(&window.ws_url)?;
        group.add(conn.close_handle());
        // Asked together: the frame tree, for a panel iframe, and a world in the main
        // frame (whose id is the target's), where the current layouts have the panel.
        let tree = conn.send(&GetFrameTree {})?;
        let main_world = conn.send(&CreateIsolatedWorld {
            frame_id: &window.target_id,
            world_name: WORLD,
            grant_univeral_access: false,
        })?;
        let tree = wait(&mut conn, tree, CALL_TIMEOUT, deadline, "Page.getFrameTree")?.frame_tree;
        let what = "Page.createIsolatedWorld";
        let main_world = match wait(&mut conn, main_world, CALL_TIMEOUT, deadline, what) {
            Ok(w) if tree.frame.id == window.target_id => w.execution_context_id,
            _ => world(&mut conn, &tree.frame.id, deadline)?,
        };
        let frames: Vec<String> = tree
            .frames()
            .into_iter()
            .skip(1)
            .filter(|f| is_panel_frame(profile, &f.url, f.name.as_deref()))
            .map(|f| f.id.clone())
            .collect();
        let mut panel = Panel {
            window: window.clone(),
            layout: Some(Layout::LegacyFrame),
            conn,
            context: 0,
            profile: profile.clone(),
            key: setup.key.clone(),
            group,
            deadline,
        };
        // In process, the panel iframe's frame is ours to enter (out of process it
        // is remote here, and creating a world in it fails).
        for frame in &frames {
            if let Ok((ctx, snap)) = install(&mut panel.conn, frame, setup, deadline) {
                panel.context = ctx;
                if snap.state != State::NoPanel {
                    return Ok(panel.found(snap));
                }
            }
        }
        // The current layout: the panel is in the window's own document.
        let snap = library(&mut panel.conn, main_world, setup, deadline)?;
        panel.context = main_world;
        panel.layout = (snap.state != State::NoPanel).then_some(Layout::in_document(snap.v2));
        if panel.layout.is_some() || !snap.panel_frame {
            return Ok(panel.found(snap));
        }
        // A panel iframe, out of process, that the caller's target list did not show.
        for ws in window.frame_targets(&frames) {
            if let Some(found) =
                Panel::enter_target(window, &ws, profile, setup, &panel.group, deadline)?
            {
                return Ok(found);
            }
        }
        Ok(panel.found(snap))
    }

    /// Enters an out-of-process panel iframe; `None` when no panel is there.
    fn enter_target(
        window: &WindowRef,
        ws: &str,
        profile: &Profile,
        setup: &Setup,
        group: &Arc<CloseGroup>,
        deadline: Option<Deadline>,
    ) -> Result<Option<(Panel, Snapshot)>, Error> {
        let mut conn = Connection::open(ws)?;
        group.add(conn.close_handle());
        // The frame's id is its target's (the URL's last part): no frame tree to ask.
        let root = ws.rsplit('/').next().unwrap_or_default();
        let (context, snap) = install(&mut conn, root, setup, deadline)?;
        if snap.state == State::NoPanel {
            return Ok(None);
        }
        // Remembered, so that finding the panel again starts there.
        let window = WindowRef {
            panel_target: Some(ws.to_string()),
            ..window.clone()
        };
        let panel = Panel {
            window,
            layout: Some(Layout::LegacyTarget),
            conn,
            context,
            profile: profile.clone(),
            key: setup.key.clone(),
            group: group.clone(),
            deadline,
        };
        Ok(Some(panel.found(snap)))
    }

    /// Where this panel is, for [`Panel::read_state`] in a later run: `None` without one.
    fn place(&self) -> Option<PanelPlace> {
        let layout = self.layout?;
        let ws_url = match layout {
            // Entered through its iframe's target (see `enter_target`).
            Layout::LegacyTarget => self.window.panel_target.clone()?,
            _ => self.window.ws_url.clone(),
        };
        Some(PanelPlace {
            ws_url,
            context: self.context,
            layout,
        })
    }

    fn found(self, mut snap: Snapshot) -> (Panel, Snapshot) {
        snap.layout = self.layout;
        (self, snap)
    }

    /// From now on every call ends by `deadline` (`None`: by its own bound only).
    pub fn set_deadline(&mut self, deadline: Option<Deadline>) {
        self.deadline = deadline;
    }

    /// Finds this panel again (after a reload), with the same deadline.
    fn reattach(&self) -> Result<(Panel, Snapshot), Error> {
        Panel::attach_in(
            &self.window,
            &self.profile,
            self.group.clone(),
            self.deadline,
        )
    }

    /// The state now.
    pub fn probe(&mut self) -> Result<Snapshot, Error> {
        let v = self.op("probe", Value::Null, CALL_TIMEOUT)?;
        self.snapshot(v)
    }

    /// Returns as soon as the state differs from `key`, or after `timeout` (at the
    /// deadline at the latest) with the state then. The page tells us (a
    /// MutationObserver); nothing polls.
    pub fn watch(&mut self, key: &str, timeout: Duration) -> Result<Snapshot, Error> {
        let timeout = self.deadline.map_or(timeout, |d| d.left().min(timeout));
        let args = json!({ "key": key, "timeout_ms": timeout.as_millis() as u64 });
        let v = self.op("watch", args, timeout + CALL_TIMEOUT)?;
        self.snapshot(v)
    }

    /// As [`Panel::watch`], and also returns once the document has not changed at all
    /// (any DOM mutation) for `quiet` (the snapshot's `quiet_ms` says since when).
    pub fn watch_quiet(
        &mut self,
        key: &str,
        timeout: Duration,
        quiet: Duration,
    ) -> Result<Snapshot, Error> {
        let timeout = self.deadline.map_or(timeout, |d| d.left().min(timeout));
        let args = json!({ "key": key, "timeout_ms": timeout.as_millis() as u64,
            "quiet_ms": quiet.as_millis() as u64 });
        let v = self.op("watch", args, timeout + CALL_TIMEOUT)?;
        self.snapshot(v)
    }

    fn parse(&self, v: Value) -> Result<Snapshot, Error> {
        let mut snap: Snapshot = cdp::methods::from_value(v, "probe result")?;
        snap.layout = self.layout;
        Ok(snap)
    }

    fn snapshot(&mut self, v: Value) -> Result<Snapshot, Error> {
        let snap = self.parse(v)?;
        if snap.state == State::NoPanel && snap.panel_frame {
            // A panel iframe appeared (or finished loading) in the window: enter it.
            let (fresh, fresh_snap) = self.reattach()?;
            if fresh.layout.is_some() {
                *self = fresh;
                return Ok(fresh_snap);
            }
        }
        Ok(snap)
    }

    /// Every message of the conversation, oldest first.
    pub fn history(&mut self) -> Result<Vec<Message>, Error> {
        let v = self.op("history", Value::Null, CALL_TIMEOUT)?;
        if v.is_null() {
            return Err(Error::NoPanel);
        }
        Ok(cdp::methods::from_value(v, "conversation")?)
    }

    /// Claims the editor for one sender (see [`Claim`]), waiting up to `within` for
    /// another holder to release it or let it lapse; `false`: it did not.
    pub fn claim(&mut self, claim: &Claim, within: Duration) -> Result<bool, Error> {
        // The page stops waiting this much before `within`, so that its answer (the
        // editor is held) arrives before the deadline and says why, not a bare timeout.
        const ANSWER_BY: Duration = Duration::from_millis(300);
        let wait = within.saturating_sub(ANSWER_BY);
        let args = json!({ "token": claim.token, "lease_ms": Claim::LEASE.as_millis() as u64,
            "wait_ms": wait.as_millis() as u64 });
        let v = self.op("claim", args, within + CALL_TIMEOUT)?;
        Ok(v["ok"].as_bool() == Some(true))
    }

    /// Releases the claim, if it is still this one.
    pub fn release(&mut self, claim: &Claim) -> Result<(), Error> {
        self.op("release", json!({ "token": claim.token }), CALL_TIMEOUT)?;
        Ok(())
    }

    /// The editor as a sender sees it, renewing the claim.
    pub fn editor(&mut self, claim: &Claim) -> Result<Editor, Error> {
        let v = self.op("editor", claim.args(), CALL_TIMEOUT)?;
        Ok(cdp::methods::from_value(v, "editor state")?)
    }

    /// As [`Panel::editor`], once the editor differs from `key`, or after `timeout`.
    pub fn editor_watch(
        &mut self,
        claim: &Claim,
        key: &str,
        timeout: Duration,
    ) -> Result<Editor, Error> {
        let mut args = claim.args();
        args["key"] = key.into();
        args["timeout_ms"] = (timeout.as_millis() as u64).into();
        let v = self.op("editor_watch", args, timeout + CALL_TIMEOUT)?;
        Ok(cdp::methods::from_value(v, "editor state")?)
    }

    /// Focuses the editor with its content selected, and notes what the page makes
    /// of the next Enter; `Err` says why it cannot be typed in.
    pub fn prepare(&mut self, claim: &Claim) -> Result<Result<(), String>, Error> {
        let v = self.op("prepare", claim.args(), CALL_TIMEOUT)?;
        if v["ok"].as_bool() == Some(true) {
            return Ok(Ok(()));
        }
        Ok(Err(v["reason"]
            .as_str()
            .unwrap_or("the editor cannot be focused")
            .to_string()))
    }

    /// Types `text` as one insertion: it travels as a JSON string, verbatim.
    pub fn insert_text(&mut self, text: &str) -> Result<(), Error> {
        call(
            &mut self.conn,
            &InsertText { text },
            CALL_TIMEOUT,
            self.deadline,
            "Input.insertText",
        )?;
        Ok(())
    }

    /// Presses and releases Enter in the focused element.
    pub fn press_enter(&mut self) -> Result<(), Error> {
        self.press("Enter", 13, Some("\r"))
    }

    /// Presses and releases Backspace in the focused element (with the editor's content
    /// selected: deletes it as a user would, so the editor's own model follows).
    pub fn press_backspace(&mut self) -> Result<(), Error> {
        self.press("Backspace", 8, None)
    }

    fn press(&mut self, name: &str, code: u32, text: Option<&str>) -> Result<(), Error> {
        let bound = self.deadline.map_or(CALL_TIMEOUT, |d| {
            (d.left() + DEADLINE_GRACE).min(CALL_TIMEOUT)
        });
        let deadline = Instant::now() + bound;
        let mut key = DispatchKeyEvent {
            kind: "keyDown",
            key: name,
            code: name,
            windows_virtual_key_code: code,
            native_virtual_key_code: code,
            text,
            modifiers: 0,
        };
        let down = self.conn.send(&key)?;
        key.kind = "keyUp";
        key.text = None;
        let up = self.conn.send(&key)?;
        self.conn.wait(down, deadline)?;
        self.conn.wait(up, deadline)?;
        Ok(())
    }

    /// Clicks the send button if the editor still holds text; true if it did.
    pub fn click_send(&mut self) -> Result<bool, Error> {
        let v = self.op("click_send", Value::Null, CALL_TIMEOUT)?;
        Ok(v["clicked"].as_bool() == Some(true))
    }

    /// Clicks the new-conversation button, unless the agent is anything but idle or
    /// stopped on an error (checked in the same page call): see [`Renewing`].
    pub fn press_new_conversation(&mut self) -> Result<Renewing, Error> {
        let mut v = self.op("new_conversation", Value::Null, CALL_TIMEOUT)?;
        if v.get("refused").is_some() {
            return Ok(Renewing::Refused(Box::new(
                self.parse(v["refused"].take())?,
            )));
        }
        match (v["clicked"].as_bool(), v["key"].as_str()) {
            (Some(true), Some(key)) => Ok(Renewing::Pressed {
                key: key.to_string(),
            }),
            _ if v["marker"].is_string() && v["clicked"] == false => Ok(Renewing::Empty),
            _ => Err(Error::Failed(
                v["reason"]
                    .as_str()
                    .unwrap_or("cannot start a new conversation")
                    .into(),
            )),
        }
    }

    /// Presses one control (see [`Press`]) of the approval `id` names, checked and
    /// pressed in one page call: nothing is pressed unless an approval with that id
    /// still shows (`Refused { changed: true }`). Without an id, of the one approval
    /// showing: nothing is pressed when several show. A collapsed step is only
    /// expanded (`Opened`), whatever `press` asks. `by` (`{"client": …}` or `{"rule": N}`) is noted in the page with the
    /// press, for `approval_resolved` events. This is the one entry point of every
    /// press (`approve`, `deny`, policies, serve).
    pub fn press_approval(
        &mut self,
        id: Option<&str>,
        press: Press,
        by: &Value,
    ) -> Result<Pressing, Error> {
        let mut args = json!({ "expand_ms": EXPAND_WITHIN.as_millis() as u64, "id": id, "by": by });
        match press {
            Press::Allow => {}
            Press::Named(choice) => args["choice"] = choice.into(),
            Press::Deny => args["deny"] = true.into(),
            Press::Open => args["open"] = true.into(),
        }
        let v = self.op("press_approval", args, EXPAND_WITHIN * 2 + CALL_TIMEOUT)?;
        let r: PressReply = cdp::methods::from_value(v, "press result")?;
        Ok(match (r.ok, r.pressed, r.approval, r.key, r.opened) {
            (true, Some(label), Some(approval), Some(key), _) => Pressing::Pressed {
                label,
                approval,
                key,
            },
            (false, .., Some(approval)) => Pressing::Opened { approval },
            _ => Pressing::Refused {
                state: r.state.unwrap_or(State::AwaitingApproval),
                approvals: r.approvals,
                reason: r.reason.unwrap_or_else(|| "nothing pressed".into()),
                changed: r.changed,
            },
        })
    }

    /// Presses the visible busy marker (the cancel button): `Ok(key)`, the state's key
    /// before; `Err((state, why))` when the agent is not working.
    pub fn press_cancel(&mut self) -> Result<Result<String, (State, String)>, Error> {
        let v = self.op("cancel", Value::Null, CALL_TIMEOUT)?;
        let r: PressReply = cdp::methods::from_value(v, "cancel result")?;
        Ok(match (r.ok, r.key) {
            (true, Some(key)) => Ok(key),
            _ => Err((
                r.state.unwrap_or(State::Idle),
                r.reason
                    .unwrap_or_else(|| "the agent is not working".into()),
            )),
        })
    }

    /// Calls a function in the panel's isolated world with JSON arguments (for tests
    /// and diagnostics).
    pub fn call_function(&mut self, declaration: &str, args: &[Value]) -> Result<Value, Error> {
        let call_fn = CallFunctionOn {
            function_declaration: declaration,
            execution_context_id: Some(self.context),
            arguments: args.iter().map(|value| CallArgument { value }).collect(),
            return_by_value: true,
            await_promise: true,
            ..Default::default()
        };
        let what = "Runtime.callFunctionOn";
        Ok(call(&mut self.conn, &call_fn, CALL_TIMEOUT, self.deadline, what)?.into_value()?)
    }

    /// Runs an operation of the library. A reload or navigation destroys the world:
    /// find the panel again (its layout may have changed) and retry once.
    fn op(&mut self, op: &str, args: Value, timeout: Duration) -> Result<Value, Error> {
        match self.op_once(op, &args, timeout) {
            // An out-of-process panel is a target of its own, gone with its document.
            Err(e)
                if e.is_context_gone()
                    || (self.layout == Some(Layout::LegacyTarget) && e.is_closed()) =>
            {
                let (fresh, _) = self
                    .reattach()
                    .map_err(|again| if e.is_closed() { e } else { again })?;
                *self = fresh;
                self.op_once(op, &args, timeout)
            }
            other => other,
        }
    }

    fn op_once(&mut self, op: &str, args: &Value, timeout: Duration) -> Result<Value, Error> {
        let op_value = Value::from(op);
        let call_fn = CallFunctionOn {
            function_declaration: RUN_OP,
            execution_context_id: Some(self.context),
            arguments: vec![
                CallArgument { value: &self.key },
                CallArgument { value: &op_value },
                CallArgument { value: args },
            ],
            return_by_value: true,
            await_promise: true,
            ..Default::default()
        };
        let what = format!("'{op}'");
        let v = call(&mut self.conn, &call_fn, timeout, self.deadline, &what)?.into_value()?;
        if v.get("angrav_missing").is_some() {
            return Err(Error::ContextGone);
        }
        Ok(v)
    }
}

fn is_panel_frame(profile: &Profile, url: &str, name: Option<&str>) -> bool {
    profile
        .panel_frame_url
        .iter()
        .any(|u| url.contains(u.as_str()))
        || name.is_some_and(|n| profile.panel_frame_name.iter().any(|x| x == n))
}

/// Creates angrav's isolated world in `frame`, installs the probe library there, and
/// returns the world's context id with a first probe.
fn install(
    conn: &mut Connection,
    frame: &str,
    setup: &Setup,
    deadline: Option<Deadline>,
) -> Result<(i64, Snapshot), Error> {
    let context = world(conn, frame, deadline)?;
    Ok((context, library(conn, context, setup, deadline)?))
}

/// Creates angrav's isolated world in `frame`: its context id.
fn world(conn: &mut Connection, frame: &str, deadline: Option<Deadline>) -> Result<i64, Error> {
    let world = CreateIsolatedWorld {
        frame_id: frame,
        world_name: WORLD,
        grant_univeral_access: false,
    };
    let what = "Page.createIsolatedWorld";
    Ok(call(conn, &world, CALL_TIMEOUT, deadline, what)?.execution_context_id)
}

/// How the probe library is installed: with the profile, its first probe lean or
/// not, under a key naming this build's library with this profile.
struct Setup<'a> {
    profile: &'a Profile,
    lean: Value,
    key: Value,
}

impl Setup<'_> {
    fn new(profile: &Profile, lean: bool) -> Setup<'_> {
        use std::hash::Hasher;
        // The library's part of the hash, once per process.
        static LIBRARY_HASH: LazyLock<std::hash::DefaultHasher> = LazyLock::new(|| {
            let mut h = std::hash::DefaultHasher::new();
            h.write(LIBRARY_SOURCE.as_bytes());
            h
        });
        let mut h = LIBRARY_HASH.clone();
        h.write(&serde_json::to_vec(profile).expect("a profile serialises"));
        Setup {
            profile,
            lean: Value::Bool(lean),
            key: Value::String(format!("{:016x}", h.finish())),
        }
    }
}

/// The probe library's first probe in the world `context` (one round trip when the
/// world has it already, else installed with the first probe in a second).
fn library(
    conn: &mut Connection,
    context: i64,
    setup: &Setup,
    deadline: Option<Deadline>,
) -> Result<Snapshot, Error> {
    if let Some(snap) = installed(conn, context, setup, deadline)? {
        return Ok(snap);
    }
    let profile = setup.profile.to_json();
    let library = CallScript {
        function_declaration: &LIBRARY,
        execution_context_id: context,
        arguments: [&profile, &setup.lean, &setup.key]
            .into_iter()
            .map(|value| CallArgument { value })
            .collect(),
        return_by_value: true,
    };
    let snap = call(conn, &library, CALL_TIMEOUT, deadline, LIBRARY_WHAT)?.into_value()?;
    Ok(cdp::methods::from_value(snap, "probe result")?)
}

/// The first probe in the world `context` if it holds the library of this build and
/// profile already; `None` if it does not.
fn installed(
    conn: &mut Connection,
    context: i64,
    setup: &Setup,
    deadline: Option<Deadline>,
) -> Result<Option<Snapshot>, Error> {
    let first = Value::from("first");
    let installed = CallFunctionOn {
        function_declaration: RUN_OP,
        execution_context_id: Some(context),
        arguments: vec![
            CallArgument { value: &setup.key },
            CallArgument { value: &first },
            CallArgument { value: &setup.lean },
        ],
        return_by_value: true,
        ..Default::default()
    };
    let snap = call(conn, &installed, CALL_TIMEOUT, deadline, LIBRARY_WHAT)?.into_value()?;
    if snap.get("angrav_missing").is_some() {
        return Ok(None);
    }
    Ok(Some(cdp::methods::from_value(snap, "probe result")?))
}
