//! Prints angrav's speed figures against a real headless Chromium. Not a test: it
//! asserts nothing, it measures. `cargo bench` runs it in the release profile.
//!
//! Sections: `transport` (issue 2), `status` (issue 3); pass names to run a subset.

use std::process::Command;
use std::time::{Duration, Instant};

use angrav::panel::Layout;
use angrav::sim::{Simulator, Window};
use cdp::Connection;
use cdp::methods::runtime::Evaluate;

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let sim = Simulator::start().unwrap_or_else(|e| panic!("{e}"));
    println!("machine: {}", machine());
    if run("transport") {
        transport(&sim);
    }
    if run("status") {
        status(&sim);
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
