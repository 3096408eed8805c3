//! Prints angrav's speed figures against a real headless Chromium. Not a test: it
//! asserts nothing, it measures. `cargo bench` runs it in the release profile.
//!
//! Sections: `transport`, `status`, `hundred` (list, fan-out and wait at 100 windows),
//! `footprint` (size and `--version` time of the
//! release binary, and of the static one when `cargo test` has built it), `scale` (list time, event latency, CPU and RSS of
//! `sessions watch` at 1, 10, 50 and 100 windows, with a 1 s polling loop for
//! comparison at 50), `once` (two `sessions run` at once over the same 10 chats, 20
//! rounds: how many prompts arrived exactly once, and whether every one reported
//! `done` did), `dispatch` (100 prompts over 20 chats: the gap from a chat seen done
//! to its next prompt, and the total time against the ideal), `transcript` (the
//! page's script time with a 20 MB transcript of many turns, and with a 5 MB current
//! turn, each streaming a node every 200 ms, without and with `sessions watch`), `serve` (10 windows through `angrav serve`:
//! `sessions.list` against the cold command, a DOM change to the dashboard's row, idle
//! CPU and RSS), `hub` (a hub over two serves of 25 windows each: a DOM change to
//! the hub dashboard's row), `journal` (`sessions watch` event latency with the journal and with
//! `--no-state`, at 10 windows), `list` (`sessions list --json` at 1, 10 and 30
//! windows and through `--server`, whole process and phase by phase), `policy` (the
//! policy matcher on 10 KB commands: patterns a backtracking matcher takes
//! exponential time on, and compound lines; no browser), `ls` (the language server:
//! a call's round trip to the simulated one, `quota`, `status --conversation` and
//! `sessions list --all` with 50 conversations, and what `--all --ls` adds to the list
//! of 10 windows); pass names to run a subset.
//! `--idle-secs N` sets how long the
//! idle CPU is measured (default 60).

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use angrav::panel::{Layout, Panel, WindowRef};
use angrav::profile::Profile;
use angrav::sim::{Simulator, Window};
use cdp::Connection;
use cdp::TargetInfo;
use cdp::methods::runtime::Evaluate;

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    // Every angrav started here journals into a directory of its own, not the user's.
    let state = std::env::temp_dir().join(format!("angrav-bench-state-{}", std::process::id()));
    // SAFETY: no other thread runs yet.
    unsafe { std::env::set_var("ANGRAV_STATE_DIR", &state) };
    println!("machine: {}", machine());
    if run("policy") {
        policy();
    }
    if !wanted.is_empty() && wanted.iter().all(|w| w == "policy") {
        return;
    }
    let sim = Simulator::start().unwrap_or_else(|e| panic!("{e}"));
    if run("transport") {
        transport(&sim);
    }
    if run("status") {
        status(&sim);
    }
    if run("footprint") {
        footprint();
    }
    if run("once") {
        fanout_once(&sim);
    }
    if run("dispatch") {
        dispatch(&sim);
    }
    if run("transcript") {
        transcript(&sim);
    }
    if run("serve") {
        serve(&sim);
    }
    if run("hub") {
        hub(&sim);
    }
    if run("hundred") {
        let second = Simulator::start().unwrap();
        let mut labels = Vec::new();
        for (k, s) in [&sim, &second].into_iter().enumerate() {
            for i in 0..50 {
                s.open(&Window::new(Layout::ALL[i % 3], &format!("h{k}-{i}")))
                    .unwrap();
            }
            labels.push(s.endpoint().label().to_string());
        }
        at_scale(&labels, 100);
    }
    if run("journal") {
        journal(&sim);
    }
    if run("list") {
        list(&sim);
    }
    if run("ls") {
        language_server(&sim);
    }
    if run("scale") {
        let idle = std::env::args()
            .skip_while(|a| a != "--idle-secs")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(60);
        scale(&sim, Duration::from_secs(idle));
    }
    let _ = std::fs::remove_dir_all(&state);
}

/// The policy matcher: each case's best and median time over 21 runs, and its answer.
fn policy() {
    use angrav::panel::ApprovalKind;
    use angrav::policy::{Policy, Regex};
    let time = |f: &dyn Fn() -> String| {
        let mut runs: Vec<(Duration, String)> = (0..21)
            .map(|_| {
                let at = Instant::now();
                let answer = f();
                (at.elapsed(), answer)
            })
            .collect();
        runs.sort_by_key(|(d, _)| *d);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "best {:.3} ms, median {:.3} ms: {}",
            ms(runs[0].0),
            ms(runs[10].0),
            runs[0].1
        )
    };
    let kb10 = 10 * 1024;
    let words: String = "cargo test ".repeat(kb10 / 11 + 1)[..kb10]
        .trim_end()
        .into();
    let a = "a".repeat(kb10);
    for (pattern, text, what) in [
        (r"^(\w+ ?)+$", words.clone(), "words"),
        (r"^(\w+ ?)+$", format!("{}!", &words[1..]), "words then '!'"),
        ("(a|a)*b", a.clone(), "a×10240"),
        ("(a|a)*b", format!("{}b", &a[1..]), "a×10239 then 'b'"),
    ] {
        let re = Regex::new(pattern).expect("a pattern");
        let figure = time(&|| format!("{}", re.is_match(&text)));
        println!(
            "policy: {pattern} on {} chars ({what}): {figure}",
            text.len()
        );
    }
    let policy = Policy::parse(
        r#"[
          {"kind": "command", "command": "^cargo (test|check|build)( |$)", "action": "approve"},
          {"kind": "command", "command": "^(\\w+ ?)+$", "action": "approve"},
          {"kind": "command", "command": "rm +-[a-z]*r|git push", "action": "deny"},
          {"kind": "any", "action": "ask"}
        ]"#,
    )
    .expect("the policy");
    let chained: String =
        "cargo test && ".repeat(kb10 / 14 + 1)[..kb10 - 8].to_string() + "rm -rf ~";
    let nested = format!(
        "{}{}{}",
        "echo $(".repeat(16),
        "x".repeat(kb10 - 8 * 16),
        ")".repeat(16)
    );
    for (line, what) in [
        (chained.as_str(), "`cargo test && ` ×731, then `rm -rf ~`"),
        (nested.as_str(), "`echo $(` nested 16 deep around 10 KB"),
        (words.as_str(), "one part of words"),
    ] {
        let figure = time(&|| {
            policy
                .decide_command(ApprovalKind::Command, Some(line))
                .map_or("ask, no rule".into(), |(i, a)| {
                    format!("{}, rule {i}", a.name())
                })
        });
        println!(
            "policy: decide {} chars ({what}), 4 rules: {figure}",
            line.len()
        );
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let chromium = Command::new("chromium")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores; {chromium}")
}

/// p50, p99 and max of a set of durations, in milliseconds.
fn summary(mut d: Vec<Duration>) -> String {
    d.sort();
    let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (n={})",
        at(0.5),
        at(0.99),
        at(1.0),
        d.len()
    )
}

fn transport(sim: &Simulator) {
    let ep = sim.endpoint();
    let blank = || ep.new_target("about:blank").unwrap();
    let t = blank();
    let mut conn = Connection::open(t.web_socket_debugger_url.as_deref().unwrap()).unwrap();
    let one_plus_one = Evaluate {
        expression: "1+1",
        return_by_value: true,
        ..Default::default()
    };
    for _ in 0..200 {
        conn.call(&one_plus_one, Duration::from_secs(5)).unwrap();
    }
    let rtt: Vec<Duration> = (0..2000)
        .map(|_| {
            let s = Instant::now();
            conn.call(&one_plus_one, Duration::from_secs(5)).unwrap();
            s.elapsed()
        })
        .collect();
    println!(
        "Runtime.evaluate(\"1+1\") round trip, idle page: {}",
        summary(rtt)
    );
    ep.close_target(&t.id).unwrap();

    // A call pending when its target closes: from the close request to the error.
    let closed: Vec<Duration> = (0..20)
        .map(|_| {
            let t = blank();
            let mut conn = Connection::open(t.web_socket_debugger_url.as_deref().unwrap()).unwrap();
            let never = Evaluate {
                expression: "new Promise(() => {})",
                await_promise: true,
                ..Default::default()
            };
            let pending = conn.send(&never).unwrap();
            let s = Instant::now();
            ep.close_target(&t.id).unwrap();
            let err = conn
                .wait(pending, Instant::now() + Duration::from_secs(30))
                .unwrap_err();
            assert!(err.is_closed(), "{err}");
            s.elapsed()
        })
        .collect();
    println!(
        "pending call fails after its target is closed: {}",
        summary(closed)
    );

    // A reader blocked with no deadline, woken by its close handle from another thread.
    let t = blank();
    let woken: Vec<Duration> = (0..20)
        .map(|_| {
            let mut conn = Connection::open(t.web_socket_debugger_url.as_deref().unwrap()).unwrap();
            let handle = conn.close_handle();
            let (tx, rx) = std::sync::mpsc::channel();
            let reader = std::thread::spawn(move || {
                tx.send(()).unwrap();
                let r = conn.next_event(None);
                (Instant::now(), r)
            });
            rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(20)); // let it block in read
            let s = Instant::now();
            handle.close();
            let (at, r) = reader.join().unwrap();
            assert!(r.is_err());
            at.duration_since(s)
        })
        .collect();
    println!("close handle wakes a blocked reader: {}", summary(woken));
    ep.close_target(&t.id).unwrap();
}

fn status(sim: &Simulator) {
    let bin = env!("CARGO_BIN_EXE_angrav");
    for layout in Layout::ALL {
        let t = sim.open(&Window::new(layout, "bench").history(3)).unwrap();
        let run = || {
            let s = Instant::now();
            let o = Command::new(bin)
                .args([
                    "--cdp",
                    sim.endpoint().label(),
                    "--session",
                    &t.id,
                    "status",
                ])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            s.elapsed()
        };
        for _ in 0..5 {
            run();
        }
        let times: Vec<Duration> = (0..50).map(|_| run()).collect();
        println!(
            "`angrav status` wall time, warm {} window: {}",
            layout.name(),
            summary(times)
        );
        sim.close(&t.id).unwrap();
    }
}

/// One open window, with a panel attached for flipping its busy marker.
struct Open {
    target: TargetInfo,
    window: WindowRef,
    panel: Panel,
}

fn open_window(sim: &Simulator, i: usize) -> Open {
    let layout = Layout::ALL[i % 3];
    let target = sim.open(&Window::new(layout, &format!("w{i}"))).unwrap();
    let window = WindowRef::new(
        sim.endpoint().clone(),
        target.id.clone(),
        target.web_socket_debugger_url.clone().unwrap(),
    );
    let panel = Panel::attach(&window, &Profile::default()).unwrap().0;
    Open {
        target,
        window,
        panel,
    }
}

/// Shows or hides the window's busy marker; returns the page's clock (Unix ms) at the change.
const FLIP: &str = "function () {
  const b = document.querySelector('[data-tooltip-id=\"input-send-button-cancel-tooltip\"]') ||
    Array.from(document.querySelectorAll('button')).find((x) => x.textContent === 'Stop');
  const t = performance.timeOrigin + performance.now();
  b.classList.toggle('hidden');
  return t;
}";

fn flip(w: &mut Open) -> f64 {
    w.panel.call_function(FLIP, &[]).unwrap().as_f64().unwrap()
}

fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3
}

fn ms(v: Vec<f64>) -> Vec<Duration> {
    v.into_iter()
        .map(|x| Duration::from_secs_f64(x.max(0.0) / 1e3))
        .collect()
}

/// `sessions watch --json` over every endpoint, with its stdout read line by line.
struct Watch {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Watch {
    fn start(endpoints: &[&str], windows: usize) -> Watch {
        Watch::start_with(endpoints, windows, &[])
    }

    fn start_with(endpoints: &[&str], windows: usize, extra: &[&str]) -> Watch {
        let mut args = Vec::new();
        for e in endpoints {
            args.extend(["--cdp", e]);
        }
        args.extend(["--json", "sessions", "watch"]);
        args.extend(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_angrav"))
            .args(&args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let w = Watch { child, lines: rx };
        for _ in 0..windows {
            w.lines
                .recv_timeout(Duration::from_secs(60))
                .expect("snapshot line");
        }
        w
    }

    /// Waits for the event line of `session` (a target id); returns its arrival, Unix ms.
    fn event_for(&self, target_id: &str) -> f64 {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("an event line");
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["type"] == "state_change" && v["session"]["target_id"] == target_id {
                return unix_ms();
            }
        }
    }

    /// (CPU seconds used so far, peak RSS in kB) from /proc.
    fn usage(&self) -> (f64, u64) {
        usage(self.child.id())
    }
}

/// A process's (CPU seconds used so far, peak RSS in kB), from /proc.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM")).unwrap();
    let kb = hwm.split_whitespace().nth(1).unwrap().parse().unwrap();
    (ticks / 100.0, kb)
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scale(sim: &Simulator, idle: Duration) {
    // Windows go 50 to a browser, as two Chromium instances on these machines.
    let second = Simulator::start().unwrap();
    let sims = [sim, &second];
    let mut windows: Vec<Open> = Vec::new();
    let bin = env!("CARGO_BIN_EXE_angrav");
    let labels = [
        sim.endpoint().label().to_string(),
        second.endpoint().label().to_string(),
    ];
    println!(
        "\nwindows | sessions list p50 | event latency p50 / p99 | watch CPU idle | watch peak RSS"
    );
    for n in [1usize, 10, 50, 100] {
        while windows.len() < n {
            let i = windows.len();
            windows.push(open_window(sims[i / 50], i));
        }
        let endpoints: Vec<&str> = labels
            .iter()
            .take(if n > 50 { 2 } else { 1 })
            .map(String::as_str)
            .collect();
        let mut list_args = Vec::new();
        for e in &endpoints {
            list_args.extend(["--cdp", e]);
        }
        list_args.extend(["sessions", "list"]);
        let list: Vec<Duration> = (0..20)
            .map(|_| {
                let s = Instant::now();
                let o = Command::new(bin).args(&list_args).output().unwrap();
                assert!(o.status.success());
                assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), n);
                s.elapsed()
            })
            .collect();
        let watch = Watch::start(&endpoints, n);
        let mut latency = Vec::new();
        // Busy on, then off again: every window ends as it started, idle.
        for k in 0..100 {
            let w = &mut windows[(k / 2) % n];
            let at = flip(w);
            latency.push(watch.event_for(&w.target.id) - at);
        }
        let (cpu0, _) = watch.usage();
        std::thread::sleep(if n == 50 {
            idle
        } else {
            idle.min(Duration::from_secs(20))
        });
        let (cpu1, rss) = watch.usage();
        let secs = if n == 50 {
            idle
        } else {
            idle.min(Duration::from_secs(20))
        }
        .as_secs_f64();
        let mut l = ms(latency);
        l.sort();
        let q = |d: &[Duration], p: f64| {
            d[((d.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
        };
        let mut list_sorted = list.clone();
        list_sorted.sort();
        println!(
            "{n:7} | {:14.1} ms | {:8.2} ms / {:6.2} ms | {:5.2}% of a core over {secs:.0} s | {:.1} MB",
            q(&list_sorted, 0.5),
            q(&l, 0.5),
            q(&l, 0.99),
            (cpu1 - cpu0) / secs * 100.0,
            rss as f64 / 1024.0
        );
        drop(watch);
        if n == 50 {
            polling_comparison(&mut windows[..50]);
        }
    }
    at_scale(&labels, windows.len());
}

/// `sessions watch` event latency at 10 windows, with the journal recording every line
/// and with `--no-state`, in alternating rounds of 100 changes each, after one round
/// to warm up.
fn journal(sim: &Simulator) {
    let mut windows: Vec<Open> = (0..10).map(|i| open_window(sim, i)).collect();
    let endpoint = [sim.endpoint().label()];
    let (mut with, mut without) = (Vec::new(), Vec::new());
    // A first round warms up (and is not counted), then the two alternate.
    for round in 0..9 {
        let journaled = round % 2 == 0;
        let extra: &[&str] = if journaled { &[] } else { &["--no-state"] };
        let watch = Watch::start_with(&endpoint, windows.len(), extra);
        let mut warm_up = Vec::new();
        let into = match (round, journaled) {
            (0, _) => &mut warm_up,
            (_, true) => &mut with,
            (_, false) => &mut without,
        };
        for k in 0..100 {
            let w = &mut windows[(k / 2) % 10];
            let at = flip(w);
            into.push(watch.event_for(&w.target.id) - at);
        }
    }
    let p = |v: &[f64], q: f64| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize]
    };
    println!("\n`sessions watch` event latency, 10 windows, 400 changes each:");
    println!("  --no-state:   {}", summary(ms(without.clone())));
    println!("  journal on:   {}", summary(ms(with.clone())));
    println!(
        "  journal cost: p50 {:+.1} %, p99 {:+.1} %",
        (p(&with, 0.5) / p(&without, 0.5) - 1.0) * 100.0,
        (p(&with, 0.99) / p(&without, 0.99) - 1.0) * 100.0
    );
    for w in &windows {
        sim.close(&w.target.id).unwrap();
    }
}

/// At full scale, the multi-session commands still do their job: every window listed,
/// every fan-out answer awaited, every window seen idle by `sessions wait --all`.
fn at_scale(endpoints: &[String], n: usize) {
    let bin = env!("CARGO_BIN_EXE_angrav");
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = Vec::new();
        for e in endpoints {
            args.extend(["--cdp", e.as_str()]);
        }
        args.push("--json");
        args.extend_from_slice(extra);
        let s = Instant::now();
        let o = Command::new(bin).args(&args).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
        (v, s.elapsed(), o.status.code())
    };
    let (list, took, code) = run(&["sessions", "list"]);
    let idle = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "idle")
        .count();
    println!(
        "sessions list, {n} windows: {idle} idle listed in {:.0} ms (exit {code:?})",
        took.as_secs_f64() * 1e3
    );
    let (report, took, code) = run(&["sessions", "fanout", "one prompt to every window"]);
    let done = |r: &serde_json::Value| {
        r["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "done" && s["state"] == "idle")
            .count()
    };
    println!(
        "sessions fanout, {n} windows: {} answers, all idle, in {:.1} s (exit {code:?})",
        done(&report),
        took.as_secs_f64()
    );
    let (report, took, code) = run(&["sessions", "wait", "--all"]);
    println!(
        "sessions wait --all, {n} windows: {} done idle in {:.1} s (exit {code:?})",
        done(&report),
        took.as_secs_f64()
    );
}

/// The spec's approach for comparison: a loop that probes every window once a second.
fn polling_comparison(windows: &mut [Open]) {
    let refs: Vec<WindowRef> = windows.iter().map(|w| w.window.clone()).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let poller = std::thread::spawn(move || {
        let mut panels: Vec<Panel> = refs
            .iter()
            .map(|r| Panel::attach(r, &Profile::default()).unwrap().0)
            .collect();
        let mut last: Vec<_> = panels
            .iter_mut()
            .map(|p| p.probe().unwrap().state)
            .collect();
        let _ = tx.send((usize::MAX, 0.0)); // ready: every window's state is known
        while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
            let tick = Instant::now();
            for (i, p) in panels.iter_mut().enumerate() {
                let s = p.probe().unwrap().state;
                if s != last[i] {
                    last[i] = s;
                    let _ = tx.send((i, unix_ms()));
                }
            }
            std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
        }
    });
    let n = windows.len();
    let mut latency = Vec::new();
    rx.recv().unwrap();
    for k in 0..20 {
        let target = (k * 7) % n;
        // Changes land at any moment of the poller's second.
        std::thread::sleep(Duration::from_millis(((k * 379) % 1000) as u64));
        let at = flip(&mut windows[target]);
        let (i, seen) = rx.recv().unwrap();
        assert_eq!(i, target);
        latency.push(seen - at);
        flip(&mut windows[target]);
        rx.recv().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    poller.join().unwrap();
    let mut l = ms(latency);
    l.sort();
    let q = |p: f64| l[((l.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "     50 | a 1 s polling loop like the spec's: change seen after p50 {:.0} ms / p99 {:.0} ms",
        q(0.5),
        q(0.99)
    );
}

fn footprint() {
    let dynamic = std::path::PathBuf::from(env!("CARGO_BIN_EXE_angrav"));
    let stat = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/static/x86_64-unknown-linux-gnu/release/angrav");
    for (name, bin) in [("release", dynamic), ("static release", stat)] {
        let Ok(meta) = std::fs::metadata(&bin) else {
            println!("{name} binary: not built ({})", bin.display());
            continue;
        };
        let times: Vec<Duration> = (0..200)
            .map(|_| {
                let s = Instant::now();
                let o = Command::new(&bin).arg("--version").output().unwrap();
                assert!(o.status.success());
                s.elapsed()
            })
            .collect();
        println!(
            "{name} binary: {:.2} MB; `angrav --version` wall time: {}",
            meta.len() as f64 / 1048576.0,
            summary(times)
        );
    }
}

/// Two `sessions run` at once over the same chats, round after round (issue 8's
/// measurement): each prompt is counted by how often the agent received it exactly as
/// sent, against what angrav reported for it.
fn fanout_once(sim: &Simulator) {
    const CHATS: usize = 10;
    const ROUNDS: usize = 20;
    const RUNS: usize = 2;
    let bin = env!("CARGO_BIN_EXE_angrav");
    let targets: Vec<TargetInfo> = (0..CHATS)
        .map(|i| {
            sim.open(&Window::new(Layout::ALL[i % 3], &format!("once{i}")))
                .unwrap()
        })
        .collect();
    let mut panels: Vec<Panel> = targets
        .iter()
        .map(|t| {
            let w = WindowRef::new(
                sim.endpoint().clone(),
                t.id.clone(),
                t.web_socket_debugger_url.clone().unwrap(),
            );
            Panel::attach(&w, &Profile::default()).unwrap().0
        })
        .collect();
    let received = |p: &mut Panel| -> Vec<String> {
        let v = p
            .call_function(
                "function () { return document.getElementById('sim-received').textContent; }",
                &[],
            )
            .unwrap();
        serde_json::from_str(v.as_str().unwrap()).unwrap()
    };
    let mut seen = [0; CHATS];
    let (mut sent, mut once, mut twice, mut strange) = (0, 0, 0, 0);
    let (mut done, mut done_once, mut failed, mut failed_received) = (0, 0, 0, 0);
    for round in 0..ROUNDS {
        let runs: Vec<(Vec<String>, Child)> = (0..RUNS)
            .map(|r| {
                let texts: Vec<String> = (0..CHATS)
                    .map(|i| format!("round {round} run {r} chat {i}"))
                    .collect();
                let mut args = vec![
                    "--cdp".to_string(),
                    sim.endpoint().label().to_string(),
                    "--json".into(),
                    "sessions".into(),
                    "run".into(),
                ];
                for (t, text) in targets.iter().zip(&texts) {
                    args.extend(["--task".into(), format!("{}={text}", t.id)]);
                }
                let child = Command::new(bin)
                    .args(&args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                (texts, child)
            })
            .collect();
        let reports: Vec<(Vec<String>, serde_json::Value)> = runs
            .into_iter()
            .map(|(texts, child)| {
                let o = child.wait_with_output().unwrap();
                (texts, serde_json::from_slice(&o.stdout).unwrap())
            })
            .collect();
        let arrived: Vec<Vec<String>> = panels
            .iter_mut()
            .zip(seen.iter_mut())
            .map(|(p, seen)| {
                let all = received(p);
                let new = all[*seen..].to_vec();
                *seen = all.len();
                new
            })
            .collect();
        for (texts, report) in &reports {
            for (i, text) in texts.iter().enumerate() {
                sent += 1;
                let times = arrived[i].iter().filter(|a| *a == text).count();
                once += usize::from(times == 1);
                twice += usize::from(times > 1);
                let status = &report["sessions"][i]["status"];
                if status == "done" {
                    done += 1;
                    done_once += usize::from(times == 1);
                } else if status == "failed" {
                    failed += 1;
                    failed_received += usize::from(times > 0);
                }
            }
        }
        let all_texts: Vec<&String> = reports.iter().flat_map(|(t, _)| t).collect();
        strange += arrived
            .iter()
            .flatten()
            .filter(|a| !all_texts.contains(a))
            .count();
    }
    println!(
        "fan-out exactly-once count, {RUNS} concurrent `sessions run` x {CHATS} chats x {ROUNDS} rounds: \
         {sent} prompts, {once} received exactly once, {twice} more than once, {strange} received texts nobody sent (merged); \
         {done} reported done, {done_once} of them received exactly once; {failed} reported failed, {failed_received} of them received"
    );
    for t in &targets {
        sim.close(&t.id).unwrap();
    }
}

/// `angrav dispatch`'s library at work: 100 prompts over 20 chats. Figures: the gap
/// between a chat seen done and its next prompt's delivery beginning (which includes
/// reading the finished turn's answer), and the total time against the ideal, the sum
/// of the turn times over the number of chats.
fn dispatch(sim: &Simulator) {
    use angrav::dispatch::{Dispatcher, Event, Options, Prompt, Status};
    const CHATS: usize = 20;
    const PROMPTS: usize = 100;
    let targets: Vec<TargetInfo> = (0..CHATS)
        .map(|i| {
            sim.open(&Window::new(Layout::ALL[i % 3], &format!("dispatch{i}")))
                .unwrap()
        })
        .collect();
    let ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
    let registry =
        angrav::registry::Registry::with(vec![sim.endpoint().clone()], Profile::default()).unwrap();
    let sessions = registry.select(&ids).unwrap();
    let prompts = (0..PROMPTS)
        .map(|i| Prompt::new(i.to_string(), format!("dispatched task {i}")))
        .collect();
    let start = Instant::now();
    let d = Dispatcher::start(&sessions, registry.profile(), prompts, Options::default());
    let mut results = Vec::new();
    for e in d.events() {
        match e {
            Event::Finished(r) => results.push(*r),
            Event::Ended { .. } => break,
            _ => {}
        }
    }
    let total = start.elapsed();
    let ok = results.iter().filter(|r| r.status == Status::Done).count();
    let turns: Duration = results
        .iter()
        .map(|r| Duration::from_millis(r.duration_ms))
        .sum();
    let ideal = turns / CHATS as u32;
    let mut gaps = Vec::new();
    for t in &targets {
        let mut mine: Vec<_> = results
            .iter()
            .filter(|r| r.session.as_ref().map(|s| s.target_id.as_str()) == Some(t.id.as_str()))
            .collect();
        mine.sort_by_key(|r| r.sent_at);
        for pair in mine.windows(2) {
            if let Some(next) = pair[1].sent_at {
                gaps.push(next.saturating_duration_since(pair[0].ended_at));
            }
        }
    }
    println!(
        "dispatch, {PROMPTS} prompts over {CHATS} chats: {ok} done; chat seen done -> next prompt sent: {}; \
         total {:.2} s, ideal (sum of turn times {:.1} s / {CHATS}) {:.2} s, {:.0} % over",
        summary(gaps),
        total.as_secs_f64(),
        turns.as_secs_f64(),
        ideal.as_secs_f64(),
        (total.as_secs_f64() / ideal.as_secs_f64() - 1.0) * 100.0
    );
    for t in &targets {
        sim.close(&t.id).unwrap();
    }
}

/// `Performance.enable` and `Performance.getMetrics`: the page's own counters.
#[derive(serde::Serialize)]
struct PerformanceEnable {}

impl cdp::methods::Command for PerformanceEnable {
    const METHOD: &'static str = "Performance.enable";
    type Response = serde_json::Value;
}

#[derive(serde::Serialize)]
struct GetMetrics {}

impl cdp::methods::Command for GetMetrics {
    const METHOD: &'static str = "Performance.getMetrics";
    type Response = serde_json::Value;
}

/// (ScriptDuration, TaskDuration, Timestamp), in seconds, as the page counts them.
fn page_metrics(conn: &mut Connection) -> (f64, f64, f64) {
    let v = conn.call(&GetMetrics {}, Duration::from_secs(10)).unwrap();
    let get = |name: &str| {
        v["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["value"].as_f64())
            .unwrap_or(0.0)
    };
    (get("ScriptDuration"), get("TaskDuration"), get("Timestamp"))
}

/// Share of the page's main thread spent in script, and in tasks, over `secs`.
fn page_load(conn: &mut Connection, secs: u64) -> (f64, f64) {
    let (s0, t0, at0) = page_metrics(conn);
    std::thread::sleep(Duration::from_secs(secs));
    let (s1, t1, at1) = page_metrics(conn);
    let span = at1 - at0;
    ((s1 - s0) / span * 100.0, (t1 - t0) / span * 100.0)
}

/// Builds the transcript: turns cloned from the window's own, each with a 10 KB
/// paragraph, until the conversation holds `mb` MB of text; returns its size in MB.
const GROW: &str = "function (mb) {
  const conv = document.getElementById('conversation');
  const turn = Array.from(conv.children).slice(0, 2);
  const filler = 'lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(180);
  let size = conv.textContent.length;
  const t0 = performance.now();
  while (size < mb * 1e6 && performance.now() - t0 < 1000) {
    for (const row of turn) {
      const copy = row.cloneNode(true);
      const answer = copy.querySelector('.rendered-markdown');
      if (answer) { const p = document.createElement('p'); p.textContent = filler; answer.appendChild(p); }
      conv.insertBefore(copy, conv.lastElementChild.previousElementSibling);
      size += copy.textContent.length;
    }
  }
  return conv.textContent.length / 1e6;
}";

/// The agent streams: a paragraph appended to the last answer every 200 ms, busy shown.
const STREAM: &str = "function () {
  document.querySelector('[data-tooltip-id=\"input-send-button-cancel-tooltip\"]').classList.remove('hidden');
  let n = 0;
  setInterval(() => {
    const a = Array.from(document.querySelectorAll('#conversation > :last-child .rendered-markdown')).pop();
    const p = document.createElement('p');
    p.textContent = 'streamed paragraph ' + (n++) + ' with a few words of the answer in it.';
    a.appendChild(p);
  }, 200);
}";

/// Builds one long current turn: 10 KB paragraphs appended to the last answer until
/// the conversation holds `mb` MB of text; returns its size in MB.
const GROW_TURN: &str = "function (mb) {
  const conv = document.getElementById('conversation');
  const answer = Array.from(conv.querySelectorAll(':scope > :last-child .rendered-markdown')).pop();
  const filler = 'lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(180);
  let size = conv.textContent.length;
  const t0 = performance.now();
  while (size < mb * 1e6 && performance.now() - t0 < 1000) {
    const p = document.createElement('p');
    p.textContent = filler;
    answer.appendChild(p);
    size += filler.length;
  }
  return conv.textContent.length / 1e6;
}";

/// The page's cost of being watched: a 20 MB transcript of many turns, and a 5 MB
/// current turn (one long answer), each streaming a node every 200 ms.
fn transcript(sim: &Simulator) {
    page_cost(sim, GROW, 20, "transcript of many turns");
    page_cost(sim, GROW_TURN, 5, "current turn");
}

fn page_cost(sim: &Simulator, grow: &str, size: u32, what: &str) {
    let t = sim
        .open(&Window::new(Layout::Current, "transcript").history(2))
        .unwrap();
    let window = WindowRef::new(
        sim.endpoint().clone(),
        t.id.clone(),
        t.web_socket_debugger_url.clone().unwrap(),
    );
    let mut panel = Panel::attach(&window, &Profile::default()).unwrap().0;
    // In steps of a second or so: a busy machine must not make one call time out.
    let mut mb = 0.0;
    while mb < f64::from(size) {
        mb = panel
            .call_function(grow, &[size.into()])
            .unwrap()
            .as_f64()
            .unwrap();
    }
    // What one full read of it costs (a `status`, or a watch's first look).
    let full: Vec<Duration> = (0..5)
        .map(|_| {
            let ms = panel
                .call_function(
                    "function () { const t = performance.now(); globalThis.__angravLibraries.values().next().value.probe(); return performance.now() - t; }",
                    &[],
                )
                .unwrap();
            Duration::from_secs_f64(ms.as_f64().unwrap() / 1e3)
        })
        .collect();
    println!(
        "a full probe of a {mb:.1} MB {what}, in the page: {}",
        summary(full)
    );
    panel.call_function(STREAM, &[]).unwrap();
    let mut page = Connection::open(t.web_socket_debugger_url.as_deref().unwrap()).unwrap();
    page.call(&PerformanceEnable {}, Duration::from_secs(10))
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let (script0, task0) = page_load(&mut page, 15);
    let mut watch = Command::new(env!("CARGO_BIN_EXE_angrav"))
        .args(["--cdp", sim.endpoint().label(), "--session", &t.id])
        .args(["--json", "sessions", "watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(watch.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap(); // the snapshot: the watch is running
    std::thread::sleep(Duration::from_secs(2));
    let (script1, task1) = page_load(&mut page, 15);
    let _ = watch.kill();
    let _ = watch.wait();
    println!(
        "{what} of {mb:.1} MB streaming a node every 200 ms, page main thread over 15 s: script {script0:.2} % without angrav, {script1:.2} % with `sessions watch` (+{:.2} points); all tasks {task0:.2} % / {task1:.2} % (+{:.2} points)",
        script1 - script0,
        task1 - task0
    );
    sim.close(&t.id).unwrap();
}

/// `angrav serve` over 10 windows: `sessions.list` through its WebSocket against the
/// cold command, a DOM change in a window to its row on the dashboard, and serve's
/// idle CPU and peak RSS.
/// `angrav serve ARGS` with a state directory of its own: the child, its dashboard
/// URL (with the token) and the state directory.
fn start_serve(args: &[&str], name: &str) -> (Child, String, std::path::PathBuf) {
    let state = std::env::temp_dir().join(format!("angrav-bench-{name}-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_angrav"))
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env("ANGRAV_STATE_DIR", &state)
        .env_remove("ANGRAV_CDP")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "serve ended");
        if let Some(u) = line.split("dashboard: ").nth(1) {
            break u.trim().to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    (child, url, state)
}

fn evaluate(page: &mut Connection, expression: &str) -> serde_json::Value {
    page.call(
        &Evaluate {
            expression,
            return_by_value: true,
            await_promise: true,
            ..Default::default()
        },
        Duration::from_secs(30),
    )
    .unwrap()
    .into_value()
    .unwrap()
}

/// The dashboard at `url`, in a tab of `sim`: `rounds` DOM changes in the windows
/// (taken in turn), each timed from the change in its page to its row's state text
/// changing on the dashboard (both pages' clocks are this machine's), in ms.
fn row_latency(sim: &Simulator, url: &str, windows: &mut [&mut Open], rounds: usize) -> Vec<f64> {
    let tab = sim.endpoint().new_target(url).unwrap();
    let mut page = Connection::open(tab.web_socket_debugger_url.as_deref().unwrap()).unwrap();
    angrav::sim::wait_loaded(&mut page).unwrap();
    let ids: Vec<&str> = windows.iter().map(|w| w.target.id.as_str()).collect();
    let watch_rows = format!(
        "new Promise((resolve) => {{
          const ids = {};
          window.__changes = [];
          const last = {{}};
          const look = () => {{
            const t = performance.timeOrigin + performance.now();
            let all = true;
            for (const id of ids) {{
              const s = document.querySelector('.row[data-target=\"' + id + '\"] .state');
              if (!s) {{ all = false; continue; }}
              if (last[id] !== undefined && last[id] !== s.textContent) window.__changes.push({{ id, t }});
              last[id] = s.textContent;
            }}
            return all;
          }};
          new MutationObserver(() => {{ if (look()) resolve(true); }})
            .observe(document.body, {{ subtree: true, childList: true, characterData: true }});
          if (look()) resolve(true);
        }})",
        serde_json::json!(ids)
    );
    evaluate(&mut page, &watch_rows);
    let n = windows.len();
    let mut latency = Vec::new();
    for k in 0..rounds {
        let w = &mut windows[(k / 2) % n];
        let at = flip(w);
        let seen = format!(
            "new Promise((resolve) => {{
              const find = () => window.__changes.length > {k} && window.__changes[{k}];
              const done = () => {{ const c = find(); if (c) {{ resolve(c); return true; }} return false; }};
              if (done()) return;
              const obs = new MutationObserver(() => {{ if (done()) obs.disconnect(); }});
              obs.observe(document.body, {{ subtree: true, childList: true, characterData: true }});
            }})"
        );
        let c = evaluate(&mut page, &seen);
        assert_eq!(c["id"], w.target.id.as_str());
        latency.push(c["t"].as_f64().unwrap() - at);
    }
    sim.close(&tab.id).unwrap();
    latency
}

fn serve(sim: &Simulator) {
    use tungstenite::Message;
    use tungstenite::client::IntoClientRequest;
    const N: usize = 10;
    let mut windows: Vec<Open> = (0..N).map(|i| open_window(sim, i)).collect();
    let bin = env!("CARGO_BIN_EXE_angrav");
    let ep = sim.endpoint().label();
    let cold: Vec<Duration> = (0..20)
        .map(|_| {
            let s = Instant::now();
            let o = Command::new(bin)
                .args(["--cdp", ep, "sessions", "list"])
                .output()
                .unwrap();
            assert!(o.status.success());
            s.elapsed()
        })
        .collect();
    let (mut child, url, state) = start_serve(&["--cdp", ep, "serve"], "serve");
    let (base, token) = url.split_once("/?token=").unwrap();
    let mut req = format!("{}/ws", base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let addr = base.trim_start_matches("http://");
    let (mut ws, _) =
        tungstenite::client(req, std::net::TcpStream::connect(addr).unwrap()).unwrap();
    let mut list = |id: usize| {
        let s = Instant::now();
        let q = format!(r#"{{"id":{id},"method":"sessions.list"}}"#);
        ws.send(Message::text(q)).unwrap();
        let reply = ws.read().unwrap();
        let v: serde_json::Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
        assert!(v["result"].as_array().unwrap().len() >= N);
        s.elapsed()
    };
    for i in 0..20 {
        list(i);
    }
    let through: Vec<Duration> = (0..200).map(list).collect();
    println!(
        "\nserve, {N} windows: sessions.list through serve's WebSocket: {}; the cold `angrav sessions list`: {}",
        summary(through),
        summary(cold)
    );
    let mut all: Vec<&mut Open> = windows.iter_mut().collect();
    let latency = row_latency(sim, &url, &mut all, 100);
    println!(
        "serve, {N} windows: DOM change in a window to its row on the dashboard: {}",
        summary(ms(latency))
    );

    let idle = Duration::from_secs(20);
    let (cpu0, _) = usage(child.id());
    std::thread::sleep(idle);
    let (cpu1, rss) = usage(child.id());
    println!(
        "serve, {N} windows, idle: {:.2}% of a core over {} s, peak RSS {:.1} MB (50 windows: not run)",
        (cpu1 - cpu0) / idle.as_secs_f64() * 100.0,
        idle.as_secs(),
        rss as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(state);
    for w in &windows {
        sim.close(&w.target.id).unwrap();
    }
}

/// A hub over two serves, each over a browser of 25 windows: a DOM change in any
/// window to its row on the hub's dashboard.
fn hub(sim: &Simulator) {
    const N: usize = 25;
    let second = Simulator::start().unwrap();
    let mut windows: Vec<Open> = (0..N)
        .map(|i| open_window(sim, i))
        .chain((0..N).map(|i| open_window(&second, N + i)))
        .collect();
    let mut serves = Vec::new();
    let mut upstreams = Vec::new();
    for (name, s) in [("a", sim), ("b", &second)] {
        let (child, url, state) = start_serve(&["--cdp", s.endpoint().label(), "serve"], name);
        upstreams.push(format!("{name}={url}"));
        serves.push((child, state));
    }
    let (hub, url, state) = start_serve(
        &[
            "serve",
            "--upstream",
            &upstreams[0],
            "--upstream",
            &upstreams[1],
        ],
        "hub",
    );
    serves.push((hub, state));
    // Alternate the machines: window i of the first, then of the second.
    let (first, rest) = windows.split_at_mut(N);
    let mut all: Vec<&mut Open> = Vec::new();
    for (x, y) in first.iter_mut().zip(rest.iter_mut()) {
        all.push(x);
        all.push(y);
    }
    let latency = row_latency(sim, &url, &mut all, 100);
    println!(
        "\nhub over 2 serves x {N} windows: DOM change in a window to its row on the hub's dashboard: {}",
        summary(ms(latency))
    );
    for (mut child, state) in serves {
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(state);
    }
    for w in &windows[..N] {
        sim.close(&w.target.id).unwrap();
    }
    second.kill();
}

/// The median of `runs` timings of `f`, after two runs to warm up.
fn median_of(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    f();
    f();
    let mut d: Vec<Duration> = (0..runs).map(|_| f()).collect();
    d.sort();
    d[d.len() / 2]
}

/// One run of angrav with `args`, checked; its wall time.
fn timed_run(args: &[&str], env: &[(&str, &str)]) -> Duration {
    let s = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_angrav"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let took = s.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    took
}

/// CPU time of every thread of the simulator's Chromium (its processes name its
/// profile directory on their command line), from /proc.
fn chromium_cpu(sim: &Simulator) -> Duration {
    let dir = sim
        .chromium()
        .user_data_dir()
        .to_string_lossy()
        .into_owned();
    let mut ns = 0u64;
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(dir.as_str()) {
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// The CPU time (user + system) of every child process reaped so far.
fn children_cpu() -> Duration {
    #[repr(C)]
    struct Rusage {
        utime: [i64; 2],
        stime: [i64; 2],
        rest: [i64; 14],
    }
    unsafe extern "C" {
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    let mut r = Rusage {
        utime: [0; 2],
        stime: [0; 2],
        rest: [0; 14],
    };
    // SAFETY: getrusage fills the struct it is given (RUSAGE_CHILDREN = -1).
    assert_eq!(unsafe { getrusage(-1, &mut r) }, 0);
    let us = |t: [i64; 2]| t[0] as u64 * 1_000_000 + t[1] as u64;
    Duration::from_micros(us(r.utime) + us(r.stime))
}

/// Median wall time of `runs` runs of `f` (after two to warm up), and the CPU time
/// per run of the processes it starts and of the simulator's Chromium.
fn costs(
    sim: &Simulator,
    runs: usize,
    mut f: impl FnMut() -> Duration,
) -> (Duration, Duration, Duration) {
    f();
    f();
    let (own0, browser0) = (children_cpu(), chromium_cpu(sim));
    let mut d: Vec<Duration> = (0..runs).map(|_| f()).collect();
    let (own1, browser1) = (children_cpu(), chromium_cpu(sim));
    d.sort();
    let per_run = |a: Duration, b: Duration| (b - a) / runs as u32;
    (
        d[d.len() / 2],
        per_run(own0, own1),
        per_run(browser0, browser1),
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `sessions list --json` at 1, 10 and 30 windows (current, legacy-frame and
/// legacy-target in turn): the whole process, then each phase of what it does, timed
/// here with the same calls (phases one after another, every window's at once as the
/// command does them); then the same list through `--server`.
fn list(sim: &Simulator) {
    use angrav::registry::{ListRow, Registry};
    use cdp::methods::page::{CreateIsolatedWorld, GetFrameTree};
    use cdp::methods::runtime::{CallArgument, CallFunctionOn};
    const RUNS: usize = 15;
    // A list whose places are remembered (state dir) is a handshake and a probe; a
    // window's first list, or one with `--no-state`, asks for the worlds (and frame
    // trees) between them.
    const PHASES: [&str; 4] = [
        "WebSocket handshakes",
        "worlds (and frame trees): --no-state, new",
        "the probe, the library there already",
        "a window's first: library installed too",
    ];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ep = sim.endpoint().label().to_string();
    let profile = Profile::default();
    let library = include_str!("../../src/js/panel.js");
    let profile_json = profile.to_json();
    // As a list probes: its first probe lean (no title, mode, model). Installed here
    // under a key of the bench's own, which the next list replaces.
    let lean = serde_json::Value::Bool(true);
    let key = serde_json::Value::from("bench");
    println!(
        "\n`sessions list --json`, medians of {RUNS} runs (load average {})",
        load_average()
    );
    let (start, start_cpu, _) = costs(sim, RUNS, || timed_run(&["--version"], &[]));
    println!(
        "  process start (`angrav --version`): {:.2} ms, CPU {:.2} ms",
        ms(start),
        ms(start_cpu)
    );

    let mut targets: Vec<TargetInfo> = Vec::new();
    for n in [1usize, 10, 30] {
        while targets.len() < n {
            let i = targets.len();
            targets.push(
                sim.open(&Window::new(Layout::ALL[i % 3], &format!("list{i}")))
                    .unwrap(),
            );
        }
        let args = ["--cdp", ep.as_str(), "--json", "sessions", "list"];
        let check = || {
            let o = Command::new(env!("CARGO_BIN_EXE_angrav"))
                .args(args)
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let rows = v.as_array().unwrap();
            assert_eq!(rows.len(), n);
            assert!(rows.iter().all(|r| r["state"] == "idle"), "{v}");
        };
        check();
        let (whole, own_cpu, browser_cpu) = costs(sim, RUNS, || timed_run(&args, &[]));
        let mut no_state_args = args.to_vec();
        no_state_args.push("--no-state");
        let no_state = median_of(RUNS, || timed_run(&no_state_args, &[]));
        let endpoint = sim.endpoint();
        let discovery = median_of(RUNS, || {
            let s = Instant::now();
            endpoint.list().unwrap();
            s.elapsed()
        });
        let version = median_of(RUNS, || {
            let s = Instant::now();
            endpoint.version().unwrap();
            s.elapsed()
        });
        let sessions =
            angrav::sessions::discover(std::slice::from_ref(endpoint), &profile).unwrap();
        // Each phase for every window at once, one thread per window, the phases
        // apart: the threads wait for each other at the end of each, while the wall
        // time and Chromium's CPU time are read.
        let rounds: Vec<Vec<(Duration, Duration)>> = (0..RUNS + 2)
            .map(|_| {
                let done = std::sync::Barrier::new(sessions.len() + 1);
                let go = std::sync::Barrier::new(sessions.len() + 1);
                std::thread::scope(|scope| {
                    for s in &sessions {
                        let (done, go, library, profile_json, lean, key) =
                            (&done, &go, library, &profile_json, &lean, &key);
                        scope.spawn(move || {
                            let step = || {
                                done.wait();
                                go.wait();
                            };
                            step();
                            let w = &s.window;
                            let ws = w.panel_target.as_deref().unwrap_or(&w.ws_url);
                            let mut conn = Connection::open(ws).unwrap();
                            step();
                            let t = Duration::from_secs(10);
                            let by = || Instant::now() + t;
                            let world = |frame_id| CreateIsolatedWorld {
                                frame_id,
                                world_name: "angrav",
                                grant_univeral_access: false,
                            };
                            // As `Panel::attach`: an out-of-process panel's frame is its
                            // target; else the frame tree and a world in the main frame
                            // are asked together, and an in-process panel iframe gets a
                            // world of its own.
                            let context = match &w.panel_target {
                                Some(ws) => {
                                    let frame = ws.rsplit('/').next().unwrap();
                                    conn.call(&world(frame), t).unwrap().execution_context_id
                                }
                                None => {
                                    let tree = conn.send(&GetFrameTree {}).unwrap();
                                    let main = conn.send(&world(&s.target_id)).unwrap();
                                    let tree = conn.wait(tree, by()).unwrap().frame_tree;
                                    let main = conn.wait(main, by()).unwrap();
                                    match tree
                                        .frames()
                                        .into_iter()
                                        .find(|f| f.url.contains("cascade-panel"))
                                    {
                                        Some(f) => {
                                            conn.call(&world(&f.id), t).unwrap().execution_context_id
                                        }
                                        None => main.execution_context_id,
                                    }
                                }
                            };
                            step();
                            // The world has the library from the lists before.
                            let probe = CallFunctionOn {
                                function_declaration: "function (lean) { return globalThis.__angravLibraries.values().next().value.first(lean); }",
                                execution_context_id: Some(context),
                                arguments: vec![CallArgument { value: lean }],
                                return_by_value: true,
                                ..Default::default()
                            };
                            let first = conn.call(&probe, t).unwrap().into_value().unwrap();
                            assert_eq!(first["state"], "idle");
                            step();
                            let install = CallFunctionOn {
                                function_declaration: library,
                                execution_context_id: Some(context),
                                arguments: vec![
                                    CallArgument { value: profile_json },
                                    CallArgument { value: lean },
                                    CallArgument { value: key },
                                ],
                                return_by_value: true,
                                ..Default::default()
                            };
                            conn.call(&install, t).unwrap();
                            done.wait();
                        });
                    }
                    let mut marks = Vec::new();
                    for k in 0..PHASES.len() + 1 {
                        done.wait();
                        marks.push((Instant::now(), chromium_cpu(sim)));
                        if k < PHASES.len() {
                            go.wait();
                        }
                    }
                    marks
                        .windows(2)
                        .map(|m| (m[1].0 - m[0].0, m[1].1.saturating_sub(m[0].1)))
                        .collect()
                })
            })
            .collect();
        let listed = Registry::with(vec![endpoint.clone()], profile.clone())
            .unwrap()
            .states();
        let printing = median_of(RUNS, || {
            let s = Instant::now();
            let text = serde_json::to_string(&ListRow::all(&listed, &[])).unwrap();
            std::hint::black_box(text);
            s.elapsed()
        });
        println!(
            "\n  {n} window(s): whole process {:.1} ms (--no-state, every panel found anew: {:.1} ms); CPU per run: angrav {:.1} ms, Chromium {:.1} ms",
            ms(whole),
            ms(no_state),
            ms(own_cpu),
            ms(browser_cpu),
        );
        println!(
            "    {:40} {:.2} ms\n    {:40} {:.2} ms\n    {:40} {:.2} ms (not asked by a list)",
            "process start (`--version`)",
            ms(start),
            "discovery: /json/list",
            ms(discovery),
            "discovery: /json/version",
            ms(version),
        );
        for (k, name) in PHASES.iter().enumerate() {
            let mut wall: Vec<Duration> = rounds[2..].iter().map(|r| r[k].0).collect();
            wall.sort();
            let cpu: Duration = rounds[2..].iter().map(|r| r[k].1).sum::<Duration>() / RUNS as u32;
            println!(
                "    {name:40} {:.2} ms, Chromium CPU {:.2} ms",
                ms(wall[RUNS / 2]),
                ms(cpu)
            );
        }
        println!(
            "    {:40} {:.3} ms",
            "printing (the JSON rows)",
            ms(printing)
        );
    }
    list_through_serve(sim, targets.len());
    for t in &targets {
        sim.close(&t.id).unwrap();
    }
    // The last figure of issue 21's table, so that this one section prints them all.
    let mut windows: Vec<Open> = (0..10).map(|i| open_window(sim, i)).collect();
    let watch = Watch::start(&[ep.as_str()], windows.len());
    let mut latency = Vec::new();
    for k in 0..210 {
        let w = &mut windows[(k / 2) % 10];
        let at = flip(w);
        let seen = watch.event_for(&w.target.id) - at;
        // The first round of each window warms up.
        if k >= 20 {
            latency.push(seen);
        }
    }
    println!(
        "
`sessions watch` event latency (DOM change -> its line on stdout), 10 windows, 190 changes: {}",
        summary(crate::ms(latency))
    );
    for w in &windows {
        sim.close(&w.target.id).unwrap();
    }
}

/// `sessions list --json --server URL` against a running `angrav serve`: the whole
/// process, and its parts timed here (the token file, the WebSocket to serve, the
/// request).
fn list_through_serve(sim: &Simulator, n: usize) {
    use tungstenite::Message;
    use tungstenite::client::IntoClientRequest;
    const RUNS: usize = 31;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let state = std::env::temp_dir().join(format!("angrav-bench-list-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_angrav"))
        .args([
            "--cdp",
            sim.endpoint().label(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("ANGRAV_STATE_DIR", &state)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "serve ended");
        if let Some(u) = line.split("dashboard: ").nth(1) {
            break u.trim().to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let (base, token) = url.split_once("/?token=").unwrap();
    let state_str = state.to_str().unwrap();
    let args = ["--server", base, "--json", "sessions", "list"];
    // serve lists every window once its monitors have read them.
    loop {
        let o = Command::new(env!("CARGO_BIN_EXE_angrav"))
            .args(args)
            .env("ANGRAV_STATE_DIR", &state)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if v.as_array()
            .is_some_and(|a| a.len() == n && a.iter().all(|r| r["state"] == "idle"))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (whole, own_cpu, _) = costs(sim, RUNS, || {
        timed_run(&args, &[("ANGRAV_STATE_DIR", state_str)])
    });
    let with_token = median_of(RUNS, || timed_run(&args, &[("ANGRAV_TOKEN", token)]));
    let token_file = median_of(RUNS, || {
        let s = Instant::now();
        std::hint::black_box(std::fs::read_to_string(state.join("serve.token")).unwrap());
        s.elapsed()
    });
    let addr = base.trim_start_matches("http://").to_string();
    let connect = || {
        let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
        req.headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
        let stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.set_nodelay(true).unwrap();
        tungstenite::client(req, stream).unwrap().0
    };
    let handshake = median_of(RUNS, || {
        let s = Instant::now();
        std::hint::black_box(connect());
        s.elapsed()
    });
    let mut ws = connect();
    let request = median_of(RUNS, || {
        let s = Instant::now();
        ws.send(Message::text(r#"{"id":1,"method":"sessions.list"}"#))
            .unwrap();
        std::hint::black_box(ws.read().unwrap());
        s.elapsed()
    });
    println!(
        "  through --server, {n} windows: whole {:.2} ms, CPU {:.2} ms (token in ANGRAV_TOKEN: {:.2} ms) | token file {:.3} ms | TCP + WebSocket handshake {:.2} ms | sessions.list request {:.2} ms (load average {})",
        ms(whole),
        ms(own_cpu),
        ms(with_token),
        ms(token_file),
        ms(handshake),
        ms(request),
        load_average()
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(state);
}

/// The language server, against the simulated one: a call's round trip in process,
/// the commands' wall times, and the cost `--all --ls` adds to a list of windows.
fn language_server(sim: &Simulator) {
    use angrav::ls::Ls;
    use angrav::panel::Deadline;
    use angrav::sim::ls::{Conversation, Gate, SimLs};
    const RUNS: usize = 15;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let conversations = (0..50)
        .map(|i| {
            let c = Conversation::new(
                &format!("{i:08x}-0000-4000-8000-000000000000"),
                &format!("ws{i}"),
            );
            if i % 5 == 0 {
                c.waiting(Gate::Command("cargo test".into()))
            } else {
                c.history(3)
            }
        })
        .collect();
    let sim_ls = SimLs::start("bench-token", conversations).unwrap();
    let ls = Ls::given(&sim_ls.url(), "bench-token", "--ls").unwrap();
    let calls: Vec<Duration> = (0..200)
        .map(|_| {
            let at = Instant::now();
            ls.call(
                "GetUserStatus",
                &serde_json::json!({}),
                Deadline::within(Duration::from_secs(5)),
            )
            .unwrap();
            at.elapsed()
        })
        .collect();
    println!("\nlanguage server (simulated, loopback HTTP)");
    println!("  GetUserStatus round trip in process: {}", summary(calls));
    let url = sim_ls.url();
    let named = [
        "--cdp",
        "127.0.0.1:1",
        "--ls",
        url.as_str(),
        "--ls-token",
        "bench-token",
    ];
    let with = |args: &[&'static str]| -> Vec<String> {
        named.iter().chain(args).map(|a| a.to_string()).collect()
    };
    for (what, args) in [
        ("`quota`", with(&["quota"])),
        (
            "`status --conversation`",
            with(&["status", "--conversation", "00000000"]),
        ),
        (
            "`sessions list --all`, 50 conversations, no window",
            with(&["--json", "sessions", "list", "--all"]),
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let t = median_of(RUNS, || timed_run(&args, &[]));
        println!("  {what}: median {:.2} ms of {RUNS}", ms(t));
    }
    let windows: Vec<TargetInfo> = (0..10)
        .map(|i| {
            sim.open(&Window::new(Layout::ALL[i % 3], &format!("lsb{i}")))
                .unwrap()
        })
        .collect();
    let ep = sim.endpoint().label().to_string();
    let plain = ["--cdp", ep.as_str(), "--json", "sessions", "list"];
    let all = [
        "--cdp",
        ep.as_str(),
        "--ls",
        url.as_str(),
        "--ls-token",
        "bench-token",
        "--json",
        "sessions",
        "list",
        "--all",
    ];
    let t_plain = median_of(RUNS, || timed_run(&plain, &[]));
    let t_all = median_of(RUNS, || timed_run(&all, &[]));
    println!(
        "  10 windows: `sessions list` median {:.2} ms; with `--all --ls` (50 conversations, each window probed for its LS) {:.2} ms",
        ms(t_plain),
        ms(t_all)
    );
    for w in windows {
        let _ = sim.close(&w.id);
    }
}
