//! Many machines, one console: two simulated browsers with an `angrav serve` each,
//! asked together (`--server A,B`) and followed by a hub (`serve --upstream`).

mod common;

use std::process::{Output, Stdio};
use std::sync::OnceLock;

use angrav::panel::{Layout, Panel, WindowRef};
use angrav::profile::Profile;
use angrav::sim::{Simulator, Window};
use cdp::TargetInfo;
use common::serve::{FLIP_BUSY, PATIENCE, Serve, dashboard, evaluate, row, start_at};
use common::{Reaped, sim};
use serde_json::{Value, json};

/// The second machine's browser (the first is `common::sim`).
fn other() -> &'static Simulator {
    static SIM: OnceLock<Simulator> = OnceLock::new();
    SIM.get_or_init(|| Simulator::start().expect("a second Chromium"))
}

/// Windows of one test in one browser, closed when dropped.
struct Opened {
    sim: &'static Simulator,
    targets: Vec<TargetInfo>,
}

impl Opened {
    fn in_(sim: &'static Simulator, windows: &[Window]) -> Opened {
        let targets = windows
            .iter()
            .map(|w| sim.open(w).expect("open a simulated window"))
            .collect();
        Opened { sim, targets }
    }

    fn id(&self, i: usize) -> &str {
        &self.targets[i].id
    }

    fn panel(&self, i: usize) -> Panel {
        let t = &self.targets[i];
        let ws = t.web_socket_debugger_url.clone().expect("a ws URL");
        let window = WindowRef::new(self.sim.endpoint().clone(), t.id.clone(), ws);
        Panel::attach(&window, &Profile::default())
            .expect("attach")
            .0
    }

    /// A list the simulated agent keeps in the page (`sim-received`, `sim-pressed`).
    fn kept(&self, i: usize, which: &str) -> Vec<String> {
        let f = format!("function () {{ return document.getElementById('{which}').textContent; }}");
        let v = self.panel(i).call_function(&f, &[]).expect("read the page");
        serde_json::from_str(v.as_str().expect("text")).expect("a JSON list")
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        for t in &self.targets {
            let _ = self.sim.close(&t.id);
        }
    }
}

/// `NAME=http://127.0.0.1:PORT/?token=TOKEN`.
fn spec(name: &str, serve: &Serve) -> String {
    format!(
        "{name}=http://127.0.0.1:{}/?token={}",
        serve.port, serve.token
    )
}

/// `angrav --server SERVERS ARGS`, no browser of its own, no token but the URLs'.
fn through(servers: &str, args: &[&str]) -> Output {
    common::angrav_bin()
        .args(["--server", servers])
        .args(args)
        .env_remove("ANGRAV_CDP")
        .env_remove("ANGRAV_TOKEN")
        .env_remove("ANGRAV_SERVERS")
        .env_remove("ANGRAV_SERVER")
        .output()
        .expect("run angrav --server")
}

fn json_of(o: &Output) -> Value {
    serde_json::from_str(&common::stdout(o)).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            common::stdout(o),
            common::stderr(o)
        )
    })
}

#[test]
fn the_cli_asks_two_serves_as_one_and_says_which_is_gone() {
    let a = Opened::in_(
        sim(),
        &[
            Window::new(Layout::Current, "cli-a1"),
            Window::new(Layout::Current, "cli-a2").start("approval"),
        ],
    );
    let b = Opened::in_(
        other(),
        &[
            Window::new(Layout::LegacyFrame, "cli-b1"),
            Window::new(Layout::Current, "cli-b2").start("approval"),
        ],
    );
    let serve_a = start_at(sim().endpoint().label(), "cli-a", &[], &[]);
    let serve_b = start_at(other().endpoint().label(), "cli-b", &[], &[]);
    let both = format!("{},{}", spec("a", &serve_a), spec("b", &serve_b));

    // One list, each row with its host.
    let o = through(&both, &["--json", "sessions", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let list = json_of(&o);
    for (w, host) in [(&a, "a"), (&b, "b")] {
        for i in 0..2 {
            assert_eq!(row(&list, w.id(i))["session"]["host"], host, "{list}");
        }
    }
    assert_eq!(row(&list, b.id(0))["state"], "idle");
    assert_eq!(row(&list, b.id(1))["state"], "awaiting_approval");
    // In text, ids are written host/ID, as they may be given.
    let o = through(&both, &["sessions", "list"]);
    let text = common::stdout(&o);
    assert!(text.contains(&format!("b/{}", &b.id(0)[..6])), "{text}");

    // A prompt reaches the machine that has the chat: named by prefix, or host/ID.
    let o = through(&both, &["prompt", "--session", &b.id(0)[..8], "to b"]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let named = format!("a/{}", &a.id(0)[..8]);
    let o = through(&both, &["--json", "prompt", "--session", &named, "to a"]);
    assert_eq!(json_of(&o)["session"]["host"], "a");
    assert_eq!(b.kept(0, "sim-received"), ["to b"]);
    assert_eq!(a.kept(0, "sim-received"), ["to a"]);
    // Both turns awaited at once, each on its own machine.
    let o = through(
        &both,
        &[
            "--json",
            "sessions",
            "wait",
            "--session",
            b.id(0),
            "--session",
            &named,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let report = json_of(&o);
    assert_eq!(row(&report["sessions"], a.id(0))["session"]["host"], "a");
    assert_eq!(row(&report["sessions"], b.id(0))["status"], "done");
    // A prompt per chat, each sent to its own machine, one report.
    let (ta, tb) = (
        format!("{named}=one for a"),
        format!("{}=one for b", &b.id(0)[..8]),
    );
    let o = through(
        &both,
        &["--json", "sessions", "run", "--task", &ta, "--task", &tb],
    );
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let report = json_of(&o);
    assert_eq!(row(&report["sessions"], b.id(0))["session"]["host"], "b");
    assert_eq!(b.kept(0, "sim-received"), ["to b", "one for b"]);
    let o = through(&both, &["--json", "output", "last", "--session", &named]);
    let answer = json_of(&o)["content"].as_str().unwrap().to_string();
    assert!(answer.contains("one for a"), "{answer}");
    // Several chats' approvals answered at once, each on its machine.
    let denied = format!("a/{}", a.id(1));
    let o = through(&both, &["--json", "sessions", "deny", "--session", &denied]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    assert_eq!(json_of(&o)["sessions"][0]["session"]["host"], "a");
    assert_eq!(a.kept(1, "sim-pressed"), ["Reject"]);

    // An approval is answered on its own machine only.
    let o = through(&both, &["--json", "approve", "--session", b.id(1)]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    assert_eq!(json_of(&o)["pressed"], "Run");
    assert_eq!(b.kept(1, "sim-pressed"), ["Run"]);

    // A watch over both: each serve's chats, then an event from the second machine.
    let mut watch = Reaped(
        common::angrav_bin()
            .args(["--server", &both, "--json", "sessions", "watch"])
            .args(["--session", a.id(0), "--session", b.id(0), "--count", "1"])
            .env_remove("ANGRAV_CDP")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run angrav"),
    );
    let lines = common::lines(watch.0.stdout.take().expect("piped"));
    let mut snapshots = Vec::new();
    while snapshots.len() < 2 {
        let l: Value = serde_json::from_str(&lines.recv_timeout(PATIENCE).unwrap()).unwrap();
        assert_eq!(l["type"], "snapshot", "{l}");
        snapshots.push(l["session"]["host"].as_str().unwrap().to_string());
    }
    snapshots.sort();
    assert_eq!(snapshots, ["a", "b"]);
    b.panel(0).call_function(FLIP_BUSY, &[]).unwrap();
    let l: Value = serde_json::from_str(&lines.recv_timeout(PATIENCE).unwrap()).unwrap();
    assert_eq!(
        (&l["type"], &l["current"], &l["session"]["host"]),
        (&json!("state_change"), &json!("thinking"), &json!("b")),
        "{l}"
    );
    assert_eq!(watch.0.wait().unwrap().code(), Some(0));
    b.panel(0).call_function(FLIP_BUSY, &[]).unwrap();

    // One serve stopped: its sessions are reported unreachable, the other answers.
    let mut serve_b = serve_b;
    let _ = serve_b.child.0.kill();
    let _ = serve_b.child.0.wait();
    let o = through(&both, &["--json", "sessions", "list"]);
    assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
    let list = json_of(&o);
    assert_eq!(row(&list, a.id(0))["session"]["host"], "a");
    let gone: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["host"] == "b")
        .collect();
    assert_eq!(gone.len(), 1, "{list}");
    assert_eq!(gone[0]["state"], "unreachable");
    assert!(
        common::stderr(&o).contains("unreachable (b)"),
        "{}",
        common::stderr(&o)
    );
    let o = through(&both, &["status", "--session", a.id(0)]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let o = through(&both, &["status", "--session", b.id(0)]);
    assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
    assert!(common::stderr(&o).contains("could not be reached"));
}

#[test]
fn a_hub_over_two_serves_lists_streams_and_forwards() {
    let a = Opened::in_(sim(), &[Window::new(Layout::Current, "hub-a1")]);
    let b = Opened::in_(
        other(),
        &[
            Window::new(Layout::LegacyTarget, "hub-b1"),
            Window::new(Layout::Current, "hub-b2").start("approval"),
        ],
    );
    let serve_a = start_at(sim().endpoint().label(), "hub-a", &[], &[]);
    let serve_b = start_at(other().endpoint().label(), "hub-b", &[], &[]);
    let (up_a, up_b) = (spec("a", &serve_a), spec("b", &serve_b));
    let hub = start_at("", "hub", &["--upstream", &up_a, "--upstream", &up_b], &[]);
    let mut c = hub.connect();

    // Every upstream's sessions, each with its host; no upstream's token anywhere.
    let table = c.call("subscribe", json!({}));
    let rows = &table["sessions"];
    assert_eq!(row(rows, a.id(0))["session"]["host"], "a", "{table}");
    assert_eq!(row(rows, b.id(0))["session"]["host"], "b");
    assert_eq!(row(rows, b.id(1))["state"], "awaiting_approval");
    let listed = c.call("sessions.list", json!({}));
    assert_eq!(row(&listed, b.id(1))["session"]["host"], "b");
    for secret in [&serve_a.token, &serve_b.token] {
        assert!(!table.to_string().contains(secret.as_str()));
        assert!(!listed.to_string().contains(secret.as_str()));
    }

    // A prompt forwarded to the machine that has the chat; its turn streamed here.
    let named = format!("a/{}", &a.id(0)[..8]);
    let sent = c.call("prompt", json!({ "session": named, "text": "via the hub" }));
    assert_eq!(sent["session"]["host"], "a", "{sent}");
    let busy = c.event(a.id(0), "thinking");
    assert_eq!(busy["session"]["host"], "a");
    let idle = c.event(a.id(0), "idle");
    assert!(idle["seq"].as_u64() > busy["seq"].as_u64());
    assert_eq!(a.kept(0, "sim-received"), ["via the hub"]);
    assert_eq!(b.kept(0, "sim-received"), Vec::<String>::new());

    // An approval answered on its own machine, that card only.
    let pressed = c.call("approve", json!({ "session": b.id(1) }));
    assert_eq!(pressed["pressed"], "Run", "{pressed}");
    assert_eq!(b.kept(1, "sim-pressed"), ["Run"]);

    // The CLI through the hub sees both machines.
    let o = through(&spec("hub", &hub), &["--json", "sessions", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let list = json_of(&o);
    assert_eq!(row(&list, a.id(0))["session"]["host"], "a");
    assert_eq!(row(&list, b.id(0))["session"]["host"], "b");

    // One upstream stopped: endpoint_lost, its sessions unresponsive; the other's fine.
    let mut serve_b = serve_b;
    let _ = serve_b.child.0.kill();
    let _ = serve_b.child.0.wait();
    let lost = loop {
        let v = c.read();
        if v["event"]["type"] == "endpoint_lost" {
            break v["event"].clone();
        }
    };
    assert_eq!(lost["endpoint"], "b", "{lost}");
    let gone = c.event(b.id(0), "unresponsive");
    assert!(gone["error"].as_str().unwrap().contains("b"), "{gone}");
    let status = c.call("status", json!({ "session": a.id(0) }));
    assert_eq!(status["state"], "idle");
}

/// `Emulation.setDeviceMetricsOverride`: the page laid out as on a phone.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PhoneScreen {
    width: u32,
    height: u32,
    device_scale_factor: f64,
    mobile: bool,
}

impl cdp::methods::Command for PhoneScreen {
    const METHOD: &'static str = "Emulation.setDeviceMetricsOverride";
    type Response = cdp::methods::Empty;
}

/// Waits in `page` until `condition` (a JS function body's expression) is truthy
/// after some change of the page, and gives its value.
fn until(page: &mut cdp::Connection, condition: &str) -> Value {
    let expression = format!(
        "new Promise((resolve) => {{
          const check = () => {{ const v = ({condition}); if (v) {{ resolve(v); return true; }} return false; }};
          if (check()) return;
          const obs = new MutationObserver(() => {{ if (check()) obs.disconnect(); }});
          obs.observe(document.body, {{ subtree: true, childList: true, characterData: true, attributes: true }});
        }})"
    );
    evaluate(page, &expression)
}

/// What the card of `target` says once it pressed something.
fn pressed_on(page: &mut cdp::Connection, target: &str) -> Value {
    let note =
        format!("document.querySelector('.row[data-target=\"{target}\"] .said').textContent");
    until(page, &format!("{note}.startsWith('pressed') && {note}"))
}

#[test]
fn the_hub_dashboard_on_a_phone_shows_every_host_notifies_once_and_presses_that_card() {
    let a = Opened::in_(
        sim(),
        &[
            Window::new(Layout::Current, "phone-a1").start("approval"),
            Window::new(Layout::Current, "phone-a2"),
        ],
    );
    let b = Opened::in_(
        other(),
        &[Window::new(Layout::LegacyFrame, "phone-b1").scenario("approval")],
    );
    let serve_a = start_at(sim().endpoint().label(), "phone-a", &[], &[]);
    let serve_b = start_at(other().endpoint().label(), "phone-b", &[], &[]);
    let (up_a, up_b) = (spec("a", &serve_a), spec("b", &serve_b));
    let hub = start_at(
        "",
        "phone-hub",
        &["--upstream", &up_a, "--upstream", &up_b],
        &[],
    );
    let (_tab, mut page) = dashboard(&hub);
    let phone = PhoneScreen {
        width: 390,
        height: 844,
        device_scale_factor: 3.0,
        mobile: true,
    };
    page.call(&phone, PATIENCE).expect("a phone's screen");
    // Notifications granted, and counted by the page.
    evaluate(
        &mut page,
        "(function () { window.shown = [];
          window.Notification = function (title, o) { window.shown.push(title); };
          window.Notification.permission = 'granted';
          window.Notification.requestPermission = () => Promise.resolve('granted');
          return true; })()",
    );
    let cards = format!(
        "{}.every((id) => document.querySelector('.row[data-target=\"' + id + '\"] .state'))",
        json!([a.id(0), a.id(1), b.id(0)])
    );
    until(&mut page, &cards);
    let layout = evaluate(
        &mut page,
        "(function () { return { hosts: Array.from(document.querySelectorAll('section.host h2')).map((h) => h.textContent),
          wide: document.documentElement.scrollWidth, width: innerWidth,
          small: Array.from(document.querySelectorAll('button')).filter((b) => b.offsetParent && b.getBoundingClientRect().height < 44).length }; })()",
    );
    let hosts = layout["hosts"].as_array().unwrap();
    assert!(
        hosts.contains(&json!("a")) && hosts.contains(&json!("b")),
        "{layout}"
    );
    assert_eq!(layout["width"], 390, "{layout}");
    assert!(
        layout["wide"].as_u64() <= layout["width"].as_u64(),
        "{layout}"
    );
    assert_eq!(layout["small"], 0, "buttons a thumb can hit: {layout}");

    // An approval on the second machine: one notification, however the page is updated.
    let mut c = hub.connect();
    c.call("prompt", json!({ "session": b.id(0), "text": "ask me" }));
    let waiting = format!(
        "document.querySelector('.row[data-target=\"{}\"] .state').textContent === 'awaiting_approval'",
        b.id(0)
    );
    until(&mut page, &waiting);
    let asked = |page: &mut cdp::Connection| {
        evaluate(
            page,
            "window.shown.filter((t) => t.endsWith('awaiting approval')).length",
        )
    };
    assert_eq!(asked(&mut page), 1);
    // Its card's Run presses that approval only (the first machine's waits on).
    let press = format!(
        "(function () {{ const row = document.querySelector('.row[data-target=\"{}\"]');
          row.querySelector('button[data-choice=\"Run\"]').click(); return true; }})()",
        b.id(0)
    );
    evaluate(&mut page, &press);
    assert_eq!(pressed_on(&mut page, b.id(0)), "pressed 'Run'");
    assert_eq!(b.kept(0, "sim-pressed"), ["Run"]);
    assert_eq!(a.kept(0, "sim-pressed"), Vec::<String>::new());
    let done = format!(
        "document.querySelector('.row[data-target=\"{}\"] .state').textContent === 'idle'",
        b.id(0)
    );
    until(&mut page, &done);
    assert_eq!(asked(&mut page), 1, "one notification per approval");
    // The first machine's approval was there before: no notification, 'since start'.
    let since = format!(
        "document.querySelector('.row[data-target=\"{}\"] .since').textContent",
        a.id(0)
    );
    assert_eq!(evaluate(&mut page, &since), "since start");
    // The key 'a' on the focused card approves that card's chat only.
    let key = format!(
        "(function () {{ const row = document.querySelector('.row[data-target=\"{}\"]');
          row.focus(); row.dispatchEvent(new KeyboardEvent('keydown', {{ key: 'a', bubbles: true }}));
          return document.activeElement === row; }})()",
        a.id(0)
    );
    assert_eq!(evaluate(&mut page, &key), true);
    assert_eq!(pressed_on(&mut page, a.id(0)), "pressed 'Run'");
    assert_eq!(a.kept(0, "sim-pressed"), ["Run"]);
    assert_eq!(b.kept(0, "sim-pressed"), ["Run"]);
    // The timeline has the second machine's events, and filters by session.
    let timeline = evaluate(
        &mut page,
        &format!(
            "(function () {{ const f = document.getElementById('filter'); f.value = 'b/{}';
              f.dispatchEvent(new Event('change'));
              return Array.from(document.querySelectorAll('#events li')).map((l) => l.textContent); }})()",
            b.id(0)
        ),
    );
    let lines = timeline.as_array().unwrap();
    assert!(!lines.is_empty(), "{timeline}");
    assert!(
        lines.iter().all(|l| l
            .as_str()
            .unwrap()
            .contains(&format!("b/{}", &b.id(0)[..6]))),
        "{timeline}"
    );
}

/// `approve --approval ID` through the list presses that card on the machine named,
/// never the same card on the other; an id that no longer shows presses nothing.
#[test]
fn approve_by_id_through_the_list_reaches_the_right_machine() {
    let a = Opened::in_(
        sim(),
        &[Window::new(Layout::Current, "id-a").start("approval")],
    );
    let b = Opened::in_(
        other(),
        &[Window::new(Layout::V2, "id-b").start("approval")],
    );
    let serve_a = start_at(sim().endpoint().label(), "id-a", &[], &[]);
    let serve_b = start_at(other().endpoint().label(), "id-b", &[], &[]);
    let both = format!("{},{}", spec("a", &serve_a), spec("b", &serve_b));
    let (on_a, on_b) = (format!("a/{}", a.id(0)), format!("b/{}", b.id(0)));
    let shown = |session: &str| {
        let o = through(&both, &["--json", "status", "--session", session]);
        assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
        let s = json_of(&o);
        assert_eq!(s["approvals"].as_array().map(Vec::len), Some(1), "{s}");
        s["approvals"][0]["id"].as_str().unwrap().to_string()
    };
    let (id_a, id_b) = (shown(&on_a), shown(&on_b));

    let o = through(
        &both,
        &["--json", "approve", "--approval", &id_b, "--session", &on_b],
    );
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let r = json_of(&o);
    assert_eq!(
        (&r["pressed"], &r["approval"]["id"], &r["session"]["host"]),
        (&json!("Run"), &json!(id_b), &json!("b")),
        "{r}"
    );
    assert_eq!(b.kept(0, "sim-pressed"), ["Run"]);
    assert!(a.kept(0, "sim-pressed").is_empty());

    // The card on a changes under the id read before: nothing is pressed.
    a.panel(0)
        .call_function(
            "function () { document.querySelector('.approval-card pre').textContent = 'rm -rf ~'; }",
            &[],
        )
        .unwrap();
    let o = through(
        &both,
        &["--json", "approve", "--approval", &id_a, "--session", &on_a],
    );
    assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
    let err: Value = serde_json::from_str(&common::stderr(&o)).unwrap();
    assert_eq!(err["error"]["code"], "approval_changed", "{err}");
    assert!(a.kept(0, "sim-pressed").is_empty());
    assert_ne!(shown(&on_a), id_a);
}

/// Sends `signal` (`STOP`, `CONT`) to a serve.
fn signal(serve: &Serve, signal: &str) {
    common::signal(serve.child.0.id(), signal);
}

/// A serve that hangs with its connections open (stopped, not closed) is lost to the
/// hub and to a watch over it, its chats unresponsive; once it runs again it is back.
#[test]
fn a_hung_upstream_is_lost_then_back() {
    let a = Opened::in_(sim(), &[Window::new(Layout::Current, "hung-a1")]);
    let b = Opened::in_(
        other(),
        &[
            Window::new(Layout::Current, "hung-b1"),
            Window::new(Layout::V2, "hung-b2").start("approval"),
        ],
    );
    let serve_a = start_at(sim().endpoint().label(), "hung-a", &[], &[]);
    let serve_b = start_at(other().endpoint().label(), "hung-b", &[], &[]);
    let (up_a, up_b) = (spec("a", &serve_a), spec("b", &serve_b));
    let hub = start_at(
        "",
        "hung-hub",
        &["--upstream", &up_a, "--upstream", &up_b],
        &[],
    );
    let mut c = hub.connect();
    let table = c.call("subscribe", json!({}));
    assert_eq!(
        row(&table["sessions"], b.id(1))["state"],
        "awaiting_approval"
    );
    let mut watch = Reaped(
        common::angrav_bin()
            .args(["--server", &format!("{up_a},{up_b}"), "--json"])
            .args([
                "sessions",
                "watch",
                "--session",
                a.id(0),
                "--session",
                b.id(0),
            ])
            .env_remove("ANGRAV_CDP")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run angrav"),
    );
    let lines = common::lines(watch.0.stdout.take().expect("piped"));
    let watched = |kind: &str| loop {
        let l: Value = serde_json::from_str(&lines.recv_timeout(PATIENCE).unwrap()).unwrap();
        if l["type"] == kind {
            return l;
        }
    };
    let endpoint = |c: &mut common::serve::Client, kind: &str| loop {
        let v = c.read();
        if v["event"]["type"] == kind {
            return v["event"].clone();
        }
    };
    // The watch has read both serves before b hangs.
    for _ in 0..2 {
        watched("snapshot");
    }

    signal(&serve_b, "STOP");
    let lost = endpoint(&mut c, "endpoint_lost");
    assert_eq!(lost["endpoint"], "b", "{lost}");
    for i in 0..2 {
        let gone = c.event(b.id(i), "unresponsive");
        assert!(gone["error"].as_str().unwrap().contains("b"), "{gone}");
        assert_eq!(gone["reason"], "endpoint b lost", "{gone}");
    }
    let listed = c.call("sessions.list", json!({}));
    assert_eq!(row(&listed, a.id(0))["state"], "idle", "{listed}");
    assert_eq!(row(&listed, b.id(0))["state"], "unresponsive", "{listed}");
    assert_eq!(watched("endpoint_lost")["endpoint"], "b");

    signal(&serve_b, "CONT");
    let back = endpoint(&mut c, "endpoint_back");
    assert_eq!(back["endpoint"], "b", "{back}");
    assert_eq!(c.event(b.id(0), "idle")["previous"], "unresponsive");
    c.event(b.id(1), "awaiting_approval");
    assert_eq!(watched("endpoint_back")["endpoint"], "b");
}

/// A serve that upgrades every connection, reads its first request and never answers
/// it (hung between the two); its address, and what keeps it hung until dropped.
fn mute_serve() -> (String, crossbeam_channel::Sender<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let address = listener.local_addr().unwrap().to_string();
    let (hold, held) = crossbeam_channel::bounded::<()>(0);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let held = held.clone();
            std::thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(stream.expect("a connection")) else {
                    return;
                };
                let _ = ws.read();
                let _ = held.recv();
            });
        }
    });
    (address, hold)
}

/// A serve whose port takes the connection but never answers it (stopped, or
/// something else holds the port) is unreachable to a list at once, naming why, not
/// after the command's whole --timeout; the other serve's chats are listed.
#[test]
fn a_serve_that_never_answers_its_connection_is_unreachable_to_a_list() {
    let a = Opened::in_(sim(), &[Window::new(Layout::Current, "silent-a1")]);
    let serve_a = start_at(sim().endpoint().label(), "silent-a", &[], &[]);
    // Never accepted: the system completes the connection, nothing answers it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let address = silent.local_addr().unwrap();
    let servers = format!("{},b=http://{address}/?token=t", spec("a", &serve_a));
    let o = through(&servers, &["--json", "sessions", "list"]);
    assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
    let list = json_of(&o);
    assert_eq!(row(&list, a.id(0))["state"], "idle", "{list}");
    let gone = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == "b")
        .unwrap_or_else(|| panic!("b in {list}"));
    assert_eq!(gone["state"], "unreachable", "{gone}");
    assert!(
        gone["problem"]
            .as_str()
            .unwrap()
            .contains("took the connection but did not answer it"),
        "{gone}"
    );
}

/// A serve that takes the watch's connection but never answers its `subscribe` is
/// reported lost, and the watch goes on with the other serve.
#[test]
fn a_serve_that_never_answers_subscribe_is_lost_to_a_watch() {
    let a = Opened::in_(sim(), &[Window::new(Layout::Current, "mute-a1")]);
    let serve_a = start_at(sim().endpoint().label(), "mute-a", &[], &[]);
    let (mute, _hung) = mute_serve();
    let servers = format!("{},b=http://{mute}/?token=t", spec("a", &serve_a));
    let mut watch = Reaped(
        common::angrav_bin()
            .args(["--server", &servers, "--json"])
            .args(["sessions", "watch", "--session", a.id(0)])
            .env_remove("ANGRAV_CDP")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run angrav"),
    );
    let lines = common::lines(watch.0.stdout.take().expect("piped"));
    let next = || -> Value {
        let line = lines.recv_timeout(PATIENCE).expect("the watch goes on");
        serde_json::from_str(&line).unwrap()
    };
    let (mut snapshot, mut lost) = (None, None);
    while snapshot.is_none() || lost.is_none() {
        let l = next();
        match l["type"].as_str() {
            Some("snapshot") => snapshot = Some(l),
            Some("endpoint_lost") => lost = Some(l),
            _ => panic!("{l}"),
        }
    }
    let lost = lost.unwrap();
    assert_eq!(lost["endpoint"], "b", "{lost}");
    assert!(
        lost["reason"].as_str().unwrap().contains("no answer"),
        "{lost}"
    );
    assert_eq!(snapshot.unwrap()["session"]["host"], "a");

    a.panel(0).call_function(FLIP_BUSY, &[]).unwrap();
    let thinking = next();
    assert_eq!(thinking["session"]["host"], "a", "{thinking}");
    assert_eq!(thinking["current"], "thinking", "{thinking}");
}

/// A relay in front of `serve` that notes the method of every request through it.
fn recorded(serve: &Serve) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tungstenite::client::IntoClientRequest;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let address = listener.local_addr().unwrap().to_string();
    let methods = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (port, token, noted) = (serve.port, serve.token.clone(), methods.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let (token, noted) = (token.clone(), noted.clone());
            std::thread::spawn(move || {
                let Ok(mut down) = tungstenite::accept(stream.expect("a connection")) else {
                    return;
                };
                let mut ask = format!("ws://127.0.0.1:{port}/ws")
                    .into_client_request()
                    .unwrap();
                let bearer = format!("Bearer {token}").parse().unwrap();
                ask.headers_mut().insert("Authorization", bearer);
                let to = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                let (mut up, _) = tungstenite::client(ask, to).expect("serve upgrades");
                while let Ok(request) = down.read() {
                    let Ok(text) = request.to_text() else { return };
                    let v: Value = serde_json::from_str(text).unwrap();
                    let method = v["method"].as_str().unwrap_or_default().to_string();
                    noted.lock().unwrap().push(method);
                    up.send(request).unwrap();
                    let reply = up.read().expect("serve answers");
                    if down.send(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, methods)
}

/// Of several serves, a chat named is looked up once: the `status` that found it is
/// the one its command uses (`status`, `sessions approve` on two chats).
#[test]
fn a_chat_named_among_serves_is_looked_up_once() {
    let a = Opened::in_(
        sim(),
        &[
            Window::new(Layout::Current, "once-a1").start("approval"),
            Window::new(Layout::V2, "once-a2").start("approval"),
        ],
    );
    let serve_a = start_at(sim().endpoint().label(), "once-a", &[], &[]);
    let serve_b = start_at(other().endpoint().label(), "once-b", &[], &[]);
    let (relay, methods) = recorded(&serve_a);
    let servers = format!(
        "a=http://{relay}/?token={},{}",
        serve_a.token,
        spec("b", &serve_b)
    );
    let taken = || std::mem::take(&mut *methods.lock().unwrap());

    let o = through(&servers, &["--json", "status", "--session", a.id(0)]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    assert_eq!(json_of(&o)["session"]["host"], "a");
    assert_eq!(taken(), ["status"]);

    let o = through(
        &servers,
        &[
            "--json",
            "sessions",
            "approve",
            "--session",
            a.id(0),
            "--session",
            a.id(1),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    assert_eq!(taken(), ["status", "status", "approve", "approve"]);
    for i in 0..2 {
        assert_eq!(a.kept(i, "sim-pressed"), ["Run"]);
    }
}
