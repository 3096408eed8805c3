// angrav's probe library. It is installed once into an isolated world of the frame
// that holds the agent panel (or of the window's main frame, to find it), so page
// scripts cannot see or disturb it. Everything the caller passes arrives as JSON
// arguments: `profile` is the selector profile, `op` and `args` name the operation.
// Nothing here keeps running after a call returns, except a `watch` awaiting a change,
// which ends at its own timeout.
function install(profile) {
  'use strict';
  const P = profile;
  const doc = document;

  // --- small helpers ---------------------------------------------------------
  const all = (root, sels) => {
    const out = [];
    for (const s of sels) {
      try { for (const e of root.querySelectorAll(s)) if (!out.includes(e)) out.push(e); } catch (_) { /* a selector this engine lacks */ }
    }
    return out;
  };
  const first = (root, sels) => {
    for (const s of sels) {
      try { const e = root.querySelector(s); if (e) return [e, s]; } catch (_) { /* as above */ }
    }
    return [null, null];
  };
  const visible = (e) => {
    if (!e || !e.isConnected) return false;
    if (typeof e.checkVisibility === 'function') {
      if (!e.checkVisibility({ visibilityProperty: true })) return false;
    }
    return e.getClientRects().length > 0;
  };
  const text = (e) => (e.innerText !== undefined && visible(e) ? e.innerText : e.textContent || '').trim();
  const outermost = (els) => els.filter((e) => !els.some((o) => o !== e && o.contains(e)));
  const before = (a, b) => !!(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING);
  const inside = (e, containers) => containers.some((c) => c !== e && c.contains(e));
  const noise = P.noise.map((r) => new RegExp(r));
  const isNoise = (line) => noise.some((r) => r.test(line.trim()));
  const buttons = (root) => Array.from(root.querySelectorAll('button, [role="button"]')).filter(visible);

  function panelRoot() {
    for (const s of P.panel_root) {
      let e = null;
      try { e = doc.querySelector(s); } catch (_) { continue; }
      if (e) return { root: e, marker: s };
    }
    return null;
  }

  // --- the conversation: user rows and answers in document order -------------
  function conversation(root) {
    const [container] = first(root, P.conversation);
    const scope = container || root;
    const [box] = first(root, P.input_box);
    const [editor] = first(root, P.input);
    const excluded = [box, editor].filter(Boolean);
    const keep = (e) => !excluded.some((x) => x === e || x.contains(e));
    const users = outermost(all(scope, P.user_message).filter(keep));
    const thoughts = outermost(all(scope, P.thoughts).filter(keep));
    const answers = outermost(all(scope, P.answer).filter(keep)
      .filter((e) => !inside(e, thoughts) && !inside(e, users) && !thoughts.includes(e)));
    const items = [
      ...users.map((e) => ({ role: 'user', e })),
      ...answers.map((e) => ({ role: 'agent', e })),
      ...thoughts.map((e) => ({ role: 'thoughts', e })),
    ].sort((a, b) => (a.e === b.e ? 0 : before(a.e, b.e) ? -1 : 1));
    // One user message per row; one agent message per turn (the answers after a row).
    const messages = [];
    let agent = null;
    for (const it of items) {
      if (it.role === 'user') {
        agent = null;
        messages.push({ role: 'user', els: [it.e], thoughts: [] });
      } else {
        if (!agent) { agent = { role: 'agent', els: [], thoughts: [] }; messages.push(agent); }
        (it.role === 'agent' ? agent.els : agent.thoughts).push(it.e);
      }
    }
    const msgs = messages.filter((m) => m.els.length > 0);
    return {
      scope, container, users, answers, messages: msgs,
      lastUser: users.length ? users[users.length - 1] : null,
    };
  }

  // --- what the agent is doing ------------------------------------------------
  function probe() {
    const found = panelRoot();
    const markers = [];
    if (!found || !visible(found.root)) {
      const frame = !!doc.querySelector('iframe') && all(doc, P.panel_frame_name.map((n) => 'iframe[name="' + CSS.escape(n) + '"]')
        .concat(P.panel_frame_url.map((u) => 'iframe[src*="' + CSS.escape(u) + '"]'))).length > 0;
      return finish({ state: 'no_panel', panel_frame: frame, busy: false, error: null, quota_resume: null,
        approvals: [], input_found: false, input_editable: false, user_messages: 0, agent_messages: 0,
        answer_blocks: 0, turn_open: false, markers: found ? ['panel_root hidden: ' + found.marker] : [] });
    }
    const root = found.root;
    markers.push('panel_root: ' + found.marker);
    const conv = conversation(root);
    const afterLastUser = (e) => !conv.lastUser || before(conv.lastUser, e);

    // busy
    let busy = false;
    for (const s of P.busy) {
      let els = [];
      try { els = Array.from(root.querySelectorAll(s)); } catch (_) { continue; }
      if (els.some(visible)) { busy = true; markers.push('busy: ' + s); break; }
    }
    const btns = buttons(root);
    if (!busy) {
      const b = btns.find((e) => P.busy_text.includes(e.textContent.trim()));
      if (b) { busy = true; markers.push('busy_text: ' + b.textContent.trim()); }
    }

    // errors, in this turn only (an old error stays in the transcript)
    let error = null;
    let quota = null;
    // textContent, not innerText: no layout on every probe; visibility is checked per element.
    const panelText = root.textContent || '';
    // The innermost visible elements whose text holds `needle`, after the last user row.
    const holding = (needle) => {
      const n = needle.toLowerCase();
      const has = (e) => (e.textContent || '').toLowerCase().includes(n);
      return Array.from(root.querySelectorAll('*')).filter((e) => has(e) &&
        !Array.from(e.children).some(has) && visible(e) && afterLastUser(e));
    };
    for (const t of P.error_text) {
      if (panelText.includes(t) && holding(t).length) { error = t; markers.push('error_text: ' + t); break; }
    }
    if (!error) {
      for (const t of P.quota_text) {
        if (!panelText.toLowerCase().includes(t.toLowerCase())) continue;
        const el = holding(t)[0];
        if (!el) continue;
        error = el.textContent.trim();
        markers.push('quota_text: ' + t);
        // The time runs to the sentence's end: a dot not followed by a digit.
        const near = [el.textContent || '', el.parentElement ? el.parentElement.textContent || '' : '', panelText];
        for (const p of P.quota_resume_prefix) {
          const text = near.find((t) => t.includes(p));
          if (text) { quota = text.slice(text.indexOf(p) + p.length).split(/\.(?!\d)|\n/)[0].trim().slice(0, 60); break; }
        }
        break;
      }
    }
    if (!error) {
      for (const s of P.error_element) {
        let els = [];
        try { els = Array.from(root.querySelectorAll(s)); } catch (_) { continue; }
        const e = els.find((x) => visible(x) && text(x) && afterLastUser(x));
        if (e) { error = text(e); markers.push('error_element: ' + s); break; }
      }
    }

    // approval choices offered in this turn
    const approvals = [];
    const shortcut = /^(\s|\+|Alt|Ctrl|Control|Cmd|Command|Shift|Meta|Option|Opt|⌘|⌥|⇧|⌃|⏎|↵|Enter|Return)/;
    for (const b of btns) {
      const t = b.textContent.trim();
      if (!afterLastUser(b)) continue;
      const label = P.approval_labels.find((l) => t === l || (t.startsWith(l) && shortcut.test(t.slice(l.length))));
      if (label && !approvals.includes(label)) approvals.push(label);
    }
    if (approvals.length) markers.push('approval_labels: ' + approvals.join(', '));
    const card = P.approval_card_text.find((t) => panelText.includes(t));
    if (card) markers.push('approval_card_text: ' + card);

    // the input
    const input = findInput(root);
    if (input) markers.push('input: ' + input.marker);

    let state = 'idle';
    if (error) state = 'error';
    else if (approvals.length || (card && busy)) state = 'awaiting_approval';
    else if (busy) state = 'thinking';
    const agents = conv.messages.filter((m) => m.role === 'agent').length;
    return finish({
      state, panel_frame: false, busy, error, quota_resume: quota, approvals,
      input_found: !!input, input_editable: !!input && editable(input.e),
      user_messages: conv.users.length, agent_messages: agents, answer_blocks: conv.answers.length,
      turn_open: conv.messages.length > 0 && conv.messages[conv.messages.length - 1].role === 'user',
      markers,
    });
  }

  function finish(snap) {
    snap.key = JSON.stringify([snap.state, snap.busy, snap.error, snap.approvals, snap.input_editable,
      snap.user_messages, snap.agent_messages, snap.answer_blocks, snap.turn_open, snap.panel_frame]);
    return snap;
  }

  function findInput(root) {
    for (const s of P.input) {
      let els = [];
      try { els = Array.from(root.querySelectorAll(s)); } catch (_) { continue; }
      const e = els.find((x) => visible(x) && !all(doc, P.input_exclude).includes(x));
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
      const cands = outermost(all(root, P.code_block).filter((e) => isCodeBlock(e)));
      for (const e of cands) out.push({ lang: langOf(e), code: codeText(e) });
    }
    return out;
  }
  function message(m) {
    if (m.role === 'user') return { role: 'user', content: (m.els[0].innerText || m.els[0].textContent || '').trim() };
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
  // attribute there would call it again, endlessly).
  function editorState(token, lease_ms, renew) {
    const h = holder();
    const claimed = renew ? takeClaim(token, lease_ms) : !!h && h.token === token;
    const s = probe();
    const found = panelRoot();
    const input = found && findInput(found.root);
    const conv = found && conversation(found.root);
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
      const now = editorState(token, lease_ms, true);
      if (now.key !== key) return now;
      return new Promise((resolve) => {
        const obs = new MutationObserver(() => check());
        const done = (s) => { obs.disconnect(); clearTimeout(timer); resolve(s); };
        const check = () => { const s = editorState(token, lease_ms, false); if (s.key !== key) done(s); };
        obs.observe(doc, { subtree: true, childList: true, attributes: true, characterData: true });
        const timer = setTimeout(() => done(editorState(token, lease_ms, true)), timeout_ms);
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
    probe,
    // Resolves with a new snapshot as soon as the state differs from `key`, or at
    // `timeout_ms`, or (given `quiet_ms`) once the document has not changed at all for
    // `quiet_ms`. The snapshot's `quiet_ms` says how long ago the document last
    // changed during the call (null: it did not). The observer goes with it: nothing
    // is left in the page.
    watch({ key, timeout_ms, quiet_ms }) {
      return new Promise((resolve) => {
        let timer = 0;
        let quiet = 0;
        const since = Date.now();
        let last = since;
        const arm = () => {
          if (quiet_ms == null) return;
          clearTimeout(quiet);
          quiet = setTimeout(() => done(probe()), quiet_ms - (Date.now() - last));
        };
        const obs = new MutationObserver(() => { last = Date.now(); arm(); check(); });
        // A panel iframe that finishes loading changes nothing in this document.
        const loaded = (e) => { if (e.target.tagName === 'IFRAME') done(probe()); };
        const done = (s) => {
          obs.disconnect(); clearTimeout(timer); clearTimeout(quiet); doc.removeEventListener('load', loaded, true);
          s.quiet_ms = last > since ? Date.now() - last : null;
          resolve(s);
        };
        const check = () => { const s = probe(); if (s.key !== key) done(s); };
        obs.observe(doc, { subtree: true, childList: true, attributes: true, characterData: true });
        doc.addEventListener('load', loaded, true);
        timer = setTimeout(() => done(probe()), timeout_ms);
        arm();
        check();
      });
    },
    history() {
      const found = panelRoot();
      if (!found) return null;
      return conversation(found.root).messages.map(message);
    },
    // Focuses the editor and selects its content, so inserted text replaces it.
    focus_input() {
      const found = panelRoot();
      const input = found && findInput(found.root);
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
      const input = found && findInput(found.root);
      if (!input || !(input.e.value || input.e.textContent || '').trim()) return { clicked: false };
      for (const s of P.send) {
        let els = [];
        try { els = Array.from(found.root.querySelectorAll(s)); } catch (_) { continue; }
        const b = els.find((x) => visible(x) && !x.disabled);
        if (b) { b.click(); return { clicked: true, marker: s }; }
      }
      return { clicked: false };
    },
    new_conversation() {
      const found = panelRoot();
      const [b, marker] = found ? first(found.root, P.new_conversation) : [null, null];
      if (!b) return { clicked: false, reason: 'new-conversation button not found' };
      const cls = typeof b.className === 'string' ? b.className : '';
      if (b.disabled || P.disabled_class.some((c) => cls.split(/\s+/).includes(c))) {
        return { clicked: false, reason: 'the conversation is already empty', marker };
      }
      b.click();
      return { clicked: true, marker };
    },
  };
  globalThis.__angrav = ops;
  return probe();
}
