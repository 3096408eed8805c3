//! Hand-written params and results for the commands and events callers use.
//! Results ignore unknown fields and default missing optional ones, so a newer or
//! older browser never fails decoding.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result};

/// A CDP command: its params are `Self`, its reply decodes as `Response`.
pub trait Command: Serialize {
    const METHOD: &'static str;
    type Response: DeserializeOwned;
}

/// The reply of commands that return nothing worth reading.
#[derive(Debug, Default, Deserialize)]
pub struct Empty {}

macro_rules! command {
    ($params:ty, $method:literal, $response:ty) => {
        impl Command for $params {
            const METHOD: &'static str = $method;
            type Response = $response;
        }
    };
}

pub mod runtime {
    use super::*;

    #[derive(Debug, Default, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Evaluate<'a> {
        pub expression: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub context_id: Option<i64>,
        pub return_by_value: bool,
        pub await_promise: bool,
    }
    command!(Evaluate<'_>, "Runtime.evaluate", ScriptResult);

    /// Calls a function with JSON arguments: nothing a caller passes is spliced into source.
    #[derive(Debug, Default, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CallFunctionOn<'a> {
        pub function_declaration: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub object_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub execution_context_id: Option<i64>,
        pub arguments: Vec<CallArgument<'a>>,
        pub return_by_value: bool,
        pub await_promise: bool,
    }
    command!(CallFunctionOn<'_>, "Runtime.callFunctionOn", ScriptResult);

    /// A function declaration kept as its JSON string, escaped once: a long script
    /// sent to many targets (each window of a list) is not escaped again for each.
    #[derive(Debug, Serialize)]
    #[serde(transparent)]
    pub struct Script(Box<serde_json::value::RawValue>);

    impl Script {
        pub fn new(declaration: &str) -> Script {
            Script(serde_json::value::to_raw_value(declaration).expect("a string serialises"))
        }
    }

    /// [`CallFunctionOn`] of a [`Script`] in an execution context.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CallScript<'a> {
        pub function_declaration: &'a Script,
        pub execution_context_id: i64,
        pub arguments: Vec<CallArgument<'a>>,
        pub return_by_value: bool,
    }
    command!(CallScript<'_>, "Runtime.callFunctionOn", ScriptResult);

    #[derive(Debug, Serialize)]
    pub struct CallArgument<'a> {
        pub value: &'a Value,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ScriptResult {
        pub result: RemoteObject,
        #[serde(default)]
        pub exception_details: Option<ExceptionDetails>,
    }

    impl ScriptResult {
        /// The returned value (by value), or the exception the script threw.
        pub fn into_value(self) -> Result<Value> {
            if let Some(ex) = self.exception_details {
                let text = ex.exception.and_then(|e| e.description).unwrap_or(ex.text);
                return Err(Error::Script { text });
            }
            Ok(self.result.value.unwrap_or(Value::Null))
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct RemoteObject {
        #[serde(rename = "type", default)]
        pub kind: String,
        #[serde(default)]
        pub subtype: Option<String>,
        #[serde(default)]
        pub value: Option<Value>,
        #[serde(default)]
        pub description: Option<String>,
        #[serde(default)]
        pub object_id: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    pub struct ExceptionDetails {
        #[serde(default)]
        pub text: String,
        #[serde(default)]
        pub exception: Option<RemoteObject>,
    }

    #[derive(Debug, Default, Serialize)]
    pub struct Enable {}
    command!(Enable, "Runtime.enable", Empty);
}

pub mod page {
    use super::*;

    #[derive(Debug, Default, Serialize)]
    pub struct GetFrameTree {}
    command!(GetFrameTree, "Page.getFrameTree", GetFrameTreeResult);

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct GetFrameTreeResult {
        pub frame_tree: FrameTree,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct FrameTree {
        pub frame: Frame,
        #[serde(default)]
        pub child_frames: Vec<FrameTree>,
    }

    impl FrameTree {
        /// This frame and every descendant, depth first.
        pub fn frames(&self) -> Vec<&Frame> {
            let mut out = vec![&self.frame];
            for child in &self.child_frames {
                out.extend(child.frames());
            }
            out
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Frame {
        pub id: String,
        #[serde(default)]
        pub parent_id: Option<String>,
        #[serde(default)]
        pub name: Option<String>,
        #[serde(default)]
        pub url: String,
    }

    /// A JavaScript world of its own in a frame: page scripts cannot see into it.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CreateIsolatedWorld<'a> {
        pub frame_id: &'a str,
        pub world_name: &'a str,
        pub grant_univeral_access: bool,
    }
    command!(
        CreateIsolatedWorld<'_>,
        "Page.createIsolatedWorld",
        CreateIsolatedWorldResult
    );

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CreateIsolatedWorldResult {
        pub execution_context_id: i64,
    }

    #[derive(Debug, Default, Serialize)]
    pub struct Reload {}
    command!(Reload, "Page.reload", Empty);
}

pub mod input {
    use super::*;

    /// Inserts text as an IME commit would: one `beforeinput`/`input` pair, verbatim.
    #[derive(Debug, Serialize)]
    pub struct InsertText<'a> {
        pub text: &'a str,
    }
    command!(InsertText<'_>, "Input.insertText", Empty);

    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct DispatchKeyEvent<'a> {
        #[serde(rename = "type")]
        pub kind: &'a str,
        pub key: &'a str,
        pub code: &'a str,
        pub windows_virtual_key_code: u32,
        pub native_virtual_key_code: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub text: Option<&'a str>,
        pub modifiers: u32,
    }
    command!(DispatchKeyEvent<'_>, "Input.dispatchKeyEvent", Empty);
}

pub mod target {
    use super::*;

    /// Target info as the `Target` domain reports it.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Info {
        pub target_id: String,
        #[serde(rename = "type")]
        pub kind: String,
        #[serde(default)]
        pub title: String,
        #[serde(default)]
        pub url: String,
        #[serde(default)]
        pub opener_id: Option<String>,
    }

    /// Asks for `Target.targetCreated`, `targetInfoChanged` and `targetDestroyed` events.
    #[derive(Debug, Serialize)]
    pub struct SetDiscoverTargets {
        pub discover: bool,
    }
    command!(SetDiscoverTargets, "Target.setDiscoverTargets", Empty);

    /// `Target.targetCreated` and `Target.targetInfoChanged`.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct TargetInfoEvent {
        pub target_info: Info,
    }

    /// `Target.targetDestroyed`.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct TargetDestroyed {
        pub target_id: String,
    }
}

/// Decodes any JSON value as `T`, naming `what` on failure.
pub fn from_value<T: DeserializeOwned>(v: Value, what: &str) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::Decode {
        what: what.to_string(),
        detail: e.to_string(),
    })
}
