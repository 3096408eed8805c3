//! `sessions list`.

use super::output::{self, print_list};
use super::{Args, registry};
use crate::panel::{Deadline, State};
use crate::{Error, exit};

/// A page that does not answer within the probe time is listed `unresponsive`; one
/// still unanswered at `--timeout` (when shorter) makes it a timeout.
pub(super) fn list(a: &Args) -> Result<u8, Error> {
    let deadline = Deadline::within(a.wait.timeout);
    let registry = registry(a)?;
    let managers = if a.all { registry.managers() } else { &[] };
    let listed = registry.states_by(deadline);
    print_list(&listed, managers, a.json);
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
