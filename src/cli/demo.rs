//! The simulated Antigravity, and the main job run against it (or a real one).

use std::time::Duration;

use super::output::{self, print_list};
use super::wait::{print_report, report_code, with_live};
use super::{Args, endpoints, profile};
use crate::ls::Ls;
use crate::panel::Deadline;
use crate::panel::Layout;
use crate::registry::{ListRow, Registry};
use crate::sim::ls::{Conversation, Gate, SimLs};
use crate::sim::{Simulator, Window};
use crate::waiter::{Report, Status, Strategy, WaitSpec};
use crate::{Error, exit};

pub(super) fn simulate(a: &Args) -> Result<u8, Error> {
    let sim = Simulator::start()?;
    for i in 0..a.windows {
        let layout = a.layouts[i % a.layouts.len()];
        sim.open(&Window::new(layout, &workspace_name(i)).scenario(&a.scenario))?;
    }
    let ls = SimLs::start(&SimLs::new_token(), SimLs::demo_conversations())?;
    let ep = sim.endpoint().label();
    if a.json {
        output::json(&serde_json::json!({ "endpoint": ep, "windows": a.windows }));
    } else {
        output::line(ep);
    }
    // Lines to paste into another shell: then every command, `quota` and
    // `--conversation` included, finds this simulator without flags.
    output::message(&format!(
        "simulated Antigravity with {} window(s) at {ep}, and its language server at {}; \
         Ctrl-C stops them. In another shell, paste:\n  \
         export ANGRAV_CDP={ep} ANGRAV_LS={} ANGRAV_LS_TOKEN={}\n\
         then try: angrav sessions list --all; angrav status --session alpha; angrav quota",
        a.windows,
        ls.url(),
        ls.url(),
        ls.token()
    ));
    loop {
        std::thread::park();
    }
}

pub fn workspace_name(i: usize) -> String {
    const NAMES: [&str; 8] = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ];
    NAMES
        .get(i)
        .map_or_else(|| format!("ws{i}"), |n| n.to_string())
}

/// The main job: every chat and its state; with the simulator, also one prompt to
/// every chat, awaited in parallel, and the answers. A real Antigravity is only read.
pub(super) fn demo(a: &Args) -> Result<u8, Error> {
    let profile = profile(a)?;
    let endpoints = endpoints(a)?;
    let real = endpoints.iter().all(|e| e.version().is_ok());
    let sim;
    let registry = if real {
        output::message(&format!(
            "using the Antigravity at {}",
            endpoints[0].label()
        ));
        Registry::with(endpoints, profile)?
    } else {
        output::message(&format!(
            "no Antigravity answers at {}; starting the simulated one",
            endpoints[0].label()
        ));
        sim = Simulator::start()?;
        for (i, layout) in Layout::ALL.into_iter().enumerate() {
            sim.open(&Window::new(layout, &workspace_name(i)).scenario(DEMO_SCENARIOS[i]))?;
        }
        Registry::with(vec![sim.endpoint().clone()], profile)?
    };
    let listed = registry.states();
    let prompt = "Summarise what this workspace is for, with an example.";
    // With --json, one document: the chats, then (simulated) the prompt and the report.
    let document = |report: Option<&Report>| {
        serde_json::json!({
            "simulated": !real,
            "sessions": ListRow::all(&listed, &[]),
            "prompt": (!real).then_some(prompt),
            "report": report,
        })
    };
    if real {
        if a.json {
            output::json(&document(None));
        } else {
            print_list(&listed, &[], false);
        }
        return Ok(exit::OK);
    }
    if !a.json {
        print_list(&listed, &[], false);
        language_server()?;
        output::line(&format!("\nprompt to every chat: {prompt}\n"));
    }
    let tasks: Vec<(String, String)> = registry
        .sessions()
        .iter()
        .map(|s| (s.target_id.clone(), prompt.to_string()))
        .collect();
    let (sessions, prompts) = registry.tasks(&tasks)?;
    let spec = WaitSpec {
        strategy: Strategy::All,
        timeout: Duration::from_secs(60),
        settle: a.wait.settle,
        extract: true,
        start_within: a.start_within,
        stall_after: None,
    };
    let report = with_live(a.json, |live| {
        registry.wait(&sessions, &prompts, spec, live)
    });
    if a.json {
        output::json(&document(Some(&report)));
    } else {
        print_report(&report, false);
        output::line(DEMO_NOTE);
    }
    // The chats that stop for approval and in error do so by design: the demo went
    // well when every chat stopped as it does (exit 0), not only when all are idle.
    let stopped = report.with_status(Status::Done).count() == report.sessions.len();
    Ok(if stopped {
        exit::OK
    } else {
        report_code(&report)
    })
}

/// The simulated language server's side: a conversation no window shows, waiting for
/// approval, and the models' quota.
fn language_server() -> Result<(), Error> {
    let sim = SimLs::start(
        &SimLs::new_token(),
        vec![
            Conversation::new("5f0c9a1e-7d2b-4c33-9e41-0a6b1c2d3e4f", "epsilon")
                .waiting(Gate::Command("npm run build".into())),
        ],
    )?;
    let ls = Ls::given(&sim.url(), sim.token(), "the simulator")?;
    let deadline = Deadline::within(Duration::from_secs(10));
    output::line("");
    output::line("Its language server also knows a conversation no window shows, and the quota:");
    output::line("");
    let rows = super::ls::conversation_rows(&ls, &[], deadline)?;
    super::ls::print_rows(&[], &[], &rows, false);
    output::line("");
    super::ls::print_quota(&ls.quota(deadline)?, false);
    Ok(())
}

/// What each simulated chat of the demo does with its prompt, by layout: two answer,
/// one stops to ask for approval, one ends in an error.
const DEMO_SCENARIOS: [&str; 4] = ["", "", "approval", "error"];

/// Said after the demo's results: what the newcomer just saw, and where to go next.
const DEMO_NOTE: &str = "
Four simulated chats got the same prompt at once and were awaited in parallel: alpha
and beta answered (each its own answer), gamma stopped to ask approval for a command
(awaiting_approval), delta ended in an error. The simulator ended with the demo: to try
the commands yourself, keep one running with `angrav simulate --scenario approval` and
paste the lines it prints; `angrav status` then shows a chat's state, and once a prompt
stops for approval, the command and the choices. Against your Antigravity: `angrav
sessions list`, then `angrav --help`.";
