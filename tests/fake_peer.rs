//! Transport faults Chromium will not produce on demand, from a scripted fake peer.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cdp::methods::Command;
use cdp::{Connection, Error};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

#[derive(Serialize)]
struct Echo {
    n: u32,
}

#[derive(Debug, Deserialize, PartialEq)]
struct EchoReply {
    n: u32,
}

impl Command for Echo {
    const METHOD: &'static str = "Test.echo";
    type Response = EchoReply;
}

type Ws = WebSocket<TcpStream>;

/// Starts a peer that runs `script` on the first connection; returns a URL to it.
fn peer(script: impl FnOnce(&mut Ws) + Send + 'static) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/devtools/page/FAKE", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        script(&mut ws);
    });
    (url, handle)
}

/// Reads one call; returns its id.
fn read_call(ws: &mut Ws) -> u64 {
    loop {
        if let Message::Text(t) = ws.read().unwrap() {
            let v: Value = serde_json::from_str(&t).unwrap();
            return v["id"].as_u64().unwrap();
        }
    }
}

fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

const LONG: Duration = Duration::from_secs(60);

fn deadline() -> Instant {
    Instant::now() + LONG
}

#[test]
fn out_of_order_replies_reach_the_right_callers() {
    let (url, peer) = peer(|ws| {
        let ids: Vec<u64> = (0..3).map(|_| read_call(ws)).collect();
        send(ws, json!({"id": ids[2], "result": {"n": 30}}));
        send(
            ws,
            json!({"method": "Test.somethingNew", "params": {"x": 1}}),
        );
        send(ws, json!({"id": 9999, "result": {"n": -1}}));
        send(
            ws,
            json!({"id": ids[0], "result": {"n": 10, "extra": [1, 2]}}),
        );
        send(ws, json!({"id": ids[1], "result": {"n": 20}}));
        let _ = ws.read();
    });
    let mut conn = Connection::open(&url).unwrap();
    let a = conn.send(&Echo { n: 1 }).unwrap();
    let b = conn.send(&Echo { n: 2 }).unwrap();
    let c = conn.send(&Echo { n: 3 }).unwrap();
    assert_eq!(conn.wait(a, deadline()).unwrap(), EchoReply { n: 10 });
    assert_eq!(conn.wait(b, deadline()).unwrap(), EchoReply { n: 20 });
    assert_eq!(conn.wait(c, deadline()).unwrap(), EchoReply { n: 30 });
    let e = conn.next_event(Some(deadline())).unwrap().unwrap();
    assert_eq!(e.method, "Test.somethingNew");
    drop(conn);
    peer.join().unwrap();
}

#[test]
fn malformed_messages_and_pings_are_tolerated() {
    let (url, peer) = peer(|ws| {
        let id = read_call(ws);
        ws.send(Message::text("not json at all")).unwrap();
        ws.send(Message::binary(vec![0xff, 0x00, 0x13])).unwrap();
        ws.send(Message::text("{}")).unwrap();
        ws.send(Message::text(r#"{"id": "seven", "result": 1}"#))
            .unwrap();
        ws.send(Message::text(r#"[1, 2, 3]"#)).unwrap();
        ws.send(Message::Ping(vec![1, 2, 3].into())).unwrap();
        send(ws, json!({"id": id, "result": {"n": 42}}));
        let _ = ws.read();
    });
    let mut conn = Connection::open(&url).unwrap();
    assert_eq!(
        conn.call(&Echo { n: 1 }, LONG).unwrap(),
        EchoReply { n: 42 }
    );
    drop(conn);
    peer.join().unwrap();
}

#[test]
fn a_32_mb_event_then_the_reply() {
    let (url, peer) = peer(|ws| {
        let id = read_call(ws);
        send(
            ws,
            json!({"method": "Test.big", "params": {"blob": "y".repeat(32 << 20)}}),
        );
        send(ws, json!({"id": id, "result": {"n": 5}}));
        let _ = ws.read();
    });
    let mut conn = Connection::open(&url).unwrap();
    assert_eq!(conn.call(&Echo { n: 1 }, LONG).unwrap(), EchoReply { n: 5 });
    let e = conn.next_event(Some(deadline())).unwrap().unwrap();
    assert_eq!(e.method, "Test.big");
    assert!(e.params.get().len() > 32 << 20);
    drop(conn);
    peer.join().unwrap();
}

#[test]
fn a_socket_closed_mid_call_fails_the_call_as_closed() {
    let (url, peer) = peer(|ws| {
        read_call(ws);
        ws.get_mut().shutdown(std::net::Shutdown::Both).unwrap();
    });
    let mut conn = Connection::open(&url).unwrap();
    let err = conn.call(&Echo { n: 1 }, LONG).unwrap_err();
    assert!(matches!(err, Error::TargetClosed { .. }), "{err}");
    let err = conn.call(&Echo { n: 2 }, LONG).unwrap_err();
    assert!(matches!(err, Error::TargetClosed { .. }), "{err}");
    peer.join().unwrap();
}

#[test]
fn a_broken_frame_ends_the_connection_without_panic() {
    let (url, peer) = peer(|ws| {
        read_call(ws);
        // A final frame with reserved opcode 3: no valid WebSocket peer sends this.
        ws.get_mut().write_all(&[0x83, 0x00]).unwrap();
        let _ = ws.read();
    });
    let mut conn = Connection::open(&url).unwrap();
    let err = conn.call(&Echo { n: 1 }, LONG).unwrap_err();
    assert!(matches!(err, Error::TargetClosed { .. }), "{err}");
    drop(conn);
    peer.join().unwrap();
}

#[test]
fn a_detach_fails_the_pending_call_at_once() {
    let (url, peer) = peer(|ws| {
        read_call(ws);
        send(
            ws,
            json!({"method": "Inspector.detached", "params": {"reason": "target_closed"}}),
        );
        let _ = ws.read();
    });
    let mut conn = Connection::open(&url).unwrap();
    let err = conn.call(&Echo { n: 1 }, LONG).unwrap_err();
    match &err {
        Error::TargetClosed { reason } => assert!(reason.contains("target_closed"), "{reason}"),
        other => panic!("{other}"),
    }
    drop(conn);
    peer.join().unwrap();
}

#[test]
fn an_error_reply_of_odd_shape_is_still_an_error() {
    let (url, peer) = peer(|ws| {
        let id = read_call(ws);
        send(
            ws,
            json!({"id": id, "error": {"code": "not-a-number", "data": {"k": 1}}}),
        );
        let _ = ws.read();
    });
    let mut conn = Connection::open(&url).unwrap();
    let err = conn.call(&Echo { n: 1 }, LONG).unwrap_err();
    let cdp = err.cdp().expect("a CDP error");
    assert_eq!(cdp.data.as_deref(), Some(r#"{"k":1}"#));
    drop(conn);
    peer.join().unwrap();
}
