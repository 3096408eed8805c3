//! The library without the CLI: fan a prompt out to every idle chat, wait for every
//! answer, then wait for whichever chat stops first after a second round.
//!
//! ```sh
//! cargo run --example orchestrate                         # against a simulated Antigravity
//! cargo run --example orchestrate -- http://127.0.0.1:9222  # against a real one: it prompts!
//! ```

use angrav::panel::Layout;
use angrav::registry::Registry;
use angrav::sim::{Simulator, Window};
use angrav::turn::WaitOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the simulator alive for as long as we use it.
    let mut _sim = None;
    let endpoint = match std::env::args().nth(1) {
        Some(e) => e,
        None => {
            let sim = Simulator::start()?;
            for (i, layout) in Layout::ALL.into_iter().enumerate() {
                sim.open(&Window::new(layout, &format!("project-{i}")))?;
            }
            let label = sim.endpoint().label().to_string();
            _sim = Some(sim);
            label
        }
    };
    let registry = Registry::discover(&[&endpoint], None)?;
    for s in registry.sessions() {
        println!(
            "session {} ({})",
            s.id,
            s.workspace.as_deref().unwrap_or("-")
        );
    }

    // executeParallel / fanOut: each chat's own turn is awaited, answers collected.
    let report = registry.fan_out("List three risks in this codebase.", WaitOptions::default())?;
    for o in &report.sessions {
        let answer = o
            .answer
            .as_ref()
            .map_or("(no answer)", |m| m.content.as_str());
        println!(
            "\n== {} {:?} after {} ms\n{answer}",
            o.session.id, o.status, o.duration_ms
        );
    }

    // waitForAny: the first chat to stop (all are idle now, so the first to settle).
    let first = registry.wait_for_any(&[], WaitOptions::default())?;
    if let Some(o) = first
        .sessions
        .iter()
        .find(|o| o.status == angrav::waiter::Status::Done)
    {
        println!("\nfirst to stop: {} ({:?})", o.session.id, o.state);
    }
    Ok(())
}
