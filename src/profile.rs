//! The selector profile: every marker angrav looks for, as data. A default ships
//! inside the binary (`profile.json`); a user's file replaces roles or, with
//! `"extends": "default"`, puts its alternatives before the default ones.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

const DEFAULT: &str = include_str!("profile.json");

/// Each role is an ordered list of alternatives; the first that matches wins.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub window_url: Vec<String>,
    pub manager_url: Vec<String>,
    pub title_suffix: Vec<String>,
    pub panel_root: Vec<String>,
    pub panel_frame_url: Vec<String>,
    pub panel_frame_name: Vec<String>,
    pub input: Vec<String>,
    pub input_exclude: Vec<String>,
    pub input_box: Vec<String>,
    /// Markers only a 2.x build shows (its panel is read as layout `v2`).
    pub layout_v2: Vec<String>,
    pub busy: Vec<String>,
    pub busy_text: Vec<String>,
    pub send: Vec<String>,
    pub new_conversation: Vec<String>,
    pub disabled_class: Vec<String>,
    /// Popups of the panel that render outside it (in `document.body`): approvals
    /// and errors are read in them too.
    pub popup: Vec<String>,
    pub conversation: Vec<String>,
    pub user_message: Vec<String>,
    /// Where a user message's own text is, inside its box.
    pub user_message_body: Vec<String>,
    pub answer: Vec<String>,
    pub thoughts: Vec<String>,
    pub thoughts_toggle_text: Vec<String>,
    pub code_block: Vec<String>,
    pub approval_labels: Vec<String>,
    pub approval_card_text: Vec<String>,
    /// In a command card: the element holding `<dir> $ <command>`.
    pub approval_command: Vec<String>,
    pub approval_command_labels: Vec<String>,
    pub approval_permission_labels: Vec<String>,
    /// File-edit choices that may be plain elements, not buttons.
    pub approval_bar_labels: Vec<String>,
    pub approval_collapsed_text: Vec<String>,
    pub approval_expand_labels: Vec<String>,
    /// The options of an approval that is a list of choices plus one `Submit` button.
    pub approval_option: Vec<String>,
    pub approval_submit_labels: Vec<String>,
    /// A question form (`ask_question`): its `Skip` button, and its write-in box.
    pub question_skip_labels: Vec<String>,
    pub question_input: Vec<String>,
    pub approval_plan: Vec<String>,
    pub approval_plan_labels: Vec<String>,
    /// The choices `approve` presses when none is named, narrowest first (never an
    /// `Always …`: that one must be named).
    pub approval_allow_labels: Vec<String>,
    /// The choices `deny` presses, the first one offered.
    pub approval_deny_labels: Vec<String>,
    pub error_text: Vec<String>,
    pub quota_text: Vec<String>,
    pub quota_resume_prefix: Vec<String>,
    pub error_element: Vec<String>,
    pub title: Vec<String>,
    /// A title that means an empty chat.
    pub title_empty_text: Vec<String>,
    pub mode: Vec<String>,
    pub mode_labels: Vec<String>,
    pub model: Vec<String>,
    /// Regular expressions a model name matches.
    pub model_patterns: Vec<String>,
    pub noise: Vec<String>,
}

/// What a role's alternatives are, which says how `doctor` checks them. The role's
/// name tells: `*_url` (URLs), `*_name` (frame names), `*_suffix` (window-title
/// endings), `*_class` (class names), `*_text`, `*_labels`, `*_prefix` (text on the
/// page), `noise` (regular expressions); every other role is a list of CSS selectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleKind {
    Selector,
    Text,
    Pattern,
    Url,
    FrameName,
    TitleSuffix,
    ClassName,
}

impl RoleKind {
    pub fn of(role: &str) -> RoleKind {
        let ends = |suffixes: &[&str]| suffixes.iter().any(|s| role.ends_with(s));
        if role == "noise" || ends(&["_patterns"]) {
            RoleKind::Pattern
        } else if ends(&["_url"]) {
            RoleKind::Url
        } else if ends(&["_name"]) {
            RoleKind::FrameName
        } else if ends(&["_suffix"]) {
            RoleKind::TitleSuffix
        } else if ends(&["_class"]) {
            RoleKind::ClassName
        } else if ends(&["_text", "_labels", "_prefix"]) {
            RoleKind::Text
        } else {
            RoleKind::Selector
        }
    }
}

/// One role of a profile: its name, what its alternatives are, and them in order.
#[derive(Debug, Clone, Serialize)]
pub struct RoleEntry {
    pub role: String,
    pub kind: RoleKind,
    pub alternatives: Vec<String>,
}

#[derive(Debug)]
pub struct ProfileError {
    pub file: String,
    pub fault: String,
}

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "selector profile {}: {}", self.file, self.fault)
    }
}

impl Default for Profile {
    fn default() -> Self {
        serde_json::from_str(DEFAULT).expect("the built-in profile is valid")
    }
}

impl Profile {
    /// The built-in profile as JSON text, for users to copy and edit.
    pub fn default_json() -> &'static str {
        DEFAULT
    }

    /// The profile from `path` (`--selectors`, `ANGRAV_SELECTORS`) over the default.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let file = path.display().to_string();
        let fault = |fault: String| ProfileError {
            file: file.clone(),
            fault,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fault(e.to_string()))?;
        Profile::merge(&text).map_err(fault)
    }

    /// Lays a user's profile over the default. Roles not named keep their default.
    pub fn merge(user_text: &str) -> Result<Profile, String> {
        let user: Value =
            serde_json::from_str(user_text).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(mut user) = user else {
            return Err("must be a JSON object of role: [alternatives]".into());
        };
        let extends = match user.remove("extends") {
            None => false,
            Some(Value::String(s)) if s == "default" => true,
            Some(other) => return Err(format!("\"extends\" must be \"default\", not {other}")),
        };
        let Value::Object(mut merged) = serde_json::from_str::<Value>(DEFAULT).expect("valid")
        else {
            unreachable!("the built-in profile is an object")
        };
        for (role, given) in user {
            let Some(default) = merged.get(&role) else {
                let known: Vec<&String> = merged.keys().collect();
                return Err(format!("unknown role \"{role}\" (roles: {known:?})"));
            };
            let given = strings(&role, given)?;
            let mut list = given.clone();
            if extends {
                list.extend(
                    strings(&role, default.clone())?
                        .into_iter()
                        .filter(|d| !given.contains(d)),
                );
            }
            merged.insert(role, Value::from(list));
        }
        let profile: Profile =
            serde_json::from_value(Value::Object(merged)).map_err(|e| e.to_string())?;
        Ok(profile)
    }

    /// An editor window: a page at a window URL that is not the Agent Manager.
    pub fn is_window(&self, kind: &str, url: &str) -> bool {
        kind == "page"
            && self.window_url.iter().any(|u| url.contains(u.as_str()))
            && !self.is_manager(kind, url)
    }

    /// The Agent Manager: a page at a manager URL.
    pub fn is_manager(&self, kind: &str, url: &str) -> bool {
        kind == "page" && self.manager_url.iter().any(|u| url.contains(u.as_str()))
    }

    /// Every role, by name, with its kind and alternatives.
    pub fn roles(&self) -> Vec<RoleEntry> {
        let Value::Object(roles) = self.to_json() else {
            unreachable!("a profile serialises to an object")
        };
        roles
            .into_iter()
            .map(|(role, given)| RoleEntry {
                kind: RoleKind::of(&role),
                alternatives: strings(&role, given).expect("every role is a list of strings"),
                role,
            })
            .collect()
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a profile serialises")
    }
}

fn strings(role: &str, v: Value) -> Result<Vec<String>, String> {
    let fault = || format!("role \"{role}\" must be a list of strings");
    let Value::Array(items) = v else {
        return Err(fault());
    };
    items
        .into_iter()
        .map(|i| i.as_str().map(str::to_string).ok_or_else(fault))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_roles_replace_or_extend_the_default() {
        let p = Profile::merge(r#"{"busy": [".spinner"]}"#).unwrap();
        assert_eq!(p.busy, vec![".spinner"]);
        assert_eq!(p.answer, Profile::default().answer);
        let p = Profile::merge(r#"{"extends": "default", "busy": [".spinner"]}"#).unwrap();
        assert_eq!(p.busy[0], ".spinner");
        assert_eq!(&p.busy[1..], &Profile::default().busy[..]);
    }

    #[test]
    fn every_role_has_a_kind_by_its_name() {
        let roles = Profile::default().roles();
        let kind = |name: &str| roles.iter().find(|r| r.role == name).unwrap().kind;
        assert_eq!(kind("panel_root"), RoleKind::Selector);
        assert_eq!(kind("input_exclude"), RoleKind::Selector);
        assert_eq!(kind("busy_text"), RoleKind::Text);
        assert_eq!(kind("approval_labels"), RoleKind::Text);
        assert_eq!(kind("quota_resume_prefix"), RoleKind::Text);
        assert_eq!(kind("window_url"), RoleKind::Url);
        assert_eq!(kind("panel_frame_name"), RoleKind::FrameName);
        assert_eq!(kind("title_suffix"), RoleKind::TitleSuffix);
        assert_eq!(kind("disabled_class"), RoleKind::ClassName);
        assert_eq!(kind("noise"), RoleKind::Pattern);
        assert_eq!(kind("model_patterns"), RoleKind::Pattern);
        assert_eq!(kind("user_message_body"), RoleKind::Selector);
        assert_eq!(kind("mode_labels"), RoleKind::Text);
        assert_eq!(kind("title_empty_text"), RoleKind::Text);
        assert_eq!(
            roles.len(),
            Profile::default().to_json().as_object().unwrap().len()
        );
    }

    #[test]
    fn faults_are_named() {
        assert!(Profile::merge("{").unwrap_err().contains("not valid JSON"));
        assert!(
            Profile::merge(r#"{"bussy": []}"#)
                .unwrap_err()
                .contains("unknown role \"bussy\"")
        );
        assert!(
            Profile::merge(r#"{"busy": "x"}"#)
                .unwrap_err()
                .contains("list of strings")
        );
        assert!(Profile::merge(r#"[]"#).unwrap_err().contains("JSON object"));
    }
}
