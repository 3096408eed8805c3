//! The CDP transport against a real Chromium.

mod common;

use std::time::{Duration, Instant};

use cdp::methods::runtime::{CallArgument, CallFunctionOn, Enable, Evaluate};
use cdp::methods::{Command, Empty};
use cdp::{Connection, Error, TargetInfo};
use serde::Serialize;

use common::sim;

/// A blank tab for one test, closed when dropped.
struct Tab(TargetInfo);

impl Tab {
    fn open() -> Tab {
        Tab(sim().endpoint().new_target("about:blank").expect("new tab"))
    }
    fn connect(&self) -> Connection {
        Connection::open(self.0.web_socket_debugger_url.as_deref().expect("ws url"))
            .expect("connect")
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        let _ = sim().endpoint().close_target(&self.0.id);
    }
}

fn eval(expression: &str) -> Evaluate<'_> {
    Evaluate {
        expression,
        return_by_value: true,
        await_promise: true,
        ..Default::default()
    }
}

const LONG: Duration = Duration::from_secs(60);

#[test]
fn evaluates_and_reads_version_and_list() {
    let tab = Tab::open();
    let mut conn = tab.connect();
    let v = conn.call(&eval("1+1"), LONG).unwrap().into_value().unwrap();
    assert_eq!(v, 2);
    assert!(
        sim()
            .endpoint()
            .version()
            .unwrap()
            .browser
            .contains("Chrome")
    );
    assert!(
        sim()
            .endpoint()
            .list()
            .unwrap()
            .iter()
            .any(|t| t.id == tab.0.id && t.kind == "page")
    );
}

#[test]
fn a_call_on_a_target_closed_mid_call_fails_as_closed_not_at_its_deadline() {
    let tab = Tab::open();
    let mut conn = tab.connect();
    let pending = conn.send(&eval("new Promise(() => {})")).unwrap();
    sim().endpoint().close_target(&tab.0.id).unwrap();
    let err = conn.wait(pending, Instant::now() + LONG).unwrap_err();
    assert!(matches!(err, Error::TargetClosed { .. }), "{err}");
    // And every later call fails the same way at once.
    assert!(matches!(
        conn.call(&eval("1"), LONG).unwrap_err(),
        Error::TargetClosed { .. }
    ));
}

#[test]
fn a_call_without_reply_fails_at_its_own_deadline_and_the_connection_lives_on() {
    let tab = Tab::open();
    let mut conn = tab.connect();
    let err = conn
        .call(
            &eval("new Promise(r => setTimeout(() => r(7), 400))"),
            Duration::from_millis(50),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // The late reply (to an id nobody waits for) is dropped, not mistaken for this one.
    let v = conn
        .call(&eval("new Promise(r => setTimeout(() => r(8), 600))"), LONG)
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(v, 8);
}

#[test]
fn a_close_handle_wakes_a_blocked_reader() {
    let tab = Tab::open();
    let mut conn = tab.connect();
    let handle = conn.close_handle();
    let reader = std::thread::spawn(move || conn.next_event(None));
    handle.close();
    let got = reader.join().unwrap();
    assert!(matches!(got, Err(Error::Interrupted)), "{got:?}");
}

#[test]
fn events_read_during_a_call_are_kept_in_order() {
    let tab = Tab::open();
    let mut conn = tab.connect();
    conn.call(&Enable {}, LONG).unwrap();
    conn.call(
        &eval("for (let i = 0; i < 5; i++) console.log('n' + i)"),
        LONG,
    )
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let e = conn
            .next_event(Some(Instant::now() + LONG))
            .unwrap()
            .expect("an event");
        if e.method == "Runtime.consoleAPICalled" {
            let v: serde_json::Value = e.decode().unwrap();
            seen.push(v["args"][0]["value"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, ["n0", "n1", "n2", "n3", "n4"]);
}

#[derive(Serialize)]
struct Unknown {}
impl Command for Unknown {
    const METHOD: &'static str = "Nothing.likeThis";
    type Response = Empty;
}

#[test]
fn error_replies_carry_code_and_message_and_are_recognised() {
    let tab = Tab::open();
    let mut conn = tab.connect();
    let err = conn.call(&Unknown {}, LONG).unwrap_err();
    let cdp = err.cdp().expect("a CDP error");
    assert_eq!(cdp.code, -32601);
    assert!(cdp.message.contains("wasn't found"), "{}", cdp.message);
    let gone = CallFunctionOn {
        function_declaration: "function () { return 1; }",
        execution_context_id: Some(987654),
        arguments: Vec::<CallArgument>::new(),
        ..Default::default()
    };
    let err = conn.call(&gone, LONG).unwrap_err();
    assert!(err.is_context_gone(), "{err}");
}

#[test]
fn a_32_mb_reply_arrives_whole() {
    let tab = Tab::open();
    let mut conn = tab.connect();
    let v = conn
        .call(&eval("'x'.repeat(32 << 20)"), LONG)
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(v.as_str().map(str::len), Some(32 << 20));
}

#[test]
fn an_unreachable_endpoint_says_how_to_start_antigravity() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ep = cdp::Endpoint::parse(&format!(":{port}")).unwrap();
    let msg = ep.list().unwrap_err().to_string();
    assert!(msg.contains("--remote-debugging-port=9222"), "{msg}");
    assert!(msg.contains(&port.to_string()), "{msg}");
}
