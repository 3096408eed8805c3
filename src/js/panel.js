// angrav's probe library. It is installed once into an isolated world of the frame
// that holds the agent panel (or of the window's main frame, to find it), so page
// scripts cannot see or disturb it. Everything the caller passes arrives as JSON
// arguments: `profile` is the selector profile, `op` and `args` name the operation,
// `key` names this build's library with this profile (a world that holds it under the
// same key is not given it again).
// Nothing here keeps running after a call returns, except a `watch` awaiting a change,
// which ends at its own timeout.
function install(profile, lean, key) {
  'use strict';
  const P = profile;
  const doc = document;

  // --- small helpers ---------------------------------------------------------
  // Selectors this engine can parse (checked once, against an empty fragment), and
  // each role's alternatives joined into one selector list: one query per role.
  const scratch = doc.createDocumentFragment();
  const parses = (s) => { try { scratch.querySelector(s); return true; } catch (_) { return false; } };
  const valid = (sels) => sels.filter(parses);
  const joined = (sels) => valid(sels).join(', ') || null;
  const SEL = {
    user: joined(P.user_message), answer: joined(P.answer), thoughts: joined(P.thoughts),
    item: joined(P.user_message.concat(P.answer, P.thoughts)),
    errorElement: joined(P.error_element), plan: joined(P.approval_plan), popup: joined(P.popup),
    option: joined(P.approval_option), v2: joined(P.layout_v2), questionInput: joined(P.question_input),
    title: joined(P.title), mode: joined(P.mode), model: joined(P.model),
  };
  const matches = (e, sel) => !!sel && e.nodeType === Node.ELEMENT_NODE && e.matches(sel);
  // Every element matching `sel` in the subtrees `parts` (disjoint), roots included.
  const within = (parts, sel) => {
    const out = [];
    if (!sel) return out;
    for (const p of parts) {
      if (p.matches(sel)) out.push(p);
      for (const e of p.querySelectorAll(sel)) out.push(e);
    }
    return out;
  };
  // The first alternative that matches in `parts`, in the profile's order.
  const first = (parts, sels) => {
    for (const s of valid(sels)) {
      for (const p of parts) { const e = p.matches(s) ? p : p.querySelector(s); if (e) return [e, s]; }
    }
    return [null, null];
  };
  // checkVisibility needs style only (an element without a box is not visible);
  // getClientRects, for engines without it, forces a layout.
  const visible = (e) => {
    if (!e || !e.isConnected) return false;
    if (typeof e.checkVisibility === 'function') return e.checkVisibility({ visibilityProperty: true });
    return e.getClientRects().length > 0;
  };
  const text = (e) => (e.innerText !== undefined && visible(e) ? e.innerText : e.textContent || '').trim();
  const outermost = (els) => els.filter((e) => !els.some((o) => o !== e && o.contains(e)));
  const before = (a, b) => !!(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING);
  const inOrder = (a, b) => (a === b ? 0 : before(a, b) ? -1 : 1);
  const inside = (e, containers) => containers.some((c) => c !== e && c.contains(e));
  // Patterns this engine cannot compile are left out, as selectors are (doctor names them).
  const regexes = (list) => list.flatMap((r) => { try { return [new RegExp(r)]; } catch (_) { return []; } });
  const noise = regexes(P.noise);
  const modelNames = regexes(P.model_patterns);
  const isNoise = (line) => noise.some((r) => r.test(line.trim()));
  const clickables = (parts) => within(parts, 'button, [role="button"]').filter(visible);
  // The subtrees of `root` outside `inner`: the siblings along the path between them.
  const outside = (root, inner) => {
    if (!inner || inner === root || !root.contains(inner)) return inner === root ? [] : [root];
    const parts = [];
    for (let n = inner; n !== root; n = n.parentElement) {
      for (const s of n.parentElement.children) if (s !== n) parts.push(s);
    }
    return parts;
  };
  // Where each of `needles` (any case) shows in `parts`: for each needle, the innermost
  // visible elements whose text holds it. Elements `skip` rejects (the agent's answers
  // and thoughts, the user's messages) are not looked into, and the text of an element
  // holding one (`held`) is never taken whole: its other children are searched one by
  // one. So the cost is that of the chrome and the cards, whatever the size of the
  // answers around them.
  const search = (parts, needles, skip, held) => {
    const lower = needles.map((n) => n.toLowerCase());
    const out = new Map(needles.map((n) => [n, []]));
    // `want`: indexes of needles this element's text holds; returns those a child holds.
    const walk = (e, want) => {
      const inner = new Set();
      for (const c of e.children) {
        if (skip(c)) continue;
        if (held.has(c)) { for (const i of walk(c, want)) inner.add(i); continue; }
        const t = (c.textContent || '').toLowerCase();
        const has = want.filter((i) => t.includes(lower[i]));
        if (!has.length) continue;
        for (const i of has) inner.add(i);
        const deeper = walk(c, has);
        if (visible(c)) for (const i of has) if (!deeper.has(i)) out.get(needles[i]).push(c);
      }
      return inner;
    };
    const all = needles.map((_, i) => i);
    for (const p of parts) {
      if (skip(p)) continue;
      if (held.has(p)) { walk(p, all); continue; }
      const t = (p.textContent || '').toLowerCase();
      const has = all.filter((i) => t.includes(lower[i]));
      if (!has.length) continue;
      const deeper = walk(p, has);
      if (visible(p)) for (const i of has) if (!deeper.has(i)) out.get(needles[i]).push(p);
    }
    return out;
  };
  // A label, with an optional shortcut suffix (`RunAlt+⏎`), longest labels first.
  const shortcut = /^\s*((Alt|Ctrl|Control|Cmd|Command|Shift|Meta|Option|Opt|⌘|⌥|⇧|⌃)\s*\+?\s*)*(⏎|↵|⌫|Enter|Return|Backspace|Esc|Escape)?\s*$/;
  const byLength = (labels) => Array.from(new Set(labels)).sort((a, b) => b.length - a.length);
  const labelOf = (e, labels) => {
    const t = (e.textContent || '').trim();
    return labels.find((l) => t === l || (t.startsWith(l) && shortcut.test(t.slice(l.length)))) || null;
  };

  function panelRoot(hint) {
    if (hint && hint.root.isConnected && hint.root.matches(hint.marker)) return hint;
    for (const s of P.panel_root) {
      let e = null;
      try { e = doc.querySelector(s); } catch (_) { continue; }
      if (e) return { root: e, marker: s };
    }
    return null;
  }

  // --- the conversation: rows, each read once ---------------------------------
  // Rows are the children of the conversation container (past wrappers that hold
  // all of it). A row is read into its user messages, answers and thoughts in
  // document order; a watch keeps what it read of rows it saw no change in.
  function classify(row, excluded) {
    const keep = (e) => !excluded.some((x) => x === e || x.contains(e));
    const users = outermost(within([row], SEL.user).filter(keep));
    const thoughts = outermost(within([row], SEL.thoughts).filter(keep));
    const answers = outermost(within([row], SEL.answer).filter(keep)
      .filter((e) => !inside(e, thoughts) && !inside(e, users) && !thoughts.includes(e)));
    const items = [
      ...users.map((e) => ({ role: 'user', e })),
      ...answers.map((e) => ({ role: 'agent', e })),
      ...thoughts.map((e) => ({ role: 'thoughts', e })),
    ].sort((a, b) => inOrder(a.e, b.e));
    let plain = null;
    return {
      items, users: users.length, answers: answers.length,
      // Text that no marker explains: in a chat where no user message matched, such
      // a row between answers is taken as a turn boundary (a user message in markup
      // the profile does not know).
      plain: () => {
        if (plain === null) plain = items.length === 0 && (row.textContent || '').split('\n').some((l) => l.trim() && !isNoise(l));
        return plain;
      },
    };
  }

  // The panel's shape: the conversation container (when one matches), the element
  // whose children are the rows, the editor and its box, and the parts of the panel
  // outside the rows (`chrome`). No marker excludes another: the container may hold
  // the whole panel, header and editor included, and wrappers come and go at any
  // level. So the editor is looked for in the whole panel, and the rows are the
  // children of the outermost element that holds the messages but none of the panel's
  // controls (the editor, its box, the new-conversation button), past wrappers.
  // What `shape` found in a panel root, taken again while it still holds (a watch's
  // probes then do not search the whole transcript for the editor each time).
  const kept = new WeakMap();
  function shape(root) {
    const [container] = first([root], P.conversation);
    const was = kept.get(root) || {};
    const still = (x) => !!x && x.e.isConnected && root.contains(x.e) && x.e.matches(x.marker);
    const look = (sels) => { const [e, marker] = first([root], sels); return e ? { e, marker } : null; };
    const box = still(was.box) ? was.box : look(P.input_box);
    // The editor found before, named by the first alternative it matches now (a
    // read-only editor matches other alternatives than an editable one).
    const input = still(was.input) && visible(was.input.e)
      ? { e: was.input.e, marker: valid(P.input).find((s) => was.input.e.matches(s)) } : findInput([root]);
    const fresh = still(was.fresh) ? was.fresh : look(P.new_conversation);
    const controls = [box, input, fresh].filter(Boolean).map((x) => x.e);
    const excluded = [box, input].filter(Boolean).map((x) => x.e);
    const holdsControl = (e) => controls.some((x) => e.contains(x));
    let parent = container && !holdsControl(container) ? container : null;
    let items = 0;
    let rows = null;
    if (!parent) {
      const scope = container || root;
      // The element around the rows found before, if it still is that.
      const r = was.rows;
      if (r && r.isConnected && scope.contains(r) && !holdsControl(r) && (r === scope || holdsControl(r.parentElement)) &&
        r.querySelector(SEL.item)) {
        rows = r;
        items = 1;
      } else {
        const found = within([scope], SEL.item).filter((e) => !excluded.some((x) => x === e || x.contains(e)));
        items = found.length;
        if (items) {
          let p = found[0];
          while (!p.contains(found[items - 1])) p = p.parentElement;
          while (p !== scope && !holdsControl(p.parentElement)) p = p.parentElement;
          if (matches(p, SEL.item) && p !== scope) p = p.parentElement;
          rows = p;
        }
      }
      parent = rows;
    }
    kept.set(root, { box, input, fresh, rows });
    while (parent && parent.children.length === 1 && !matches(parent.firstElementChild, SEL.item)) parent = parent.firstElementChild;
    return {
      container, parent, excluded, box: box && box.e, input, fresh: fresh && fresh.e,
      // The conversation was found: its container, a message, or an empty chat.
      readable: !!container || items > 0 || (!!fresh && looksDisabled(fresh.e)),
      chrome: parent ? outside(root, parent) : [root],
    };
  }
  const looksDisabled = (b) => {
    const cls = typeof b.className === 'string' ? b.className.split(/\s+/) : [];
    return !!b.disabled || P.disabled_class.some((c) => cls.includes(c));
  };

  // Popups of the panel rendered outside it (approvals, errors in `document.body`).
  const popups = (root) => outermost(within(outside(doc.documentElement, root), SEL.popup).filter(visible));

  function conversation(root, cache) {
    const sh = shape(root);
    const rows = sh.parent ? Array.from(sh.parent.children) : [];
    const classes = rows.map((r) => {
      let c = cache.get(r);
      if (!c) { c = classify(r, sh.excluded); cache.set(r, c); }
      return c;
    });
    const anyUser = classes.some((c) => c.users > 0);
    // One user message per marker; one agent message per turn (the answers after it).
    const messages = [];
    const users = [];
    let answers = 0;
    let agent = null;
    let turnRow = 0; // the current turn's rows start here
    let boundary = -1; // an unexplained row, a boundary if answers follow it
    classes.forEach((c, i) => {
      if (!anyUser && c.plain()) { boundary = i; return; }
      answers += c.answers;
      for (const it of c.items) {
        if (it.role !== 'user' && boundary >= 0) { agent = null; turnRow = boundary + 1; boundary = -1; }
        if (it.role === 'user') {
          agent = null;
          users.push(it.e);
          messages.push({ role: 'user', els: [it.e], thoughts: [] });
          turnRow = it === c.items[c.items.length - 1] ? i + 1 : i;
        } else {
          if (!agent) { agent = { role: 'agent', els: [], thoughts: [] }; messages.push(agent); }
          (it.role === 'agent' ? agent.els : agent.thoughts).push(it.e);
        }
      }
    });
    const msgs = messages.filter((m) => m.els.length > 0);
    const lastUser = users.length ? users[users.length - 1] : null;
    // Where this turn's cards and errors can be: its rows, and the panel after the
    // conversation (all of the panel while no turn boundary was seen).
    // Popups count wherever they render.
    const shown = popups(root);
    const below = turnRow > 0 ? sh.chrome.filter((p) => before(sh.parent, p) || within([p], SEL.popup).length) : sh.chrome;
    return {
      shape: sh, users, answers, messages: msgs, lastUser,
      rows: rows.slice(turnRow), turn: rows.slice(turnRow).concat(below, shown), popups: shown,
      // What the user and the agent wrote in this turn: text searches skip it.
      said: classes.slice(turnRow).flatMap((c) => c.items.map((it) => it.e)),
    };
  }

  // --- what the agent is doing ------------------------------------------------
  // `ctx.cache` keeps rows read before (a watch's); `ctx.lean` leaves out what is not
  // part of the key (title, mode, model): a watch adds it when it reports.
  function probe(ctx) {
    const c = ctx || { cache: new WeakMap() };
    c.complete = null;
    const found = panelRoot(c.root);
    const markers = [];
    if (!found || !visible(found.root)) {
      const frame = !!doc.querySelector('iframe') && within([doc.documentElement], joined(P.panel_frame_name.map((n) => 'iframe[name="' + CSS.escape(n) + '"]')
        .concat(P.panel_frame_url.map((u) => 'iframe[src*="' + CSS.escape(u) + '"]')))).length > 0;
      return finish({ state: 'no_panel', panel_frame: frame, v2: false, busy: false, error: null, quota_resume: null,
        approval: null, approvals: [], question: null, answered: [], input_found: false, input_editable: false, user_messages: 0, agent_messages: 0,
        answer_blocks: 0, turn_open: false, title: null, mode: null, model: null, unreadable: [],
        markers: found ? ['panel_root hidden: ' + found.marker] : [] });
    }
    c.root = found;
    const root = found.root;
    markers.push('panel_root: ' + found.marker);
    const conv = conversation(root, c.cache);
    const sh = conv.shape;
    const parts = conv.turn;
    const isUser = (e) => conv.lastUser !== null && conv.lastUser.contains(e);
    // Text is searched outside what the user and the agent wrote (an answer may quote
    // error or quota words), never taking the text of an element around it whole.
    const said = new Set(conv.said);
    const held = new Set();
    for (const e of said) for (let n = e.parentElement; n && !held.has(n); n = n.parentElement) held.add(n);
    const texts = search(parts, P.error_text.concat(P.quota_text, P.approval_bar_labels, P.approval_card_text,
      P.approval_collapsed_text), (e) => said.has(e), held);
    const holding = (t) => texts.get(t) || [];

    // busy: a visible marker only (a build may keep a hidden copy at all times)
    const around = conv.rows.concat(sh.chrome);
    let busy = false;
    c.busy = null; // the busy marker, which `cancel` presses
    for (const s of valid(P.busy)) {
      c.busy = within(around, s).find(visible) || null;
      if (c.busy) { busy = true; markers.push('busy: ' + s); break; }
    }
    const btns = clickables(parts).filter((b) => !isUser(b));
    if (!busy) {
      const b = clickables(around).find((e) => !isUser(e) && P.busy_text.includes(e.textContent.trim()));
      if (b) { busy = true; c.busy = b; markers.push('busy_text: ' + b.textContent.trim()); }
    }

    // errors, in this turn only (an old error stays in the transcript)
    let error = null;
    let quota = null;
    for (const t of P.error_text) {
      if (holding(t).length) { error = t; markers.push('error_text: ' + t); break; }
    }
    if (!error) {
      // Quota words count outside answers only: an answer may quote them.
      for (const t of P.quota_text) {
        const el = holding(t)[0];
        if (!el) continue;
        error = el.textContent.trim();
        markers.push('quota_text: ' + t);
        // The time runs to the sentence's end: a dot not followed by a digit.
        const near = [el, el.parentElement, el.parentElement && el.parentElement.parentElement]
          .filter((e) => e && !held.has(e)).map((e) => e.textContent || '');
        for (const p of P.quota_resume_prefix) {
          const found = near.find((x) => x.includes(p));
          if (found) { quota = found.slice(found.indexOf(p) + p.length).split(/\.(?!\d)|\n/)[0].trim().slice(0, 60); break; }
        }
        break;
      }
    }
    if (!error) {
      for (const s of valid(P.error_element)) {
        const e = within(parts, s).find((x) => visible(x) && !isUser(x) && text(x));
        if (e) { error = text(e); markers.push('error_element: ' + s); break; }
      }
    }

    const questions = questionsIn(parts, btns, held);
    const popupParts = conv.popups;
    const cards = approvalsIn(parts, btns, holding, busy, held, questions, popupParts, markers)
      .map((card) => Object.assign(card, { where: card.where === 'panel' && conv.rows.some((r) => r.contains(card.e)) ? 'conversation' : card.where }));
    c.cards = cards; // with their controls, for `press_approval`
    const question = questions.length ? { text: questions[0].text, options: questions[0].options } : null;
    if (question) markers.push('question: ' + (question.text || ''));
    const input = sh.input;
    if (input) markers.push('input: ' + input.marker);

    // A panel whose editor or conversation cannot be read is never called idle.
    const unreadable = [input ? null : 'input', sh.readable ? null : 'conversation'].filter(Boolean);
    let state = 'idle';
    if (error) state = 'error';
    else if (cards.length) state = 'awaiting_approval';
    else if (question) state = 'awaiting_input';
    else if (unreadable.length) {
      state = 'unreadable';
      error = 'the panel shows, but its ' + unreadable.join(' and ') + ' cannot be read: run `angrav doctor`';
    } else if (busy) state = 'thinking';
    const agents = conv.messages.filter((m) => m.role === 'agent').length;
    const snap = {
      state, panel_frame: false, v2: within(sh.chrome, SEL.v2).length > 0, top: window === window.top, busy, error, quota_resume: quota,
      approvals: cards.map(publicCard), approval: cards.length ? publicCard(cards[0]) : null, question,
      answered: answered(),
      input_found: !!input, input_editable: !!input && editable(input.e),
      user_messages: conv.users.length, agent_messages: agents, answer_blocks: conv.answers,
      turn_open: conv.messages.length > 0 && conv.messages[conv.messages.length - 1].role === 'user',
      title: null, mode: null, model: null, unreadable,
      markers,
    };
    // Lean, what it left out can still be added (`complete`) without reading again.
    if (c.lean) c.complete = () => { about(snap, root, sh); return snap; };
    else about(snap, root, sh);
    return finish(snap);
  }

  // --- approvals: every card on its own ----------------------------------------
  // The controls of an approval (buttons, `Accept all` bars, options of a choice list)
  // are grouped into cards: each control's card is the outermost element around it that
  // holds no control of another card (the same label again, or a label of another
  // family: `Run` never shares a card with `Allow Once` or `Accept all`), nothing the
  // user or the agent wrote, and stays inside its part of the page. A question form
  // (`ask_question`: a write-in box and `Skip`) is not an approval: it is read apart
  // and its controls are no approval's.
  const family = (label) => {
    if (label === '?heading' || P.approval_command_labels.includes(label)) return 'command';
    if (P.approval_permission_labels.includes(label)) return 'permission';
    if (P.approval_bar_labels.includes(label)) return 'bar';
    if (P.approval_expand_labels.includes(label)) return 'collapsed';
    return 'any';
  };
  const clash = (a, b) => a.label === b.label || (a.family !== b.family && a.family !== 'any' && b.family !== 'any');
  // The outermost element around `x.e` holding no control `others` clash with.
  const cardOf = (x, others, parts, held) => {
    let a = x.e;
    const mine = [x];
    while (!parts.includes(a)) {
      const p = a.parentElement;
      if (!p || held.has(p)) break;
      const more = others.filter((y) => !mine.includes(y) && p.contains(y.e));
      if (more.some((y) => mine.some((m) => clash(m, y)))) break;
      mine.push(...more);
      a = p;
    }
    return a;
  };
  // FNV-1a of the text, as 8 hex digits: an approval's id comes from what it shows
  // and the card's own mark.
  const fnv = (t) => {
    let h = 0x811c9dc5;
    for (let i = 0; i < t.length; i++) { h ^= t.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
    return h.toString(16).padStart(8, '0');
  };
  // A card's own mark, set on its element the first time any angrav sees it and kept
  // while the element lives: an id names this card, never a later one (another turn,
  // another chat, the next of two alike) that shows the same words.
  const CARD = 'data-angrav-card';
  const cardMark = (e) => {
    let m = e.getAttribute(CARD);
    if (!m) {
      m = Math.floor(Math.random() * 0x100000000).toString(16) + Date.now().toString(16);
      e.setAttribute(CARD, m);
    }
    return m;
  };
  const writeIn = (e) => within([e], SEL.questionInput).some(visible);

  // The question forms among `parts`: `{e, text, options: [labels]}`.
  function questionsIn(parts, btns, held) {
    const skips = btns.map((e) => ({ e, label: labelOf(e, byLength(P.question_skip_labels)) })).filter((x) => x.label);
    return skips.map((s) => {
      let a = s.e;
      while (!parts.includes(a) && !writeIn(a)) {
        const p = a.parentElement;
        if (!p || held.has(p) || skips.some((o) => o !== s && p.contains(o.e))) break;
        a = p;
      }
      if (!writeIn(a)) return null;
      const skipOrSubmit = byLength(P.question_skip_labels.concat(P.approval_submit_labels));
      const opts = within([a], SEL.option).filter(visible).map((e) => (e.textContent || '').trim()).filter(Boolean);
      const options = opts.length ? opts : clickables([a]).filter((b) => !labelOf(b, skipOrSubmit)).map((b) => (b.textContent || '').trim()).filter(Boolean);
      const lines = (a.innerText || a.textContent || '').split('\n').map((l) => l.trim()).filter(Boolean);
      const text = lines.find((l) => !options.includes(l) && !labelOf({ textContent: l }, skipOrSubmit)) || null;
      return { e: a, text, options };
    }).filter(Boolean).filter((q, i, all) => !all.some((o, j) => j !== i && o.e.contains(q.e) && o.e !== q.e));
  }

  // Every approval this turn shows, in document order: `{id, kind, command, choices:
  // [{label, e}], submit, where, mark, e}`.
  function approvalsIn(parts, btns, holding, busy, held, questions, popupParts, markers) {
    const asked = (e) => questions.some((q) => q.e.contains(e));
    const cards = [];
    // Planning mode: the agent waits in a notify-user card.
    const planLabels = byLength(P.approval_plan_labels);
    const plans = within(parts, SEL.plan).filter((e) => visible(e) && !asked(e));
    for (const card of plans) {
      const choices = clickables([card]).map((e) => ({ label: labelOf(e, planLabels), e })).filter((x) => x.label);
      if (choices.length) cards.push({ kind: 'plan', command: null, choices, e: card });
    }
    const inPlan = (e) => plans.some((p) => p.contains(e));
    const labels = byLength(P.approval_labels.concat(P.approval_command_labels, P.approval_permission_labels));
    const controls = [];
    const add = (e, label, option) => {
      if (label && !inPlan(e) && !asked(e)) controls.push({ e, label, family: family(label), option });
    };
    for (const b of btns) add(b, labelOf(b, labels), false);
    for (const o of within(parts, SEL.option).filter(visible)) add(o, labelOf(o, labels), true);
    for (const l of P.approval_bar_labels) for (const e of holding(l)) add(e, labelOf(e, [l]), false);
    for (const t of P.approval_card_text) for (const e of holding(t)) add(e, '?heading', false);
    const steps = P.approval_collapsed_text.flatMap(holding).filter((e) => !asked(e));
    const expand = byLength(P.approval_expand_labels);
    for (const b of btns) { const l = labelOf(b, expand); if (l) add(b, l, false); }
    // Each control's card; a card inside another is part of it.
    const found = new Map();
    for (const x of controls) {
      const e = cardOf(x, controls, parts, held);
      if (!found.has(e)) found.set(e, []);
      found.get(e).push(x);
    }
    const outer = outermost(Array.from(found.keys()));
    for (const e of outer) {
      const mine = Array.from(found.entries()).filter(([k]) => e.contains(k)).flatMap(([, v]) => v);
      const choices = mine.filter((x) => x.label !== '?heading' && x.family !== 'collapsed');
      const has = (list) => choices.some((x) => list.includes(x.label));
      const heading = mine.some((x) => x.label === '?heading');
      const submitLabels = byLength(P.approval_submit_labels);
      const submit = choices.some((x) => x.option) ? clickables([e]).find((b) => labelOf(b, submitLabels)) || null : null;
      const own = choices.map((x) => ({ label: x.label, e: x.e, option: x.option }));
      if (heading || has(P.approval_command_labels)) {
        if (!choices.length && !busy) continue;
        cards.push({ kind: 'command', command: commandIn(e), choices: own, submit, e });
      } else if (has(P.approval_permission_labels)) cards.push({ kind: 'permission', command: null, choices: own, submit, e });
      else if (choices.length) cards.push({ kind: 'file_edits', command: null, choices: own, submit, e });
      else if (steps.some((s) => e.contains(s) || s.contains(e))) {
        const open = mine.filter((x) => x.family === 'collapsed');
        if (open.length) cards.push({ kind: 'collapsed', command: null, choices: open.slice(0, 1).map((x) => ({ label: x.label, e: x.e })), submit: null, e });
      }
    }
    // A collapsed step whose Expand button is outside the step's own element.
    cards.sort((a, b) => inOrder(a.e, b.e));
    for (const c of cards) {
      c.mark = cardMark(c.e);
      c.id = fnv(JSON.stringify([c.kind, c.command, c.choices.map((x) => x.label), c.mark]));
      c.where = popupParts.some((p) => p.contains(c.e)) ? 'popup' : 'panel';
      markers.push('approval ' + c.id + ': ' + c.kind + (c.choices.length ? ' (' + c.choices.map((x) => x.label).join(', ') + ')' : ''));
    }
    return cards;
  }

  // The label of `choices` that `choice` names: the same words in any case (`-` and
  // `_` as spaces), else the one label holding all its words (`once`: `Allow Once`).
  function named(choices, choice) {
    const words = (t) => t.toLowerCase().replace(/[-_]/g, ' ').split(/\s+/).filter(Boolean);
    const want = words(choice);
    const exact = choices.find((x) => words(x.label).join(' ') === want.join(' '));
    if (exact) return exact;
    const some = choices.filter((x) => want.length && want.every((w) => words(x.label).includes(w)));
    return some.length === 1 ? some[0] : null;
  }

  // The command of a `Run command?` card: its `<pre>` holds `<dir> $ <command>`.
  function commandIn(card) {
    const [pre] = first([card], P.approval_command);
    if (!pre) return null;
    const t = (pre.textContent || '').trim();
    const m = /^[^\n]*? \$ ([\s\S]*)$/.exec(t);
    return m ? m[1].trim() : t;
  }
  // What reports show of a card, and a line naming it.
  const publicCard = (c) => ({ id: c.id, kind: c.kind, command: c.command, choices: c.choices.map((x) => ({ label: x.label })), where: c.where, mark: c.mark });
  const shownCard = (c) => c.kind + (c.command ? ': ' + c.command : '') + ' (' + c.choices.map((x) => x.label).join(', ') + ')';
  // Presses angrav made, noted in the page (every angrav connected to it sees them):
  // `[{id, mark, label, by}]`, the newest last. The card's mark names the card for
  // every library; the id is this one's (another profile's differs).
  const ANSWERED = 'data-angrav-answered';
  const answered = () => { try { return JSON.parse(doc.documentElement.getAttribute(ANSWERED) || '[]'); } catch (_) { return []; } };
  const note = (card, label, by) => doc.documentElement.setAttribute(ANSWERED,
    JSON.stringify(answered().concat([{ id: card.id, mark: card.mark, label, by: by || null }]).slice(-16)));

  // The conversation's title, the mode and the model, where the page shows them.
  function about(snap, root, sh) {
    const outsidePanel = outside(doc.documentElement, root);
    const titles = within(sh.chrome, SEL.title).concat(within(outsidePanel, SEL.title));
    const title = titles.map((e) => (e.textContent || '').trim()).find((t) => t && !P.title_empty_text.includes(t));
    snap.title = title || null;
    const mode = within(sh.chrome, SEL.mode).filter(visible)
      .map((e) => (e.textContent || '').trim()).find((t) => P.mode_labels.includes(t));
    snap.mode = mode || null;
    // Not the editor: in 2.x it is a combobox too, and may hold any text.
    const editor = sh.input && sh.input.e;
    const model = within(sh.chrome, SEL.model)
      .filter((e) => !(editor && (editor.contains(e) || e.contains(editor))) && visible(e))
      .map((e) => (e.textContent || '').trim()).find((t) => modelNames.some((r) => r.test(t)));
    snap.model = model || null;
  }

  function finish(snap) {
    snap.key = JSON.stringify([snap.state, snap.busy, snap.error, snap.approvals.map((a) => a.id), snap.question,
      snap.input_editable, snap.user_messages, snap.agent_messages,
      snap.answer_blocks, snap.turn_open, snap.panel_frame]);
    return snap;
  }

  function findInput(parts) {
    const exclude = joined(P.input_exclude);
    for (const s of valid(P.input)) {
      const e = within(parts, s).find((x) => visible(x) && !matches(x, exclude));
      if (e) return { e, marker: s };
    }
    return null;
  }
  function editable(e) {
    if (e.getAttribute('aria-readonly') === 'true' || e.getAttribute('aria-disabled') === 'true') return false;
    if (e.tagName === 'TEXTAREA' || e.tagName === 'INPUT') return !e.readOnly && !e.disabled;
    return e.isContentEditable;
  }

  // --- Markdown from rendered HTML ------------------------------------------
  const langOf = (e) => {
    for (const x of [e, ...e.querySelectorAll('[class*="language-"]')]) {
      const m = /(?:^|\s)language-([\w+#.-]+)/.exec(typeof x.className === 'string' ? x.className : '');
      if (m) return m[1];
    }
    return '';
  };
  const isCodeBlock = (e) => e.tagName === 'PRE' ||
    (/(?:^|\s)language-/.test(typeof e.className === 'string' ? e.className : '') &&
     (e.tagName === 'PRE' || e.querySelector('pre, code')));
  const codeText = (e) => {
    const c = e.tagName === 'CODE' ? e : (e.querySelector('code') || e);
    return (c.textContent || '').replace(/\n$/, '');
  };
  function markdown(node) {
    const blocks = [];
    const inline = (n) => {
      if (n.nodeType === Node.TEXT_NODE) return n.nodeValue.replace(/\s+/g, ' ');
      if (n.nodeType !== Node.ELEMENT_NODE) return '';
      const t = n.tagName;
      const kids = () => Array.from(n.childNodes).map(inline).join('');
      if (t === 'BR') return '\n';
      if (t === 'CODE') {
        // A fence longer than any run of backticks inside, as CommonMark wants.
        const runs = (n.textContent.match(/`+/g) || []).map((r) => r.length);
        const fence = '`'.repeat(Math.max(0, ...runs) + 1);
        const pad = fence.length > 1 ? ' ' : '';
        return fence + pad + n.textContent + pad + fence;
      }
      if (t === 'STRONG' || t === 'B') return '**' + kids().trim() + '**';
      if (t === 'EM' || t === 'I') return '*' + kids().trim() + '*';
      if (t === 'A') { const h = n.getAttribute('href'); return h ? '[' + kids().trim() + '](' + h + ')' : kids(); }
      if (t === 'BUTTON' || t === 'SVG' || t === 'svg' || t === 'STYLE' || t === 'SCRIPT') return '';
      return kids();
    };
    const block = (n, out, indent) => {
      if (n.nodeType === Node.TEXT_NODE) { const s = n.nodeValue.replace(/\s+/g, ' ').trim(); if (s) out.push(indent + s); return; }
      if (n.nodeType !== Node.ELEMENT_NODE) return;
      const t = n.tagName;
      if (t === 'BUTTON' || t === 'STYLE' || t === 'SCRIPT' || t === 'svg' || t === 'SVG') return;
      if (isCodeBlock(n)) { out.push('```' + langOf(n) + '\n' + codeText(n) + '\n```'); return; }
      const h = /^H([1-6])$/.exec(t);
      if (h) { out.push('#'.repeat(+h[1]) + ' ' + inline(n).trim()); return; }
      if (t === 'P') { const s = inline(n).trim(); if (s) out.push(indent + s); return; }
      if (t === 'UL' || t === 'OL') {
        let i = 1;
        const items = [];
        for (const li of n.children) {
          if (li.tagName !== 'LI') continue;
          const mark = t === 'OL' ? (i++) + '. ' : '- ';
          const inner = [];
          for (const c of li.childNodes) {
            if (c.nodeType === Node.ELEMENT_NODE && (c.tagName === 'UL' || c.tagName === 'OL')) block(c, inner, '  ');
            else { const s = inline(c); if (inner.length && !/^\s/.test(inner[inner.length - 1])) inner[inner.length - 1] += s; else inner.push(s); }
          }
          const lines = inner.map((x) => x.replace(/\s+$/, '')).filter((x) => x.trim());
          items.push(indent + mark + (lines.shift() || '').trim() + (lines.length ? '\n' + lines.map((l) => indent + '  ' + l.trimStart()).join('\n') : ''));
        }
        out.push(items.join('\n'));
        return;
      }
      if (t === 'BLOCKQUOTE') { const inner = []; for (const c of n.childNodes) block(c, inner, ''); out.push(inner.join('\n\n').split('\n').map((l) => '> ' + l).join('\n')); return; }
      if (t === 'TABLE') {
        const rows = Array.from(n.querySelectorAll('tr')).map((r) => '| ' + Array.from(r.children).map((c) => inline(c).trim()).join(' | ') + ' |');
        if (rows.length) rows.splice(1, 0, rows[0].replace(/[^|]+/g, ' --- '));
        out.push(rows.join('\n'));
        return;
      }
      const hasBlock = Array.from(n.children).some((c) => /^(P|H[1-6]|UL|OL|PRE|DIV|BLOCKQUOTE|TABLE|SECTION)$/.test(c.tagName) || isCodeBlock(c));
      if (!hasBlock) { const s = inline(n).trim(); if (s) out.push(indent + s); return; }
      for (const c of n.childNodes) block(c, out, indent);
    };
    block(node, blocks, '');
    return blocks.filter((b) => !isNoise(b)).join('\n\n').trim();
  }
  function codeBlocks(els) {
    const out = [];
    for (const root of els) {
      const cands = outermost(within([root], joined(P.code_block)).filter((e) => isCodeBlock(e)));
      for (const e of cands) out.push({ lang: langOf(e), code: codeText(e) });
    }
    return out;
  }
  function message(m) {
    if (m.role === 'user') {
      const [t] = first([m.els[0]], P.user_message_body);
      const e = t || m.els[0];
      return { role: 'user', content: (e.innerText || e.textContent || '').trim() };
    }
    return {
      role: 'agent',
      content: m.els.map(markdown).filter(Boolean).join('\n\n'),
      thoughts: m.thoughts.map((t) => markdown(t)).filter(Boolean).join('\n\n') || null,
      code_blocks: codeBlocks(m.els),
    };
  }

  // --- the editor claim: one sender at a time, across angrav processes ---------
  // A lease in the DOM, which every angrav connected to this page sees (isolated
  // worlds are per connection): `token expiry`, expiry in page time. Page scripts run
  // one at a time, so a check-and-set within one call is atomic. A killed angrav's
  // claim lapses at its expiry.
  const CLAIM = 'data-angrav-claim';
  const holder = () => {
    const [token, until] = (doc.documentElement.getAttribute(CLAIM) || '').split(' ');
    return token && Number(until) > Date.now() ? { token, until: Number(until) } : null;
  };
  const takeClaim = (token, lease_ms) => {
    const h = holder();
    if (h && h.token !== token) return false;
    doc.documentElement.setAttribute(CLAIM, token + ' ' + (Date.now() + lease_ms));
    return true;
  };
  // Whether Enter reached the window and what the page's handlers made of it: read
  // by a listener that runs after theirs (the bubble phase ends at the window).
  let enter = null;
  const onEnter = (e) => {
    if (e.key !== 'Enter') return;
    enter = { prevented: e.defaultPrevented };
    window.removeEventListener('keydown', onEnter);
  };
  // The editor and the conversation's newest user message, as a sender checks them.
  // `renew`: also renew the claim (never from a MutationObserver callback: setting the
  // attribute there would call it again, endlessly). `ctx`: a watch's rows, if any.
  function editorState(token, lease_ms, renew, ctx) {
    const h = holder();
    const claimed = renew ? takeClaim(token, lease_ms) : !!h && h.token === token;
    const c = ctx || { cache: new WeakMap() };
    const s = probe(c);
    const found = panelRoot(c.root);
    const conv = found && conversation(found.root, c.cache);
    const input = conv && conv.shape.input;
    const last = conv && conv.lastUser;
    const raw = input ? (input.e.value !== undefined ? input.e.value : text(input.e)) : '';
    // A placeholder rendered inside the editor is not a draft.
    const placeholder = input && ['aria-placeholder', 'placeholder', 'data-placeholder']
      .map((a) => input.e.getAttribute(a)).find(Boolean);
    const st = {
      claimed, state: s.state, busy: s.busy, found: !!input,
      editable: !!input && editable(input.e),
      text: raw.trim() === placeholder || isNoise(raw) ? '' : raw,
      users: s.user_messages,
      last_user: last ? (last.innerText || last.textContent || '') : null,
    };
    st.key = JSON.stringify([st.state, st.busy, st.found, st.editable, st.text, st.users, st.last_user]);
    st.enter = enter;
    return st;
  }

  // --- watching -----------------------------------------------------------------
  // The rows a watch has read stay valid while an observer forgets each row a change
  // touches. When a watch reports, its observer goes on doing only that (no probes)
  // for HANDOFF_MS, so that the next watch, which follows at once, starts from those
  // rows instead of reading the whole transcript again; then it disconnects.
  const HANDOFF_MS = 1000;
  let handoff = null;
  // A change in, or of, a popup (see `popups`).
  const popupIn = (r) => {
    if (!SEL.popup) return false;
    const t = r.target.nodeType === Node.ELEMENT_NODE ? r.target : r.target.parentElement;
    if (t && t.closest(SEL.popup)) return true;
    const holds = (n) => n.nodeType === Node.ELEMENT_NODE && (n.matches(SEL.popup) || !!n.querySelector(SEL.popup));
    return Array.prototype.some.call(r.addedNodes, holds) || Array.prototype.some.call(r.removedNodes, holds);
  };
  const forget = (ctx, records) => {
    const root = ctx.root && ctx.root.root;
    const seen = new Set();
    let relevant = false;
    for (const r of records) {
      const t = r.target;
      // A card's mark is angrav's own writing, not a change of the page.
      if (r.type === 'attributes' && r.attributeName === CARD) continue;
      // Outside a panel that is still there, only its popups can change the key.
      if (root && root.isConnected && !root.contains(t) && !t.contains(root) && !popupIn(r)) continue;
      relevant = true;
      for (let n = t; n && !seen.has(n); n = n.parentNode) { seen.add(n); ctx.cache.delete(n); }
    }
    return relevant;
  };
  function observer() {
    if (handoff) {
      const h = handoff;
      handoff = null;
      clearTimeout(h.timer);
      if (forget(h.ctx, h.obs.takeRecords())) h.changed = Date.now();
      h.ctx.lean = true;
      return h;
    }
    const h = { ctx: { cache: new WeakMap(), lean: true, root: null }, onChange: null, changed: 0 };
    h.obs = new MutationObserver((records) => {
      if (!forget(h.ctx, records)) return;
      h.changed = Date.now();
      if (h.onChange) h.onChange();
    });
    h.obs.observe(doc, { subtree: true, childList: true, attributes: true, characterData: true });
    return h;
  }
  function handOver(h) {
    h.onChange = null;
    h.timer = setTimeout(() => { h.obs.disconnect(); if (handoff === h) handoff = null; }, HANDOFF_MS);
    if (handoff) { clearTimeout(handoff.timer); handoff.obs.disconnect(); }
    handoff = h;
  }

  // --- operations ------------------------------------------------------------
  const ops = {
    // Takes the editor claim for `token` (or renews it), waiting up to `wait_ms` for
    // another holder to release it or let it lapse.
    claim({ token, lease_ms, wait_ms }) {
      return new Promise((resolve) => {
        let timer = 0;
        let lapse = 0;
        const obs = new MutationObserver(() => attempt());
        const done = (r) => { obs.disconnect(); clearTimeout(timer); clearTimeout(lapse); resolve(r); };
        const attempt = () => {
          if (takeClaim(token, lease_ms)) return done({ ok: true });
          // Look again when the holder's lease ends, should it not renew it.
          clearTimeout(lapse);
          lapse = setTimeout(attempt, Math.max(1, holder() ? holder().until - Date.now() + 1 : 1));
        };
        obs.observe(doc.documentElement, { attributes: true, attributeFilter: [CLAIM] });
        timer = setTimeout(() => done({ ok: takeClaim(token, lease_ms) }), wait_ms);
        attempt();
      });
    },
    release({ token }) {
      const h = holder();
      if (!h || h.token === token) doc.documentElement.removeAttribute(CLAIM);
      return true;
    },
    editor({ token, lease_ms }) { return editorState(token, lease_ms, true); },
    // As `editor`, once the editor, the state or the newest user message differs
    // from `key`, or at `timeout_ms`.
    editor_watch({ token, lease_ms, key, timeout_ms }) {
      const h = observer();
      const now = editorState(token, lease_ms, true, h.ctx);
      if (now.key !== key) { handOver(h); return now; }
      return new Promise((resolve) => {
        const done = (s) => { clearTimeout(timer); handOver(h); resolve(s); };
        h.onChange = () => { const s = editorState(token, lease_ms, false, h.ctx); if (s.key !== key) done(s); };
        const timer = setTimeout(() => done(editorState(token, lease_ms, true, h.ctx)), timeout_ms);
      });
    },
    // Focuses the editor with its content selected (inserted text replaces it), and
    // listens for what the page makes of the next Enter.
    prepare({ token, lease_ms }) {
      if (!takeClaim(token, lease_ms)) return { ok: false, reason: 'another sender took the editor' };
      enter = null;
      window.removeEventListener('keydown', onEnter);
      window.addEventListener('keydown', onEnter);
      return ops.focus_input();
    },
    probe: () => probe(),
    // Resolves with a new snapshot as soon as the state differs from `key`, or at
    // `timeout_ms`, or (given `quiet_ms`) once the panel has not changed at all for
    // `quiet_ms`; the snapshot's `quiet_ms` says how long ago the panel last changed
    // during the call (null: it did not). Work per change is proportional to the
    // change: rows read once stay read until a mutation touches them, changes outside
    // the panel are ignored, and text is searched in the current turn and the panel
    // around the conversation only. Its observer is handed over to the next watch
    // (see HANDOFF_MS), else it ends.
    watch({ key, timeout_ms, quiet_ms }) {
      return new Promise((resolve) => {
        let timer = 0;
        let quiet = 0;
        const since = Date.now();
        const h = observer();
        const ctx = h.ctx;
        const arm = () => {
          if (quiet_ms == null) return;
          clearTimeout(quiet);
          quiet = setTimeout(() => done(complete()), quiet_ms - (Date.now() - Math.max(since, h.changed)));
        };
        // A panel iframe that finishes loading changes nothing in this document.
        const loaded = (e) => { if (e.target.tagName === 'IFRAME') done(probe()); };
        const done = (s) => {
          clearTimeout(timer); clearTimeout(quiet); doc.removeEventListener('load', loaded, true); handOver(h);
          s.quiet_ms = h.changed > since ? Date.now() - h.changed : null;
          resolve(s);
        };
        const complete = () => { ctx.lean = false; return probe(ctx); };
        const check = () => {
          arm();
          const s = probe(ctx);
          if (s.key !== key) done(ctx.complete ? ctx.complete() : s);
        };
        h.onChange = check;
        doc.addEventListener('load', loaded, true);
        timer = setTimeout(() => done(complete()), timeout_ms);
        check();
      });
    },
    history() {
      const found = panelRoot();
      if (!found) return null;
      return conversation(found.root, new WeakMap()).messages.map(message);
    },
    // Focuses the editor and selects its content, so inserted text replaces it.
    focus_input() {
      const found = panelRoot();
      const input = found && shape(found.root).input;
      if (!input) return { ok: false, reason: 'editor not found' };
      if (!editable(input.e)) return { ok: false, reason: 'input read-only' };
      input.e.focus();
      const sel = doc.getSelection();
      sel.selectAllChildren(input.e);
      if (input.e.select) input.e.select();
      return { ok: doc.activeElement === input.e || input.e.contains(doc.activeElement), reason: 'the editor did not take focus' };
    },
    // Clicks the send button, but only while the editor still holds text: a page
    // that took the Enter key has already sent (and cleared) it.
    click_send() {
      const found = panelRoot();
      const sh = found && shape(found.root);
      const input = sh && sh.input;
      if (!input || !(input.e.value || input.e.textContent || '').trim()) return { clicked: false };
      for (const s of valid(P.send)) {
        const b = within(sh.chrome, s).find((x) => visible(x) && !x.disabled);
        if (b) { b.click(); return { clicked: true, marker: s }; }
      }
      return { clicked: false };
    },
    // Presses one control of one approval, checked and pressed in this one call, so
    // nothing can change between the two: the approval `id` names (nothing pressed
    // unless one with that id still shows: `changed`), else the only one showing
    // (nothing pressed when several show). The control: the choice `choice` names, else
    // (`deny`) the card's first deny label, else its narrowest allowing label. A
    // choice of a list with a `Submit` button is selected, then Submit pressed. A
    // collapsed step is only expanded and read: what opened is returned (`opened`),
    // never pressed, since the caller has not seen it; `open` asks for that alone. `by`
    // ({client} or {rule}) is noted in the page with the press, so that any angrav
    // watching can tell the approval was answered by angrav. Returns `{ok, pressed,
    // approval, key}` (`key`: the state's key before the press), `{ok: false, opened,
    // state, approvals}`, or `{ok: false, reason, state, approvals, changed}`.
    press_approval({ id, choice, deny, open, expand_ms, by }) {
      const read = () => { const c = { cache: new WeakMap() }; const s = probe(c); return { s, cards: c.cards || [] }; };
      const refuse = (r, reason, changed) => ({ ok: false, state: r.s.state, approvals: r.s.approvals, reason, changed: !!changed });
      const choose = (r, want) => {
        if (want != null) {
          const card = r.cards.find((c) => c.id === want);
          return card ? { card } : { no: refuse(r, 'approval ' + want + ' no longer shows; nothing pressed', true) };
        }
        if (r.s.state !== 'awaiting_approval' || !r.cards.length) return { no: refuse(r, 'the agent is ' + r.s.state + ', not awaiting approval') };
        if (r.cards.length > 1) {
          return { no: refuse(r, r.cards.length + ' approvals show; nothing pressed: name one with --approval ID (' + r.cards.map((c) => c.id + ': ' + shownCard(c)).join('; ') + ')') };
        }
        return { card: r.cards[0] };
      };
      const act = (r, card) => {
        if (open) return refuse(r, 'approval ' + card.id + ' is not a collapsed step; nothing to open');
        const offered = card.choices.map((x) => x.label).join(', ');
        const ordered = (list) => list.map((l) => card.choices.find((x) => x.label.toLowerCase() === l.toLowerCase())).find(Boolean);
        const pick = choice != null ? named(card.choices, choice) : ordered(deny ? P.approval_deny_labels : P.approval_allow_labels);
        if (!pick) {
          const what = choice != null ? 'no one choice "' + choice + '"' : deny ? 'no denying choice' : 'no allowing choice but an Always one (name it)';
          return refuse(r, what + ' among: ' + offered);
        }
        const done = () => {
          note(card, pick.label, by);
          return { ok: true, pressed: pick.label, approval: publicCard(card), key: r.s.key };
        };
        pick.e.click();
        if (!card.submit) return done();
        // Selected: Submit once the page enables it (at once, or after its render).
        const ready = () => card.submit.isConnected && !card.submit.disabled && card.submit.getAttribute('aria-disabled') !== 'true';
        if (ready()) { card.submit.click(); return done(); }
        return new Promise((resolve) => {
          const end = (ok) => { obs.disconnect(); clearTimeout(timer); if (ok) { card.submit.click(); resolve(done()); } else resolve(refuse(r, 'selected "' + pick.label + '", but Submit stayed disabled')); };
          const obs = new MutationObserver(() => { if (ready()) end(true); });
          obs.observe(card.e, { subtree: true, childList: true, attributes: true });
          const timer = setTimeout(() => end(ready()), expand_ms);
        });
      };
      const first = read();
      const c0 = choose(first, id);
      if (c0.no) return c0.no;
      if (c0.card.kind !== 'collapsed') return act(first, c0.card);
      // Expand, then wait (page notifications, no polling) for what it asks to show:
      // the one approval that was not there before.
      const before = new Set(first.cards.map((c) => c.id));
      c0.card.choices[0].e.click();
      const opened = (r) => r.cards.filter((c) => !before.has(c.id));
      const shown = (r) => {
        const o = opened(r);
        if (o.length !== 1 || o[0].kind === 'collapsed') return refuse(r, 'the collapsed step did not open');
        return { ok: false, opened: publicCard(o[0]), state: r.s.state, approvals: r.s.approvals };
      };
      const now = read();
      if (opened(now).length === 1) return shown(now);
      return new Promise((resolve) => {
        const done = (r) => { obs.disconnect(); clearTimeout(timer); resolve(shown(r)); };
        const obs = new MutationObserver(() => { const r = read(); if (opened(r).length === 1) done(r); });
        obs.observe(doc, { subtree: true, childList: true, attributes: true, characterData: true });
        const timer = setTimeout(() => done(read()), expand_ms);
      });
    },
    // Presses the visible busy marker (the cancel button) of a working agent.
    cancel() {
      const c = { cache: new WeakMap() };
      const s = probe(c);
      if (!s.busy || !c.busy) return { ok: false, state: s.state, reason: 'the agent is ' + s.state + ', not working' };
      (c.busy.closest('button, [role="button"]') || c.busy).click();
      return { ok: true, key: s.key };
    },
    // Checked and clicked in this one call: an agent that starts working after the
    // caller looked is never cut off. Refused (with the snapshot) unless it is idle or
    // stopped on an error, its busy marker gone.
    new_conversation() {
      const s = probe();
      if (s.busy || (s.state !== 'idle' && s.state !== 'error')) return { clicked: false, refused: s };
      const found = panelRoot();
      const [b, marker] = found ? first([found.root], P.new_conversation) : [null, null];
      if (!b) return { clicked: false, reason: 'new-conversation button not found' };
      if (looksDisabled(b)) {
        return { clicked: false, reason: 'the conversation is already empty', marker };
      }
      b.click();
      return { clicked: true, marker, key: s.key };
    },
  };
  // The first probe of a panel found: `lean` (a list) reads the state, not the title,
  // mode and model. Later ones in this world, of the same build and profile (`key`),
  // ask it here without installing the library again.
  ops.first = (lean) => probe(lean ? { cache: new WeakMap(), lean: true } : undefined);
  // Every angrav process shares this world: each build and profile keeps its own
  // library under its key, so another run's never replaces the one a process uses.
  // What they must share (presses, card marks, the editor claim) is in the page. The
  // map is in the order of use (RUN_OP in panel.rs moves a key last), and keeps the
  // latest KEPT: one let go is installed again when next asked for. (`__angrav` was
  // the name of another shape, in builds before.)
  const KEPT = 8;
  const libraries = globalThis.__angravLibraries || (globalThis.__angravLibraries = new Map());
  libraries.delete(key);
  libraries.set(key, ops);
  for (const old of libraries.keys()) {
    if (libraries.size <= KEPT) break;
    libraries.delete(old);
  }
  return ops.first(lean);
}
