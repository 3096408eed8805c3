//! The message envelope. Only the envelope is parsed when a message arrives:
//! `params` and `result` stay raw JSON until whoever asked for them decodes them.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::{CdpError, Error, Result};

/// A message the browser sent without being asked.
#[derive(Debug)]
pub struct Event {
    pub method: String,
    pub params: Box<RawValue>,
    pub session_id: Option<String>,
}

impl Event {
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        decode(&self.params, &self.method)
    }
}

/// Decodes a raw `params` or `result`; `what` names it in the error.
pub(crate) fn decode<T: DeserializeOwned>(raw: &RawValue, what: &str) -> Result<T> {
    serde_json::from_str(raw.get()).map_err(|e| Error::Decode {
        what: format!("{what} payload"),
        detail: e.to_string(),
    })
}

/// Anything the browser sends: a reply carries `id`, an event carries `method`.
#[derive(Deserialize)]
pub(crate) struct Incoming {
    pub id: Option<u64>,
    pub method: Option<String>,
    pub params: Option<Box<RawValue>>,
    pub result: Option<Box<RawValue>>,
    pub error: Option<serde_json::Value>,
    #[serde(rename = "sessionId")]
    pub session_id: Option<String>,
}

pub(crate) enum Parsed {
    Reply {
        id: u64,
        reply: std::result::Result<Box<RawValue>, CdpError>,
    },
    Event(Event),
    /// Valid JSON of no shape we know: tolerated and dropped.
    Other,
}

pub(crate) fn parse(text: &[u8]) -> std::result::Result<Parsed, serde_json::Error> {
    let m: Incoming = serde_json::from_slice(text)?;
    Ok(match (m.id, m.method) {
        (Some(id), _) => {
            let reply = match m.error {
                Some(e) => Err(cdp_error(e)),
                None => Ok(m.result.unwrap_or_else(empty_object)),
            };
            Parsed::Reply { id, reply }
        }
        (None, Some(method)) => Parsed::Event(Event {
            method,
            params: m.params.unwrap_or_else(empty_object),
            session_id: m.session_id,
        }),
        (None, None) => Parsed::Other,
    })
}

/// Reads an error object leniently: a browser or proxy may omit or retype fields.
fn cdp_error(v: serde_json::Value) -> CdpError {
    let data = match v.get("data") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    CdpError {
        code: v.get("code").and_then(|c| c.as_i64()).unwrap_or(0),
        message: v
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("unknown error")
            .to_string(),
        data,
    }
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_string()).expect("literal JSON")
}
