//! What angrav remembers across runs: the state directory, aliases, groups, the
//! journal, `log` and `turns`. Most tests need no browser; the alias and group ones
//! open simulated windows.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use angrav::journal::{self, Ended, Filter, Journal, Kind, Sent, Since, TurnOutcome, TurnRecord};
use angrav::panel::Layout;
use angrav::sim::Window;
use angrav::state::StateDir;
use common::{open, sim, stderr, stdout};
use serde_json::{Value, json};

/// A state directory of its own for one test, removed when the test ends.
struct TempState(PathBuf);

impl TempState {
    fn new(test: &str) -> TempState {
        let p = std::env::temp_dir().join(format!("angrav-memory-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempState(p)
    }

    fn dir(&self) -> StateDir {
        StateDir::at(&self.0)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn command(state: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_angrav"));
    c.args(args)
        .env("ANGRAV_STATE_DIR", state)
        .env("TMPDIR", common::tmp_dir())
        .env_remove("ANGRAV_SELECTORS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// `angrav ARGS` with this state directory and no browser.
fn offline(state: &TempState, args: &[&str]) -> Output {
    command(&state.0, args).output().expect("run angrav")
}

/// `angrav --cdp <the test browser> ARGS` with this state directory.
fn online(state: &TempState, args: &[&str]) -> Output {
    let mut all = vec!["--cdp", sim().endpoint().label()];
    all.extend_from_slice(args);
    offline(state, &all)
}

fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

fn json_of(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).expect("JSON on stdout")
}

/// `N` events from one writer, each through a journal of its own (open, record,
/// drop), so every event is one append competing for the lock.
fn write_events(dir: &StateDir, writer: &str, n: usize) {
    for i in 0..n {
        let j = Journal::open(dir.clone());
        j.record(Kind::StateChange, json!({ "writer": writer, "n": i }));
    }
}

const CHILD_ENV: &str = "ANGRAV_TEST_JOURNAL_CHILD";

/// Not a test: the other process of `journal_appends_from_processes_at_once_...`.
#[test]
#[ignore = "a helper process started by another test"]
fn journal_child() {
    if let (Some(dir), Ok(writer)) = (std::env::var_os(CHILD_ENV), std::env::var("WRITER")) {
        write_events(&StateDir::at(dir), &writer, PER_WRITER);
    }
}

const PER_WRITER: usize = 150;

#[test]
fn journal_appends_from_processes_at_once_lose_no_line_and_keep_seq_increasing() {
    let state = TempState::new("race");
    let children: Vec<_> = ["p1", "p2"]
        .into_iter()
        .map(|w| {
            Command::new(std::env::current_exe().expect("test binary"))
                .args(["journal_child", "--exact", "--ignored", "--quiet"])
                .env(CHILD_ENV, &state.0)
                .env("WRITER", w)
                .stdout(Stdio::null())
                .spawn()
                .expect("start a second process")
        })
        .collect();
    // Two threads here, with their own journals, write at the same time.
    std::thread::scope(|s| {
        for w in ["t1", "t2"] {
            let dir = state.dir();
            s.spawn(move || write_events(&dir, w, PER_WRITER));
        }
    });
    for mut c in children {
        assert!(c.wait().expect("child exits").success());
    }
    let read = journal::read(&state.dir(), &Filter::default()).expect("read");
    let total = 4 * PER_WRITER as u64;
    assert_eq!(read.skipped, 0);
    assert_eq!(read.last_seq, total);
    let seqs: Vec<u64> = read.entries.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "unique, increasing, none lost"
    );
    for w in ["p1", "p2", "t1", "t2"] {
        let ns: Vec<u64> = read
            .entries
            .iter()
            .filter(|e| e.value["writer"] == w)
            .map(|e| e.value["n"].as_u64().unwrap())
            .collect();
        assert_eq!(ns, (0..PER_WRITER as u64).collect::<Vec<_>>(), "{w}");
    }
}

#[test]
fn journal_rotates_within_its_limit_and_seq_goes_on_across_runs() {
    let state = TempState::new("rotate");
    let limit = 8 * 1024;
    let filler = "x".repeat(100);
    for run in 0..10 {
        let j = Journal::with_limit(state.dir(), limit);
        for i in 0..20 {
            j.record(
                Kind::Snapshot,
                json!({ "run": run, "i": i, "filler": filler }),
            );
        }
    }
    let read = journal::read(&state.dir(), &Filter::default()).expect("read");
    assert_eq!(read.last_seq, 200);
    let seqs: Vec<u64> = read.entries.iter().map(|e| e.seq).collect();
    let first = seqs[0];
    assert!(first > 1, "the oldest entries were dropped");
    assert_eq!(seqs, (first..=200).collect::<Vec<_>>());
    let size = |n: &str| std::fs::metadata(state.file(n)).map_or(0, |m| m.len());
    let kept = size("journal.ndjson") + size("journal.1.ndjson");
    // Each file rotates at half the limit, plus at most one append (20 lines here).
    let batch = 20 * read.entries[0].line.len() as u64 + 200;
    assert!(kept <= limit + 2 * batch, "{kept} bytes kept");
}

/// Ten events a second apart from 2026-01-01T00:00:00Z, alternating two sessions.
fn ten_events(dir: &StateDir) {
    let j = Journal::open(dir.clone());
    for i in 0..10 {
        let (session, target, ws) = if i % 2 == 0 {
            ("AAA111", "AAA111FFFF", "alpha")
        } else {
            ("BBB222", "BBB222FFFF", "beta")
        };
        let kind = if i % 3 == 0 {
            Kind::NewSession
        } else {
            Kind::StateChange
        };
        j.record(
            kind,
            json!({
                "timestamp": format!("2026-01-01T00:00:0{i}.000Z"),
                "session": session,
                "target_id": target,
                "workspace": ws,
                "previous": "idle",
                "current": "thinking",
            }),
        );
    }
}

fn seqs_of(ndjson: &str) -> Vec<u64> {
    ndjson
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("a JSON line")["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn log_filters_by_seq_time_kind_and_session_exactly() {
    let state = TempState::new("log");
    ten_events(&state.dir());
    let after4 = ok(&offline(&state, &["log", "--json", "--since", "4"]));
    assert_eq!(seqs_of(&after4), (5..=10).collect::<Vec<_>>());
    // As a watch prints them: `type`, and the session object.
    let fifth: Value = serde_json::from_str(after4.lines().next().unwrap()).unwrap();
    assert_eq!(
        fifth,
        json!({
            "seq": 5,
            "type": "state_change",
            "timestamp": "2026-01-01T00:00:04.000Z",
            "session": {"id": "AAA111", "target_id": "AAA111FFFF", "workspace": "alpha", "title": null, "endpoint": null},
            "previous": "idle",
            "current": "thinking",
        })
    );
    let from7 = ok(&offline(
        &state,
        &["log", "--json", "--since", "2026-01-01T00:00:07Z"],
    ));
    assert_eq!(seqs_of(&from7), [8, 9, 10]);
    let from7_offset = ok(&offline(
        &state,
        &["log", "--json", "--since", "2026-01-01T01:00:07+01:00"],
    ));
    assert_eq!(from7_offset, from7);
    // Seqs 1, 4, 7, 10 are new_session; alpha has the odd seqs.
    let changes = ok(&offline(
        &state,
        &[
            "log",
            "--json",
            "--kind",
            "state_change",
            "--session",
            "alpha",
        ],
    ));
    assert_eq!(seqs_of(&changes), [3, 5, 9]);
    let by_prefix = ok(&offline(&state, &["log", "--json", "--session", "bbb2"]));
    assert_eq!(seqs_of(&by_prefix), [2, 4, 6, 8, 10]);
    // Everything was long before ten minutes ago.
    assert_eq!(ok(&offline(&state, &["log", "--since", "10m"])), "");
    let plain = ok(&offline(&state, &["log"]));
    assert_eq!(
        plain.lines().count(),
        11,
        "a header, then ten entries: {plain}"
    );
    aligned(&plain, "KIND");
    let third = plain.lines().nth(3).unwrap();
    assert!(
        third.contains("2026-01-01T00:00:02.000Z")
            && third.contains("state_change")
            && third.contains("AAA111")
            && third.contains("idle -> thinking"),
        "{third}"
    );
    let bad = offline(&state, &["log", "--kind", "mood_swing"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("state_change"), "{}", stderr(&bad));
    // A session the journal knows nothing of is not found, as everywhere (exit 3,
    // naming the ones it knows); one it knows with nothing in range is no error.
    for args in [
        &["log", "--session", "nope"][..],
        &["turns", "--json", "--session", "nope"],
        &["log", "--session", "alpha", "--session", "nope"],
    ] {
        let o = offline(&state, args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
        assert!(
            stderr(&o).contains("no session matches 'nope'")
                && stderr(&o).contains("AAA111 (alpha)"),
            "{}",
            stderr(&o)
        );
    }
    let quiet = offline(&state, &["log", "--session", "alpha", "--since", "10m"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", stderr(&quiet));
    assert_eq!(ok(&quiet), "");
}

fn after(since: u64) -> Filter {
    Filter {
        since: Since::Seq(since),
        ..Filter::default()
    }
}

#[test]
fn a_replay_after_a_seq_then_live_entries_have_no_gap_and_no_duplicate() {
    let state = TempState::new("replay");
    ten_events(&state.dir());
    // A consumer saw up to seq 6 and comes back (as `watch --since 6` does): a
    // journal of this run is open, the replay is read, then live events are recorded
    // and shown with the seq `record` gives, before they are written.
    let live = Journal::open(state.dir());
    let replay = journal::read(&state.dir(), &after(6)).expect("read");
    let mut seen: Vec<u64> = replay.entries.iter().map(|e| e.seq).collect();
    for kind in [Kind::EndpointLost, Kind::EndpointBack] {
        seen.push(
            live.record(kind, json!({ "endpoint": "127.0.0.1:1" }))
                .unwrap(),
        );
        // Another process reads meanwhile: it waits for the write, never sees a gap.
        let now = journal::read(&state.dir(), &Filter::default()).expect("read");
        assert_eq!(now.last_seq, *seen.last().unwrap());
    }
    drop(live);
    assert_eq!(seen, (7..=12).collect::<Vec<_>>());
    // A later run resumes after the last seq it saw and gets exactly what followed.
    Journal::open(state.dir()).record(Kind::Snapshot, json!({ "session": "AAA111" }));
    let next = journal::read(&state.dir(), &after(12)).expect("read");
    assert_eq!(next.entries.len(), 1);
    assert_eq!(next.entries[0].seq, 13);
    assert_eq!(next.entries[0].value["kind"], "snapshot");
    assert_eq!(next.last_seq, 13);
}

#[test]
fn a_line_cut_short_by_a_crash_is_left_out_and_the_journal_goes_on() {
    let state = TempState::new("cut");
    ten_events(&state.dir());
    let live = state.file("journal.ndjson");
    let mut text = std::fs::read_to_string(&live).unwrap();
    text += "{\"seq\":11,\"timestamp\":\"2026-01-";
    std::fs::write(&live, &text).unwrap();
    Journal::open(state.dir()).record(Kind::Snapshot, json!({}));
    let read = journal::read(&state.dir(), &after(9)).expect("read");
    assert_eq!(read.skipped, 1);
    assert_eq!(
        read.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [10, 11]
    );
}

#[test]
fn turns_lists_each_prompt_with_its_outcome_and_answer() {
    let state = TempState::new("turns");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let sent = |prompt: &str, target: &str, ws: &str, at: u64| Sent {
        session: target[..6].to_string(),
        target_id: target.to_string(),
        workspace: Some(ws.to_string()),
        title: None,
        endpoint: None,
        run: None,
        id: None,
        prompt: prompt.to_string(),
        started: angrav::timestamp::rfc3339(t0 + Duration::from_secs(at)),
    };
    let j = Journal::open(state.dir());
    let first = sent("Review auth.rs", "CCC333AAAA", "gamma", 0);
    j.record_prompt(&first);
    j.record_turn(&TurnRecord {
        sent: first,
        ended: Ended::new(
            TurnOutcome::Idle,
            "## Findings\nNo bug.",
            Duration::from_millis(2500),
            t0 + Duration::from_millis(2500),
        ),
    });
    j.record_prompt(&sent("Only sent", "DDD444AAAA", "delta", 5));
    let third = sent("Run the tests", "CCC333AAAA", "gamma", 10);
    j.record_prompt(&third);
    j.record_turn(&TurnRecord {
        sent: third,
        ended: Ended::new(
            TurnOutcome::Timeout,
            "",
            Duration::from_secs(120),
            t0 + Duration::from_secs(130),
        ),
    });
    drop(j);
    let turns = json_of(&offline(&state, &["turns", "--json"]));
    let turns = turns.as_array().unwrap();
    assert_eq!(turns.len(), 3, "{turns:?}");
    assert_eq!(turns[0]["prompt"], "Review auth.rs");
    assert_eq!(turns[0]["outcome"], "idle");
    assert_eq!(turns[0]["duration_ms"], 2500);
    assert_eq!(turns[0]["answer"], "## Findings\nNo bug.");
    assert_eq!(turns[0]["answer_len"], 19);
    assert_eq!(turns[1]["prompt"], "Only sent");
    assert!(
        turns[1].get("outcome").is_none(),
        "not seen to end: {}",
        turns[1]
    );
    assert_eq!(turns[2]["outcome"], "timeout");
    let plain = ok(&offline(&state, &["turns", "--session", "gamma"]));
    aligned(&plain, "OUTCOME");
    let lines: Vec<&str> = plain.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{plain}");
    assert!(
        lines[0].contains("CCC333") && lines[0].contains("idle") && lines[0].contains("2.5s"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("## Findings") && !lines[0].contains("No bug"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("timeout"), "{}", lines[1]);
}

#[test]
fn dispatch_journals_each_prompt_submitted_before_it_is_sent() {
    let state = TempState::new("submitted");
    let w = open(&[
        Window::new(Layout::Current, "memory-submit-a").scenario("instant"),
        Window::new(Layout::LegacyFrame, "memory-submit-b").scenario("instant"),
    ]);
    let file = common::tmp_dir().join(format!("submitted-{}.txt", std::process::id()));
    std::fs::write(&file, "first prompt\nsecond prompt\n").unwrap();
    let mut args = vec!["--json", "dispatch", "-f", file.to_str().unwrap()];
    let sessions = common::session_args(&w);
    args.extend(sessions.iter().map(String::as_str));
    ok(&online(&state, &args));
    let entries = journal::read(&state.dir(), &Filter::default())
        .unwrap()
        .entries;
    let ids: Vec<&str> = entries
        .iter()
        .filter(|e| e.value["kind"] == "prompt_sent")
        .map(|e| e.value["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{entries:#?}");
    for id in ids {
        let of = |kind: &str| {
            entries
                .iter()
                .find(|e| e.value["kind"] == kind && e.value["id"] == id)
                .unwrap_or_else(|| panic!("no {kind} of {id}: {entries:#?}"))
        };
        let (submitted, sent) = (of("prompt_submitted"), of("prompt_sent"));
        let at = |e: &journal::Entry| {
            angrav::timestamp::parse_rfc3339(e.value["timestamp"].as_str().unwrap()).unwrap()
        };
        // The Enter comes before the page shows the prompt delivered: by seq and by time.
        assert!(submitted.seq < sent.seq, "{submitted:?}\n{sent:?}");
        assert!(at(submitted) <= at(sent), "{submitted:?}\n{sent:?}");
        // The send began before both.
        let started = angrav::timestamp::parse_rfc3339(sent.value["started"].as_str().unwrap());
        assert!(started.unwrap() <= at(submitted), "{sent:?}");
    }
}

/// A table whose header names `column`, each row's cell under it starting where the
/// name does.
fn aligned(table: &str, column: &str) {
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let at = header
        .find(&format!("  {column}"))
        .unwrap_or_else(|| panic!("no {column} column: {table}"))
        + 2;
    for row in lines {
        let before: String = row.chars().take(at).collect();
        assert!(
            before.ends_with("  ") && row.chars().nth(at).is_some_and(|c| c != ' '),
            "{column} not aligned:\n{table}"
        );
    }
}

#[test]
fn a_corrupt_or_foreign_state_file_is_reported_and_left_untouched() {
    let state = TempState::new("corrupt");
    std::fs::create_dir_all(&state.0).unwrap();
    let files = [
        ("aliases.json", "{\"aliases\": {\"x\": "),
        ("groups.json", "{\"groups\": {}}"),
    ];
    for (name, text) in files {
        std::fs::write(state.file(name), text).unwrap();
    }
    for args in [
        &["alias", "list"][..],
        &["alias", "rm", "x"],
        &["group", "list"],
        &["group", "rm", "x"],
    ] {
        let o = offline(&state, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let name = if args[0] == "alias" {
            "aliases.json"
        } else {
            "groups.json"
        };
        let err = stderr(&o);
        assert!(
            err.contains(&state.file(name).display().to_string())
                && err.contains("left it as it is"),
            "{err}"
        );
    }
    for (name, text) in files {
        assert_eq!(
            std::fs::read_to_string(state.file(name)).unwrap(),
            text,
            "{name}"
        );
    }
}

#[test]
fn a_damaged_journal_tail_is_skipped_and_recording_goes_on_after_its_highest_seq() {
    let state = TempState::new("damaged");
    ten_events(&state.dir());
    let live = state.file("journal.ndjson");
    // Garbage after the entries, and an entry out of order in the middle of it:
    // the seqs go on from the highest valid one.
    let mut text = std::fs::read_to_string(&live).unwrap();
    text += "these are not the entries you are looking for\n";
    text += "{\"seq\":40,\"timestamp\":\"2026-01-01T00:00:20.000Z\",\"kind\":\"snapshot\"}\n";
    text += "{\"seq\": \"forty-one\"}\n\u{0}\u{0}\u{0}\n";
    std::fs::write(&live, &text).unwrap();
    let j = Journal::open(state.dir());
    assert_eq!(j.record(Kind::Snapshot, json!({})), Some(41));
    assert_eq!(j.record(Kind::Snapshot, json!({})), Some(42));
    drop(j);
    // Later runs go on too; the damaged lines stay where they were, left out.
    let o = offline(&state, &["log", "--json", "--since", "10"]);
    assert_eq!(seqs_of(&ok(&o)), [40, 41, 42]);
    assert!(stderr(&o).contains("3 lines"), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&live).unwrap().starts_with(&text));

    // A journal that holds nothing but garbage is recorded after, from seq 1.
    std::fs::write(&live, "not a journal\n").unwrap();
    std::fs::remove_file(state.file("journal.1.ndjson")).ok();
    assert_eq!(
        Journal::open(state.dir()).record(Kind::Snapshot, json!({})),
        Some(1)
    );
}

#[test]
fn the_largest_seq_is_never_wrapped_nor_repeated() {
    let state = TempState::new("max");
    std::fs::create_dir_all(&state.0).unwrap();
    let last = format!(
        "{{\"seq\":{},\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"kind\":\"snapshot\"}}\n",
        u64::MAX
    );
    std::fs::write(state.file("journal.ndjson"), &last).unwrap();
    let j = Journal::open(state.dir());
    assert_eq!(j.record(Kind::Snapshot, json!({})), None);
    assert_eq!(j.record(Kind::Snapshot, json!({})), None);
    drop(j);
    assert_eq!(
        std::fs::read_to_string(state.file("journal.ndjson")).unwrap(),
        last
    );
}

#[test]
fn a_watch_whose_journal_cannot_record_stops_rather_than_repeat_a_stored_seq() {
    let w = open(&[Window::new(Layout::Current, "unnumbered")]);
    let watch = [
        "--json",
        "sessions",
        "watch",
        "--count",
        "0",
        "--session",
        w.id(0),
    ];
    let state = TempState::new("unnumbered");
    let j = Journal::open(state.dir());
    for _ in 0..2 {
        j.record(Kind::Snapshot, json!({}));
    }
    drop(j);
    // Recording, the watch's seqs follow the stored ones.
    let line = json_of(&online(&state, &watch));
    assert_eq!(line["seq"], 3, "{line}");
    // Its lock cannot be taken, or the last seq is the largest there is: a watch
    // ends (exit 1) before it prints a line, rather than number its own from 1.
    let lock = state.file("journal.lock");
    std::fs::remove_file(&lock).unwrap();
    std::fs::create_dir(&lock).unwrap();
    let refused = |why: &str| {
        let o = online(&state, &watch);
        assert_eq!(o.status.code(), Some(1), "{why}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{why}");
        assert!(
            stderr(&o).contains("the watch stopped"),
            "{why}: {}",
            stderr(&o)
        );
    };
    refused("no lock");
    std::fs::remove_dir(&lock).unwrap();
    std::fs::write(
        state.file("journal.ndjson"),
        format!(
            "{{\"seq\":{},\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"kind\":\"snapshot\"}}\n",
            u64::MAX
        ),
    )
    .unwrap();
    refused("the largest seq");
    // Without the journal, the run's own count.
    let line = json_of(&online(&state, &[&["--no-state"][..], &watch].concat()));
    assert_eq!(line["seq"], 1, "{line}");
}

/// A `state_change` of chat `target` as a watch records it, seen at second `at`.
fn change(target: &str, previous: &str, current: &str, at: u32) -> Value {
    json!({
        "timestamp": format!("2026-01-01T00:00:{at:02}.000Z"),
        "session": {"id": &target[..4], "target_id": target, "workspace": "w", "title": "t", "endpoint": "e"},
        "previous": previous,
        "current": current,
    })
}

#[test]
fn two_recorders_of_the_same_chats_write_each_event_once() {
    let state = TempState::new("two");
    // Two watches of the same chat, in two processes (two journals): each sees the
    // chat start and stop, a moment apart.
    let (a, b) = (Journal::open(state.dir()), Journal::open(state.dir()));
    let started = a.record(Kind::StateChange, change("AAAA1111", "idle", "thinking", 1));
    assert_eq!(
        b.record(Kind::StateChange, change("AAAA1111", "idle", "thinking", 2)),
        started
    );
    // What only one of them saw is written; then the other's same event keeps its seq.
    let other = b.record(Kind::StateChange, change("BBBB2222", "idle", "error", 2));
    let stopped = b.record(Kind::StateChange, change("AAAA1111", "thinking", "idle", 5));
    assert_eq!(
        a.record(Kind::StateChange, change("AAAA1111", "thinking", "idle", 4)),
        stopped
    );
    assert_eq!(
        a.record(Kind::StateChange, change("BBBB2222", "idle", "error", 3)),
        other
    );
    // One recorder's own repeated transition is two events; so is one seen long after.
    let again = a.record(Kind::StateChange, change("AAAA1111", "idle", "thinking", 6));
    let again2 = a.record(Kind::StateChange, change("AAAA1111", "idle", "thinking", 7));
    assert_ne!(again, again2);
    assert_eq!(
        b.record(Kind::StateChange, change("AAAA1111", "idle", "thinking", 8)),
        again2
    );
    let late = b.record(Kind::StateChange, change("BBBB2222", "idle", "error", 30));
    assert_ne!(late, other);
    drop((a, b));
    let read = journal::read(&state.dir(), &Filter::default()).expect("read");
    let seqs: Vec<u64> = read.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert_eq!(
        [started, other, stopped, again, again2, late].map(Option::unwrap),
        [1, 2, 3, 4, 5, 6]
    );
}

#[test]
fn no_state_runs_without_the_directory_and_state_commands_say_so() {
    let state = TempState::new("nostate");
    for args in [
        &["--no-state", "alias", "list"][..],
        &["log", "--no-state"],
        &["--no-state", "turns"],
    ] {
        let o = offline(&state, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("--no-state"), "{}", stderr(&o));
    }
    assert!(!state.0.exists(), "nothing written");
}

#[test]
fn an_alias_follows_its_window_closed_and_reopened_with_the_same_workspace() {
    let state = TempState::new("follow");
    let ws = format!("memory-follow-{}", std::process::id());
    let first = open(&[Window::new(Layout::Current, &ws)]);
    let old = first.id(0).to_string();
    ok(&online(&state, &["alias", "set", "reviewer", &old]));
    let status = json_of(&online(
        &state,
        &["--json", "status", "--session", "reviewer"],
    ));
    assert_eq!(status["session"]["target_id"], old.as_str());
    drop(first);
    let second = open(&[Window::new(Layout::LegacyFrame, &ws)]);
    let new = second.id(0).to_string();
    let o = online(&state, &["--json", "status", "--session", "reviewer"]);
    assert_eq!(json_of(&o)["session"]["target_id"], new.as_str());
    assert!(stderr(&o).contains("following workspace"), "{}", stderr(&o));
    // The alias now remembers the new window.
    let list = json_of(&offline(&state, &["--json", "alias", "list"]));
    assert_eq!(list[0]["name"], "reviewer");
    assert_eq!(list[0]["target_id"], new.as_str());
    assert_eq!(list[0]["workspace"], ws.as_str());
    drop(second);
    let gone = online(&state, &["status", "--session", "reviewer"]);
    assert_eq!(gone.status.code(), Some(3), "{}", stderr(&gone));
    assert!(stderr(&gone).contains("is gone"), "{}", stderr(&gone));
    ok(&offline(&state, &["alias", "rm", "reviewer"]));
    assert_eq!(
        json_of(&offline(&state, &["--json", "alias", "list"])),
        json!([])
    );
}

#[test]
fn aliases_set_by_processes_at_once_are_all_kept() {
    let state = TempState::new("alias-race");
    let w = open(&[Window::new(Layout::Current, "memory-alias-race")]);
    let names: Vec<String> = (0..6).map(|i| format!("a{i}")).collect();
    let children: Vec<_> = names
        .iter()
        .map(|n| {
            let mut c = command(
                &state.0,
                &[
                    "--cdp",
                    sim().endpoint().label(),
                    "alias",
                    "set",
                    n,
                    w.id(0),
                ],
            );
            c.spawn().expect("run angrav")
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().expect("angrav exits");
        ok(&o);
    }
    let list = json_of(&offline(&state, &["--json", "alias", "list"]));
    let kept: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(kept, names);
}

#[test]
fn a_group_narrows_the_sessions_commands_to_its_members() {
    let state = TempState::new("group");
    let w = open(&[
        Window::new(Layout::Current, "memory-group-a"),
        Window::new(Layout::LegacyTarget, "memory-group-b"),
        Window::new(Layout::Current, "memory-group-c"),
    ]);
    ok(&online(
        &state,
        &["group", "set", "pair", w.id(0), "memory-group-b"],
    ));
    let ids = |v: &Value| {
        let mut ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            // A listed or awaited chat names it in `session`; a group member is
            // a remembered window.
            .map(|s| {
                s["session"]["target_id"]
                    .as_str()
                    .or(s["target_id"].as_str())
            })
            .map(|id| id.unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let mut members = vec![w.id(0).to_string(), w.id(1).to_string()];
    members.sort();
    let listed = json_of(&online(
        &state,
        &["--json", "sessions", "list", "--group", "pair"],
    ));
    assert_eq!(ids(&listed), members);
    let report = json_of(&online(
        &state,
        &["--json", "sessions", "wait", "--group", "pair"],
    ));
    assert_eq!(ids(&report["sessions"]), members);
    let groups = json_of(&offline(&state, &["--json", "group", "list"]));
    assert_eq!(groups[0]["name"], "pair");
    assert_eq!(ids(&groups[0]["members"]), members);
    let unknown = online(&state, &["sessions", "list", "--group", "nobody"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
}

/// Reads `rx` until a line satisfies `done` (or 60 s pass); returns every line read.
fn read_until(
    rx: &crossbeam_channel::Receiver<String>,
    mut done: impl FnMut(&Value) -> bool,
) -> Vec<Value> {
    let by = std::time::Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    loop {
        let line = rx.recv_deadline(by).expect("a line in time");
        let v: Value = serde_json::from_str(&line).expect("a JSON line");
        lines.push(v.clone());
        if done(&v) {
            return lines;
        }
    }
}

#[test]
fn watch_since_after_a_restart_delivers_exactly_the_events_in_between() {
    let state = TempState::new("since");
    let w = open(&[Window::new(Layout::Current, "memory-since")]);
    let cdp = sim().endpoint().label();
    let watch_args = [
        "--cdp",
        cdp,
        "--json",
        "sessions",
        "watch",
        "--session",
        w.id(0),
    ];
    // The first watch sees a prompt's turn, then is stopped with ^C.
    let mut first = command(&state.0, &watch_args).spawn().expect("run angrav");
    let out = common::lines(first.stdout.take().expect("piped"));
    let _err = common::lines(first.stderr.take().expect("piped"));
    read_until(&out, |v| v["type"] == "snapshot");
    ok(&online(
        &state,
        &["--session", w.id(0), "prompt", "--wait", "first task"],
    ));
    let mut seen = read_until(&out, |v| v["current"] == "idle");
    common::signal(first.id(), "INT");
    seen.extend(out.iter().map(|l| serde_json::from_str(&l).unwrap()));
    assert_eq!(first.wait().unwrap().code(), Some(130));
    // Each line it printed is in the journal under the seq printed.
    let journal = journal::read(&state.dir(), &Filter::default()).expect("read");
    for line in &seen {
        let entry = journal
            .entries
            .iter()
            .find(|e| e.seq == line["seq"].as_u64().unwrap())
            .unwrap_or_else(|| panic!("not journaled: {line}"));
        assert_eq!(entry.value["kind"], line["type"], "{line}");
    }
    let last_seen = seen
        .iter()
        .map(|l| l["seq"].as_u64().unwrap())
        .max()
        .unwrap();
    // While no watch runs: another prompt.
    ok(&online(
        &state,
        &["--session", w.id(0), "prompt", "--wait", "second task"],
    ));
    let between = journal::read(&state.dir(), &after(last_seen)).expect("read");
    let kinds: Vec<&str> = between
        .entries
        .iter()
        .map(|e| e.value["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.ends_with(&["prompt_sent", "turn_finished"]),
        "{kinds:?}"
    );
    let finished = &between.entries.last().unwrap().value;
    assert_eq!(finished["prompt"], "second task");
    assert_eq!(finished["outcome"], "idle");
    assert!(
        finished["answer"].as_str().unwrap().contains("second task"),
        "{finished}"
    );
    // The restarted watch replays exactly what came after the last seq seen, then
    // goes on live after it.
    let since = last_seen.to_string();
    let mut args = watch_args.to_vec();
    args.extend(["--since", &since, "--count", "0"]);
    let o = offline(&state, &args);
    let lines: Vec<Value> = ok(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    let n = between.entries.len();
    assert_eq!(lines.len(), n + 1, "{lines:?}");
    assert_eq!(
        seqs,
        (last_seen + 1..=last_seen + n as u64 + 1).collect::<Vec<_>>()
    );
    for (line, entry) in lines.iter().zip(&between.entries) {
        assert_eq!(line["type"], entry.value["kind"], "{line}");
    }
    assert_eq!(lines[n]["type"], "snapshot");
    assert_eq!(lines[n]["current"], "idle");
}

/// `angrav --cdp <the test browser> ARGS` under umask 022, with this state directory.
fn online_umask_022(state: &TempState, args: &[&str]) -> Output {
    Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_angrav"))
        .args(["--cdp", sim().endpoint().label()])
        .args(args)
        .env("ANGRAV_STATE_DIR", &state.0)
        .env("TMPDIR", common::tmp_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run angrav")
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_state_directory_is_private_whatever_the_umask() {
    let state = TempState::new("private");
    let w = open(&[Window::new(Layout::Current, "private-ws")]);
    // Made by a watch (the journal) and by `alias set` (aliases), under umask 022.
    // (A temp name planted as a link is never written through: a unit test of
    // src/state.rs, which can choose the name.)
    let o = online_umask_022(
        &state,
        &["sessions", "watch", "--count", "0", "--session", w.id(0)],
    );
    ok(&o);
    assert_eq!(mode(&state.0), 0o700);
    ok(&online_umask_022(
        &state,
        &["alias", "set", "mine", w.id(0)],
    ));
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&state.0).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(mode(&path), 0o600, "{name}");
        names.push(name);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "aliases.json",
            "aliases.lock",
            "journal.lock",
            "journal.ndjson"
        ]
    );
    // A directory open to others is said, and still used.
    std::fs::set_permissions(
        &state.0,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let o = offline(&state, &["alias", "list"]);
    assert!(ok(&o).contains("mine"));
    assert!(
        stderr(&o).contains("open to other users (mode 0755)"),
        "{}",
        stderr(&o)
    );
}

/// `sessions list --json` with this state directory: the `(state, layout)` of each
/// of these windows (target ids), in their order.
fn states_of(state: &TempState, ids: &[String], extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["--json", "sessions", "list"];
    args.extend_from_slice(extra);
    let list = json_of(&online(state, &args));
    ids.iter()
        .map(|id| {
            let row = common::by_target(&list, id).expect("the window is listed");
            let text = |k: &str| row[k].as_str().unwrap_or("none").to_string();
            (text("state"), text("layout"))
        })
        .collect()
}

fn places_of(state: &TempState) -> Value {
    let text = std::fs::read_to_string(state.file("places.json")).expect("places.json");
    serde_json::from_str::<Value>(&text).unwrap()["windows"].clone()
}

/// A remembered place names a world by its context id, which a new document may give
/// to another frame of the same window (ids restart after a cross-site navigation):
/// the layout a list shows, and remembers, is where the probe ran, never the one
/// remembered.
#[test]
fn a_list_shows_the_layout_where_the_probe_ran_not_the_one_remembered() {
    let state = TempState::new("places-layout");
    let w = open(&[
        Window::new(Layout::Current, "where-a"),
        Window::new(Layout::LegacyFrame, "where-b").start("thinking"),
    ]);
    let ids: Vec<String> = w.0.iter().map(|t| t.id.clone()).collect();
    let shown: Vec<(String, String)> = [("idle", "current"), ("thinking", "legacy-frame")]
        .iter()
        .map(|(s, l)| (s.to_string(), l.to_string()))
        .collect();
    assert_eq!(states_of(&state, &ids, &[]), shown);
    // The same worlds, each remembered with the other's layout.
    let mut swapped = places_of(&state);
    swapped[w.id(0)]["layout"] = "legacy-frame".into();
    swapped[w.id(1)]["layout"] = "current".into();
    let file = json!({ "angrav": "places/1", "windows": swapped });
    std::fs::write(state.file("places.json"), file.to_string()).unwrap();
    assert_eq!(states_of(&state, &ids, &[]), shown);
    let places = places_of(&state);
    assert_eq!(
        (&places[w.id(0)]["layout"], &places[w.id(1)]["layout"]),
        (&json!("current"), &json!("legacy-frame")),
        "{places}"
    );
}

#[test]
fn a_list_probes_each_panel_where_the_last_found_it_and_finds_it_anew_when_it_is_gone() {
    let state = TempState::new("places");
    let w = open(&[
        Window::new(Layout::Current, "places-a"),
        Window::new(Layout::LegacyFrame, "places-b").start("thinking"),
        Window::new(Layout::LegacyTarget, "places-c").start("approval"),
        Window::new(Layout::V2, "places-d").start("error"),
    ]);
    let ids: Vec<String> = w.0.iter().map(|t| t.id.clone()).collect();
    let shown: Vec<(String, String)> = [
        ("idle", "current"),
        ("thinking", "legacy-frame"),
        ("awaiting_approval", "legacy-target"),
        ("error", "v2"),
    ]
    .iter()
    .map(|(s, l)| (s.to_string(), l.to_string()))
    .collect();
    assert_eq!(states_of(&state, &ids, &[]), shown);
    let places = places_of(&state);
    for i in 0..w.0.len() {
        assert_eq!(places[w.id(i)]["layout"], shown[i].1.as_str(), "{places}");
    }
    // The second list starts where the first found the panels, and learns nothing new.
    assert_eq!(states_of(&state, &ids, &[]), shown);
    assert_eq!(places_of(&state), places);

    // Reloaded windows: the worlds there went with their documents; found anew.
    for i in [0, 1] {
        let ws = w.0[i].web_socket_debugger_url.as_deref().unwrap();
        let mut page = cdp::Connection::open(ws).unwrap();
        page.call(&cdp::methods::page::Reload {}, Duration::from_secs(10))
            .unwrap();
        angrav::sim::wait_loaded(&mut page).unwrap();
    }
    assert_eq!(states_of(&state, &ids, &[]), shown);

    // Each window's place moved to the next window's: a place is only ever followed
    // to its own window's targets, so each row is still its own window's.
    let mut moved = places_of(&state);
    for i in 0..w.0.len() {
        moved[w.id(i)] = places[w.id((i + 1) % w.0.len())].clone();
    }
    let file = json!({ "angrav": "places/1", "windows": moved });
    std::fs::write(state.file("places.json"), file.to_string()).unwrap();
    assert_eq!(states_of(&state, &ids, &[]), shown);
    assert_eq!(places_of(&state)[w.id(2)], places[w.id(2)]);

    // A window closed is forgotten by the next list.
    sim().close(&ids[3]).unwrap();
    let ids = &ids[..3];
    assert_eq!(states_of(&state, ids, &[]), shown[..3]);
    assert!(places_of(&state).get(w.id(3)).is_none());

    // Windows of an endpoint not asked stay for a later list, but not without end.
    let mut many = places_of(&state);
    for i in 0..300 {
        let mut entry = places[w.id(0)].clone();
        entry["endpoint"] = "http://127.0.0.1:1".into();
        many[format!("GONE{i:04}")] = entry;
    }
    let file = json!({ "angrav": "places/1", "windows": many });
    std::fs::write(state.file("places.json"), file.to_string()).unwrap();
    assert_eq!(states_of(&state, ids, &[]), shown[..3]);
    let kept = places_of(&state);
    let gone = kept
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("GONE"))
        .count();
    assert_eq!(gone, 256);
    assert!(ids.iter().all(|id| kept.get(id).is_some()), "{kept}");

    // A file angrav cannot read: said, left as it is, and the list goes on.
    std::fs::write(state.file("places.json"), "{\"windows\": ").unwrap();
    let o = online(&state, &["--json", "sessions", "list"]);
    ok(&o);
    assert!(
        stderr(&o).contains(&state.file("places.json").display().to_string()),
        "{}",
        stderr(&o)
    );
    assert_eq!(states_of(&state, ids, &[]), shown[..3]);
    assert_eq!(
        std::fs::read_to_string(state.file("places.json")).unwrap(),
        "{\"windows\": "
    );

    // Without the state directory nothing is remembered, and the same is shown.
    let none = TempState::new("places-none");
    assert_eq!(states_of(&none, ids, &["--no-state"]), shown[..3]);
    assert!(!none.0.exists(), "nothing written");
}

/// A state directory that cannot be made (under /proc): a list works without it, and
/// says so once, naming the file it could not keep and `--no-state`.
#[test]
fn a_list_works_without_a_state_directory_it_cannot_make() {
    let nowhere = TempState(PathBuf::from(format!(
        "/proc/angrav-nope-{}",
        std::process::id()
    )));
    let w = open(&[
        Window::new(Layout::Current, "nowhere-a").start("approval"),
        Window::new(Layout::V2, "nowhere-b"),
    ]);
    let ids: Vec<String> = w.0.iter().map(|t| t.id.clone()).collect();
    for _ in 0..2 {
        let o = online(&nowhere, &["--json", "sessions", "list"]);
        let list: Value = serde_json::from_str(&ok(&o)).unwrap();
        let state = |i: usize| common::by_target(&list, &ids[i]).unwrap()["state"].clone();
        assert_eq!(
            (state(0), state(1)),
            (json!("awaiting_approval"), json!("idle"))
        );
        let said: Vec<String> = stderr(&o).lines().map(String::from).collect();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("places.json") && said[0].contains("--no-state"),
            "{said:?}"
        );
    }
}
