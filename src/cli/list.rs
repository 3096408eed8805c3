//! `sessions list`.

use super::output::{self, print_list};
use super::{Args, registry};
use crate::panel::{Deadline, State};
use crate::{Error, exit};

/// A page that does not answer within the probe time is listed `unresponsive`; one
/// still unanswered at `--timeout` (when shorter) makes it a timeout.
pub(super) fn list(a: &Args) -> Result<u8, Error> {
    let deadline = Deadline::within(a.wait.timeout);
    // The language server's conversations: only when asked for (--all, --ls), so a
    // plain list costs nothing more. With an LS named, no window is no error; a
    // state directory angrav cannot use is, for the windows it hides.
    let given = super::ls::given(a)?;
    if a.all || given.is_some() {
        output::exit_when_stdout_closes();
    }
    let registry = match registry(a) {
        Err(e) if e.code() == "endpoint" && e.exit_code() != exit::USAGE && given.is_some() => {
            output::message(&format!(
                "{e}; listing the language server's conversations only"
            ));
            None
        }
        other => Some(other?),
    };
    let managers = match &registry {
        Some(r) if a.all => r.managers(),
        _ => &[],
    };
    let listed = registry
        .as_ref()
        .map_or_else(Vec::new, |r| r.states_by(deadline));
    let conversations = if a.all || given.is_some() {
        super::ls::rows(a, &listed, deadline)?
    } else {
        Vec::new()
    };
    if conversations.is_empty() || !a.json {
        print_list(&listed, managers, a.json);
    }
    super::ls::print_rows(&listed, managers, &conversations, a.json);
    let unanswered: Vec<&str> = listed
        .iter()
        .filter(|l| l.state == Some(State::Unresponsive))
        .map(|l| l.session.id.as_str())
        .collect();
    if deadline.passed() && !unanswered.is_empty() {
        output::message(&deadline.missed(unanswered.join(", ")).to_string());
        return Ok(exit::TIMEOUT);
    }
    Ok(exit::OK)
}
