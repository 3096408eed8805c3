//! The JSON vocabulary: the shape of every `--json` result, written down once, as
//! data. `angrav schema` prints it; the tests check every command's output against it.
//!
//! The description is a subset of JSON Schema: `type` (a name or a list of names),
//! `properties`, `required`, `additionalProperties: false`, `items`, `enum`, `const`,
//! `anyOf`, and `$ref` to `#/$defs/NAME`. A property not in `required` may be left
//! out. `commands` maps each command to what it prints on stdout with `--json` (`ndjson`:
//! one such document per line); `error` is the object printed on stderr when a command
//! fails with `--json`.

use serde_json::{Map, Value, json};

/// The whole vocabulary, as `angrav schema` prints it.
pub fn cli() -> Value {
    json!({
        "$defs": defs(),
        "error": object(&[("error", json!(object(&[
            ("code", string()),
            ("message", string()),
            ("exit", integer()),
        ], &[])))], &[]),
        "commands": commands(),
    })
}

fn defs() -> Value {
    let states = [
        "idle",
        "thinking",
        "awaiting_approval",
        "error",
        "no_panel",
        "unresponsive",
    ];
    json!({
        // Every object that names a chat names it so.
        "session": object(&[
            ("id", string()),
            ("target_id", string()),
            ("workspace", nullable("string")),
            ("title", string()),
            ("endpoint", string()),
        ], &[]),
        "state": { "enum": states },
        "layout": { "enum": ["current", "legacy-frame", "legacy-target", "v2"] },
        "code_block": object(&[("lang", string()), ("code", string())], &[]),
        "message": object(&[
            ("role", json!({ "enum": ["user", "agent"] })),
            ("content", string()),
        ], &[
            ("thoughts", string()),
            ("code_blocks", array(reference("code_block"))),
        ]),
        "approval": object(&[
            ("kind", json!({ "enum": ["command", "file_edits", "permission", "plan", "collapsed"] })),
            ("command", nullable("string")),
            ("choices", array(object(&[("label", string())], &[]))),
        ], &[]),
        // A chat's reading: `status`, the doctor.
        "snapshot": object(&[("state", reference("state"))], &snapshot_fields()),
        // A row of `sessions wait|fanout|run`.
        "outcome": object(&outcome_required(), &outcome_optional()),
        // `wait` and `prompt --wait`: a row of `sessions wait`, and whether it timed out.
        "waited": object(
            &[outcome_required(), vec![("timed_out", boolean())]].concat(),
            &outcome_optional(),
        ),
        "report": object(&[
            ("timed_out", boolean()),
            ("sessions", array(reference("outcome"))),
        ], &[]),
        // A line of `sessions watch`: a snapshot per chat, then its events.
        "watch_event": object(&[
            ("seq", integer()),
            ("type", json!({ "enum": ["snapshot", "new_session", "state_change", "retitled", "session_closed"] })),
            ("session", reference("session")),
            ("previous", json!({ "anyOf": [reference("state"), { "type": "null" }] })),
            ("current", json!({ "anyOf": [reference("state"), { "type": "null" }] })),
            ("timestamp", string()),
        ], &[
            ("layout", json!({ "anyOf": [reference("layout"), { "type": "null" }] })),
            ("error", string()),
            ("approvals", array(string())),
            ("reason", string()),
        ]),
        "endpoint_event": object(&[
            ("seq", integer()),
            ("type", json!({ "enum": ["endpoint_lost", "endpoint_back"] })),
            ("endpoint", string()),
            ("timestamp", string()),
        ], &[("reason", string())]),
        // A remembered window (aliases, groups): it may be gone, so no live id or title.
        "remembered": object(&remembered(), &[]),
    })
}

fn remembered() -> Vec<(&'static str, Value)> {
    vec![
        ("target_id", string()),
        ("workspace", nullable("string")),
        ("endpoint", string()),
    ]
}

/// What every `snapshot` may hold besides its state (`status` of a page that does
/// not answer gives only `state` and `error`).
fn snapshot_fields() -> Vec<(&'static str, Value)> {
    vec![
        (
            "layout",
            json!({ "anyOf": [reference("layout"), { "type": "null" }] }),
        ),
        ("busy", boolean()),
        ("error", nullable("string")),
        ("quota_resume", nullable("string")),
        ("approvals", array(string())),
        (
            "approval",
            json!({ "anyOf": [reference("approval"), { "type": "null" }] }),
        ),
        ("input_found", boolean()),
        ("input_editable", boolean()),
        ("user_messages", integer()),
        ("agent_messages", integer()),
        ("answer_blocks", integer()),
        ("turn_open", boolean()),
        ("title", nullable("string")),
        ("mode", nullable("string")),
        ("model", nullable("string")),
        ("markers", array(string())),
    ]
}

fn outcome_required() -> Vec<(&'static str, Value)> {
    vec![
        ("session", reference("session")),
        (
            "status",
            json!({ "enum": ["done", "pending", "closed", "failed"] }),
        ),
        (
            "state",
            json!({ "anyOf": [reference("state"), { "type": "null" }] }),
        ),
        ("duration_ms", integer()),
    ]
}

fn outcome_optional() -> Vec<(&'static str, Value)> {
    vec![
        ("reason", string()),
        ("answer", reference("message")),
        ("error", string()),
        ("approvals", array(string())),
    ]
}

fn commands() -> Map<String, Value> {
    let status = object(
        &[
            ("session", reference("session")),
            ("state", reference("state")),
        ],
        &snapshot_fields(),
    );
    let row = object(
        &[
            ("session", reference("session")),
            ("kind", json!({ "enum": ["session", "manager"] })),
            (
                "state",
                json!({ "anyOf": [reference("state"), { "type": "null" }] }),
            ),
            (
                "layout",
                json!({ "anyOf": [reference("layout"), { "type": "null" }] }),
            ),
        ],
        &[("problem", string())],
    );
    let dispatched = object(
        &[
            ("id", string()),
            (
                "session",
                json!({ "anyOf": [reference("session"), { "type": "null" }] }),
            ),
            (
                "status",
                json!({ "enum": ["done", "stalled", "closed", "failed", "pending"] }),
            ),
            (
                "state",
                json!({ "anyOf": [reference("state"), { "type": "null" }] }),
            ),
            ("attempts", integer()),
            ("duration_ms", integer()),
        ],
        &[
            ("reason", string()),
            ("answer", reference("message")),
            ("error", string()),
            ("approvals", array(string())),
        ],
    );
    // A prompt never sent, as the input line it was (its `session`: the query given).
    let unsent = object(
        &[
            ("id", string()),
            ("prompt", string()),
            ("status", json!({ "const": "unsent" })),
        ],
        &[("session", string()), ("timeout", integer())],
    );
    let examined = object(
        &[
            ("session", reference("session")),
            (
                "status",
                json!({ "anyOf": [reference("snapshot"), { "type": "null" }] }),
            ),
            ("roles", array(json!({ "type": "object" }))),
            ("warnings", array(string())),
        ],
        &[],
    );
    let shapes = json!({
        "version": object(&[("version", string()), ("cdp", array(string()))], &[]),
        "sessions list": array(row),
        "sessions wait": reference("report"),
        "sessions fanout": reference("report"),
        "sessions run": reference("report"),
        "sessions watch": ndjson(json!({ "anyOf": [reference("watch_event"), reference("endpoint_event")] })),
        "status": status,
        "prompt": object(&[
            ("session", reference("session")),
            ("delivered", json!({ "const": true })),
            ("started", boolean()),
            ("status", json!({ "enum": ["started", "stalled"] })),
        ], &[]),
        "prompt --wait": reference("waited"),
        "wait": reference("waited"),
        "output last": reference("message"),
        "output code": array(reference("code_block")),
        "history": array(reference("message")),
        "new": object(&[("session", reference("session")), ("new_conversation", boolean())], &[]),
        "doctor": object(&[
            ("endpoint", object(&[
                ("urls", array(string())),
                ("found_by", string()),
                ("detail", string()),
            ], &[])),
            ("clean", boolean()),
            ("sessions", array(examined)),
        ], &[]),
        "dispatch": ndjson(json!({ "anyOf": [dispatched, unsent] })),
        "alias list": array(object(&[vec![("name", string())], remembered()].concat(), &[])),
        "group list": array(object(&[("name", string()), ("members", array(reference("remembered")))], &[])),
        // The journal's lines as stored (see the README): each has these, and the
        // fields of its kind.
        "log": ndjson(json!({
            "type": "object",
            "required": ["seq", "timestamp", "kind"],
            "properties": { "seq": integer(), "timestamp": string(), "kind": string() },
        })),
        "turns": array(json!({
            "type": "object",
            "required": ["seq", "prompt"],
            "properties": { "seq": integer(), "prompt": string() },
        })),
    });
    match shapes {
        Value::Object(map) => map,
        _ => unreachable!("an object"),
    }
}

/// An object with these properties, all `required` but the `optional` ones, and no
/// others.
fn object(required: &[(&str, Value)], optional: &[(&str, Value)]) -> Value {
    let properties: Map<String, Value> = required
        .iter()
        .chain(optional)
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let names: Vec<&str> = required.iter().map(|(k, _)| *k).collect();
    json!({
        "type": "object",
        "required": names,
        "properties": properties,
        "additionalProperties": false,
    })
}

fn ndjson(line: Value) -> Value {
    json!({ "ndjson": line })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{name}") })
}

fn array(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn integer() -> Value {
    json!({ "type": "integer" })
}

fn boolean() -> Value {
    json!({ "type": "boolean" })
}

fn nullable(kind: &str) -> Value {
    json!({ "type": [kind, "null"] })
}
