// angrav doctor: what each role of the selector profile matches here. Run in angrav's
// isolated world of the frame that holds the agent panel (or of the window's main
// frame when no panel was found). `roles` is [{role, kind, alternatives}] (kinds as
// profile.rs names them), `page` the window's {url, title}. It only reads.
function (roles, page) {
  'use strict';
  const doc = document;
  const visible = (e) => {
    if (typeof e.checkVisibility === 'function' && !e.checkVisibility({ visibilityProperty: true })) return false;
    return e.getClientRects().length > 0;
  };

  // The panel as the probe finds it: the first panel_root alternative that matches.
  let panel = null;
  for (const r of roles.filter((r) => r.role === 'panel_root')) {
    for (const s of r.alternatives) {
      try { panel = doc.querySelector(s); } catch (_) { /* reported below */ }
      if (panel) break;
    }
  }
  const scope = panel || doc;
  const text = scope.textContent || '';
  const lines = (scope.innerText || text).split('\n').map((l) => l.trim()).filter(Boolean);
  const frames = Array.from(doc.querySelectorAll('iframe'));
  const occurrences = (needle) => {
    let n = 0;
    for (let i = text.indexOf(needle); needle && i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
    return n;
  };
  const elements = (els) => ({ count: els.length, visible: els.filter(visible).length });
  const found = (n) => ({ count: n, visible: null });

  // Each check throws on an alternative that is not valid for its kind.
  const checks = {
    // The panel root is looked for in the whole document, everything else inside it.
    selector: (role, s) => elements(Array.from((role === 'panel_root' ? doc : scope).querySelectorAll(s))),
    text: (_, t) => found(occurrences(t)),
    pattern: (_, p) => { const re = new RegExp(p); return found(lines.filter((l) => re.test(l)).length); },
    url: (_, u) => found([page.url, location.href, ...frames.map((f) => f.src)].filter((x) => x.includes(u)).length),
    frame_name: (_, n) => found([window.name, ...frames.map((f) => f.name)].filter((x) => x === n).length),
    title_suffix: (_, s) => found(page.title.endsWith(s) ? 1 : 0),
    class_name: (_, c) => elements(Array.from(scope.getElementsByClassName(c))),
  };

  return roles.map((r) => {
    const alternatives = r.alternatives.map((value) => {
      try {
        return { value, ...checks[r.kind](r.role, value), invalid: null };
      } catch (e) {
        return { value, count: 0, visible: null, invalid: String((e && e.message) || e) };
      }
    });
    const hit = alternatives.find((a) => a.count > 0);
    return {
      role: r.role, kind: r.kind, matched: hit ? hit.value : null,
      count: hit ? hit.count : 0, visible: hit ? hit.visible : null, alternatives,
    };
  });
}
