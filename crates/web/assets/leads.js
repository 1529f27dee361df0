// Switchboard's Leads page: monitoring tasks (list, form with the "try it" box and each
// source's state) and the leads they found (filters, search, paging by cursor, read flags, CSV
// export, "write to the author"). New leads and source changes arrive from /ws (`lead_found`,
// `source_updated`); a lost connection is reopened with the last event id.
//
// Every text from Telegram or from people is put into the page as text nodes (never as HTML).
// The interface strings come from the server's catalogue through `data-strings`.
// Uses `api` from app.js, which is loaded first.
"use strict";

(() => {
  const root = document.getElementById("leads");
  if (!root) return;

  const STRINGS = JSON.parse(root.dataset.strings || "{}");
  const ADMIN = root.dataset.admin === "true";
  const LOCALE = root.dataset.locale || "en";
  const PAGE = 50;
  const $ = (id) => document.getElementById(id);
  const fullFmt = new Intl.DateTimeFormat(LOCALE, { dateStyle: "medium", timeStyle: "short" });

  function tr(key, vars) {
    let s = STRINGS[key] || key;
    if (vars) for (const [name, value] of Object.entries(vars)) s = s.replace("{" + name + "}", String(value));
    return s;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
    return e;
  }

  function errorText(r) {
    return (r.data && r.data.error && r.data.error.message) || ("HTTP " + r.status);
  }

  const state = {
    tasks: new Map(),
    sources: new Map(), // source id -> source (of tasks seen in this page)
    editing: null, // task id, or 0 for a new task
    leads: new Map(),
    cursor: undefined,
    listGen: 0,
    lastEventId: null,
    ws: null,
    retries: 0,
  };

  // ---------------------------------------------------------------- tasks

  async function loadTasks() {
    const r = await api("GET", "/api/v1/tasks");
    if (!r.ok) return;
    state.tasks = new Map(r.data.tasks.map((t) => [t.id, t]));
    renderTasks();
    fillTaskFilter();
    // Source names for the lead rows.
    await Promise.all([...state.tasks.keys()].map(async (id) => {
      const s = await api("GET", "/api/v1/tasks/" + id + "/sources");
      if (s.ok) for (const src of s.data.sources) state.sources.set(src.id, src);
    }));
  }

  function renderTasks() {
    const list = $("task-list");
    list.replaceChildren();
    for (const t of state.tasks.values()) {
      const li = el("li", { "data-task-id": t.id, "aria-current": state.editing === t.id ? "true" : null },
        el("button", { type: "button", class: "task-row", "data-open": t.id },
          el("span", { class: "task-name", text: t.name }),
          el("span", { class: "chip " + (t.active ? "status-open" : "status-resolved"), "data-active": String(t.active), text: tr(t.active ? "leads_task_active" : "leads_task_paused") }),
          el("span", { class: "task-query", text: t.query })),
        ADMIN ? el("button", { type: "button", class: "secondary small", "data-toggle": t.id, text: tr(t.active ? "leads_pause" : "leads_resume") }) : null);
      list.append(li);
    }
    $("task-list-empty").hidden = state.tasks.size > 0;
  }

  function fillTaskFilter() {
    const sel = $("lf-task");
    const keep = sel.value;
    for (const o of [...sel.options].slice(1)) o.remove();
    for (const t of state.tasks.values()) sel.append(el("option", { value: t.id, text: t.name }));
    sel.value = keep;
  }

  async function toggleTask(id) {
    const t = state.tasks.get(id);
    if (!t) return;
    const r = await api("POST", "/api/v1/tasks/" + id + (t.active ? "/pause" : "/resume"), {});
    if (r.ok) { state.tasks.set(id, r.data.task); renderTasks(); if (state.editing === id) fillForm(r.data.task, r.data.sources); }
  }

  function sourceLine(s) {
    return s.kind === "dialog" ? null : s.input;
  }

  function sourceState(s) {
    switch (s.state) {
      case "flood_wait": return tr("leads_source_flood_wait", { time: s.wait_until ? fullFmt.format(new Date(s.wait_until)) : "?" });
      case "failed": return tr("leads_source_failed", { reason: s.failure || "?" });
      default: return tr("leads_source_" + s.state);
    }
  }

  // One line of the source states: its name, its state, and for a failed source of a saved
  // task a "retry" button (owners and admins).
  function sourceItem(s) {
    const retry = ADMIN && s.state === "failed" && state.editing
      ? el("button", { type: "button", class: "secondary small source-retry", "data-retry": s.id,
        text: tr("leads_source_retry"), onclick: () => retrySource(s.id) })
      : null;
    return el("li", { "data-source-id": s.id, "data-state": s.state },
      el("span", { class: "source-name", text: s.title || s.input }),
      el("span", { class: "badge source-state", "data-state": s.state, text: sourceState(s) }),
      retry);
  }

  function renderSourceStates(sources) {
    const ul = $("task-source-states");
    ul.replaceChildren();
    for (const given of sources) {
      // A `source_updated` event can arrive before the answer that lists the source (a
      // source joined within milliseconds of its task being saved): the newer state wins.
      const known = state.sources.get(given.id);
      const s = known && known.updated_at >= given.updated_at ? known : given;
      state.sources.set(s.id, s);
      ul.append(sourceItem(s));
    }
  }

  async function retrySource(id) {
    const r = await api("POST", "/api/v1/tasks/" + state.editing + "/sources/" + id + "/retry", {});
    if (r.ok) onSource(r.data.source);
    else showFormMessage(errorText(r));
  }

  function setTarget(kind) {
    $("task-target").value = kind;
    $("task-target-chat-wrap").hidden = kind !== "chat";
    $("task-target-bot-wrap").hidden = kind !== "bot";
    $("task-target-peer-wrap").hidden = kind !== "bot";
  }

  function setMode(mode) {
    $("task-mode").value = mode;
    $("task-digest-wrap").hidden = mode !== "digest";
  }

  async function loadAccountChats(accountId, selectedChat) {
    const pick = $("task-pick");
    const target = $("task-target-chat");
    for (const o of [...pick.options].slice(1)) o.remove();
    target.replaceChildren();
    if (!accountId) return;
    const r = await api("GET", "/api/v1/accounts/" + accountId + "/chats");
    if (r.ok) {
      for (const c of r.data.chats) target.append(el("option", { value: c.id, text: c.title }));
      if (selectedChat) target.value = String(selectedChat);
    }
    if (!ADMIN) return;
    // Sources are picked from the account's dialogs as Telegram has them (every group and
    // channel it is in), not from the chats the inbox stores.
    pick.dataset.loaded = "false";
    const d = await api("GET", "/api/v1/accounts/" + accountId + "/dialogs");
    if ($("task-account").value !== String(accountId)) return;
    if (d.ok) {
      for (const c of d.data.dialogs) {
        const name = c.title + (c.username ? " (@" + c.username + ")" : "");
        pick.append(el("option", { value: c.peer_id, "data-title": c.title, text: name }));
      }
    }
    pick.dataset.loaded = d.ok ? "true" : "failed";
  }

  function fillForm(t, sources) {
    state.dialogs = [];
    $("task-name").value = t ? t.name : "";
    $("task-query").value = t ? t.query : "";
    const lines = [];
    for (const s of sources || []) {
      if (s.kind === "dialog") state.dialogs.push({ dialog_peer_id: Number(s.key), title: s.input });
      else lines.push(sourceLine(s));
    }
    $("task-sources").value = lines.join("\n");
    if (t) $("task-account").value = String(t.account_id);
    const target = t ? t.target : { kind: "saved_messages" };
    setTarget(target.kind === "removed" ? "saved_messages" : target.kind);
    if (target.kind === "bot") { $("task-target-bot").value = String(target.bot); $("task-target-peer").value = String(target.peer_id); }
    const mode = t ? t.mode : { mode: "instant" };
    setMode(mode.mode);
    if (mode.mode === "digest") $("task-digest").value = String(mode.every_minutes);
    $("task-cap").value = String(t ? t.instant_cap_per_minute : 10);
    $("task-ignore-forwards").checked = t ? t.ignore_forwards : false;
    $("task-join").checked = t ? t.join_allowed : true;
    $("task-leave").checked = t ? t.leave_unused : false;
    $("task-active").checked = t ? t.active : true;
    renderSourceStates(sources || []);
    renderDialogs();
    loadAccountChats($("task-account").value, target.kind === "chat" ? target.chat : null);
    const del = $("task-delete");
    if (del) del.hidden = !t;
  }

  function renderDialogs() {
    // Picked chats are shown as extra lines of the states list until saved.
    for (const li of [...$("task-source-states").querySelectorAll("li.picked")]) li.remove();
    for (const d of state.dialogs) {
      const already = [...state.sources.values()].some((s) => s.kind === "dialog" && Number(s.key) === d.dialog_peer_id && $("task-source-states").querySelector('[data-source-id="' + s.id + '"]'));
      if (already) continue;
      $("task-source-states").append(el("li", { class: "picked" }, el("span", { class: "source-name", text: d.title })));
    }
  }

  async function openTask(id) {
    showFormMessage(null);
    $("try-results").replaceChildren();
    if (id === 0) {
      state.editing = 0;
      fillForm(null, []);
    } else {
      const r = await api("GET", "/api/v1/tasks/" + id);
      if (!r.ok) return;
      state.editing = id;
      state.tasks.set(id, r.data.task);
      fillForm(r.data.task, r.data.sources);
    }
    $("task-form").hidden = false;
    renderTasks();
    $("task-name").focus();
  }

  function closeForm() {
    state.editing = null;
    $("task-form").hidden = true;
    renderTasks();
  }

  function showFormMessage(error, ok) {
    $("task-error").textContent = error || "";
    $("task-error").hidden = !error;
    $("task-status").textContent = ok || "";
    $("task-status").hidden = !ok;
    $("task-query-error").hidden = true;
  }

  function showQueryError(err) {
    const p = $("task-query-error");
    p.textContent = tr("leads_query_error_at", { position: err.position + 1, message: err.message });
    p.hidden = false;
    const q = $("task-query");
    q.focus();
    q.setSelectionRange(err.position, Math.min(q.value.length, err.position + 1));
  }

  function formBody() {
    const sources = $("task-sources").value.split("\n").map((s) => s.trim()).filter(Boolean).map((reference) => ({ reference }));
    for (const d of state.dialogs) sources.push(d);
    const kind = $("task-target").value;
    let target = { kind: "saved_messages" };
    if (kind === "chat") target = { kind: "chat", chat: Number($("task-target-chat").value) };
    if (kind === "bot") target = { kind: "bot", bot: Number($("task-target-bot").value), peer_id: Number($("task-target-peer").value) };
    const mode = $("task-mode").value === "digest" ? { mode: "digest", every_minutes: Number($("task-digest").value) } : { mode: "instant" };
    return {
      name: $("task-name").value,
      query: $("task-query").value,
      account_id: Number($("task-account").value),
      target,
      mode,
      instant_cap_per_minute: Number($("task-cap").value),
      ignore_forwards: $("task-ignore-forwards").checked,
      join_allowed: $("task-join").checked,
      leave_unused: $("task-leave").checked,
      active: $("task-active").checked,
      sources,
    };
  }

  async function saveTask() {
    showFormMessage(null);
    const id = state.editing;
    const r = id ? await api("PUT", "/api/v1/tasks/" + id, formBody()) : await api("POST", "/api/v1/tasks", formBody());
    if (!r.ok) {
      const e = r.data && r.data.error;
      if (e && e.code === "query_invalid" && typeof e.position === "number") showQueryError(e);
      else showFormMessage(errorText(r));
      return;
    }
    state.tasks.set(r.data.task.id, r.data.task);
    state.editing = r.data.task.id;
    fillForm(r.data.task, r.data.sources);
    renderTasks();
    fillTaskFilter();
    showFormMessage(null, tr("leads_saved"));
  }

  async function deleteTask() {
    const id = state.editing;
    if (!id || !confirm(tr("leads_delete_confirm"))) return;
    const r = await api("DELETE", "/api/v1/tasks/" + id);
    if (!r.ok) { showFormMessage(errorText(r)); return; }
    state.tasks.delete(id);
    closeForm();
    fillTaskFilter();
    loadLeads(true);
  }

  // Text with highlighted ranges (UTF-16 indices), as text nodes and <mark>s.
  function highlighted(text, ranges) {
    const out = [];
    let at = 0;
    for (const h of ranges) {
      if (h.start < at) continue;
      if (h.start > at) out.push(text.slice(at, h.start));
      out.push(el("mark", { text: text.slice(h.start, h.end) }));
      at = h.end;
    }
    if (at < text.length) out.push(text.slice(at));
    return out;
  }

  async function tryQuery() {
    const box = $("try-results");
    box.replaceChildren(el("p", { class: "hint", text: tr("leads_loading") }));
    $("task-query-error").hidden = true;
    if (!state.editing) { box.replaceChildren(el("p", { class: "hint", text: tr("leads_try_save_first") })); return; }
    const r = await api("POST", "/api/v1/tasks/" + state.editing + "/try", { query: $("task-query").value });
    box.replaceChildren();
    if (!r.ok) {
      const e = r.data && r.data.error;
      if (e && e.code === "query_invalid" && typeof e.position === "number") showQueryError(e);
      else box.append(el("p", { class: "error", text: errorText(r) }));
      return;
    }
    const { checked, matches } = r.data;
    box.append(el("p", { class: "hint", text: matches.length ? tr("leads_try_found", { count: matches.length, checked }) : tr("leads_try_none", { checked }) }));
    const ul = el("ul", { class: "try-list" });
    for (const m of matches) {
      ul.append(el("li", {}, el("span", { class: "lead-time", text: fullFmt.format(new Date(m.posted_at)) }),
        el("div", { class: "lead-text" }, ...highlighted(m.text, m.highlights))));
    }
    box.append(ul);
  }

  // ---------------------------------------------------------------- leads

  function filterParams() {
    const q = new URLSearchParams();
    const task = $("lf-task").value;
    if (task) q.set("task_id", task);
    const source = $("lf-source").value;
    if (source) q.set("source_id", source);
    const from = $("lf-from").value;
    if (from) q.set("from", String(new Date(from + "T00:00:00").getTime()));
    const to = $("lf-to").value;
    if (to) q.set("to", String(new Date(to + "T00:00:00").getTime() + 86400000));
    const read = $("lf-read").value;
    if (read) q.set("read", read);
    const text = $("lf-q").value.trim();
    if (text) q.set("q", text);
    return q;
  }

  function updateExportLink() {
    const q = filterParams().toString();
    $("leads-export").href = "/api/v1/leads/export.csv" + (q ? "?" + q : "");
  }

  async function loadLeads(reset) {
    if (reset) { state.leads.clear(); state.cursor = undefined; $("lead-list").replaceChildren(); }
    if (state.cursor === null) return;
    const gen = ++state.listGen;
    const q = filterParams();
    q.set("limit", String(PAGE));
    if (state.cursor) q.set("before", String(state.cursor));
    const r = await api("GET", "/api/v1/leads?" + q.toString());
    if (gen !== state.listGen || !r.ok) return;
    for (const l of r.data.leads) { state.leads.set(l.id, l); $("lead-list").append(leadRow(l)); }
    state.cursor = r.data.next_before;
    $("leads-more").hidden = state.cursor === null;
    $("lead-list-empty").hidden = state.leads.size > 0;
    updateExportLink();
  }

  async function fillSourceFilter() {
    const sel = $("lf-source");
    for (const o of [...sel.options].slice(1)) o.remove();
    const task = $("lf-task").value;
    if (!task) return;
    const r = await api("GET", "/api/v1/tasks/" + task + "/sources");
    if (!r.ok) return;
    for (const s of r.data.sources) { state.sources.set(s.id, s); sel.append(el("option", { value: s.id, text: s.title || s.input })); }
  }

  function leadRow(l, fresh) {
    const task = state.tasks.get(l.task_id);
    const source = state.sources.get(l.source_id);
    const author = l.author.name || (l.author.username ? "@" + l.author.username : tr("leads_unknown_author"));
    const li = el("li", { "data-lead-id": l.id, class: "lead" + (l.read ? " read" : "") + (fresh ? " fresh" : "") },
      el("div", { class: "lead-head" },
        fresh ? el("span", { class: "chip status-open", text: tr("leads_new_lead") }) : null,
        el("strong", { class: "lead-task", text: task ? task.name : "#" + l.task_id }),
        source ? el("span", { class: "lead-source", text: source.title || source.input }) : null,
        el("span", { class: "lead-author", text: author }),
        el("time", { class: "lead-time", datetime: new Date(l.posted_at).toISOString(), text: fullFmt.format(new Date(l.posted_at)) })),
      el("div", { class: "lead-text", text: l.snippet || l.text }),
      el("div", { class: "lead-terms" }, ...l.terms.map((t) => el("span", { class: "chip term", text: t }))),
      el("div", { class: "lead-actions" },
        el("button", { type: "button", class: "secondary small", "data-read": l.id, text: tr(l.read ? "leads_mark_unread" : "leads_mark_read") }),
        l.author.id ? el("button", { type: "button", class: "small", "data-write": l.id, text: tr("leads_write") }) : null,
        l.link ? el("a", { href: l.link, target: "_blank", rel: "noopener noreferrer", text: tr("leads_open_post") }) : null),
      el("p", { class: "error lead-error", role: "alert", hidden: true }));
    return li;
  }

  function replaceRow(l) {
    state.leads.set(l.id, l);
    const old = $("lead-list").querySelector('[data-lead-id="' + l.id + '"]');
    if (old) old.replaceWith(leadRow(l));
  }

  async function toggleRead(id) {
    const l = state.leads.get(id);
    if (!l) return;
    const r = await api("PATCH", "/api/v1/leads/" + id, { read: !l.read });
    if (r.ok) replaceRow(r.data.lead);
  }

  async function writeToAuthor(id, button) {
    button.disabled = true;
    const r = await api("POST", "/api/v1/leads/" + id + "/write", {});
    button.disabled = false;
    if (r.ok) { location.assign("/inbox#chat-" + r.data.chat_id); return; }
    const p = button.closest("li").querySelector(".lead-error");
    p.textContent = errorText(r);
    p.hidden = false;
  }

  // Whether a live lead belongs in the list as filtered now (search and dates reload instead).
  function fits(l) {
    const f = filterParams();
    if (f.has("q") || f.has("from") || f.has("to")) return false;
    if (f.get("task_id") && Number(f.get("task_id")) !== l.task_id) return false;
    if (f.get("source_id") && Number(f.get("source_id")) !== l.source_id) return false;
    if (f.get("read") === "true") return false;
    return true;
  }

  function onLead(l) {
    if (state.leads.has(l.id) || !fits(l)) return;
    state.leads.set(l.id, l);
    $("lead-list").prepend(leadRow(l, true));
    $("lead-list-empty").hidden = true;
  }

  function onSource(s) {
    state.sources.set(s.id, s);
    const li = $("task-source-states").querySelector('[data-source-id="' + s.id + '"]');
    if (li) li.replaceWith(sourceItem(s));
  }

  // ---------------------------------------------------------------- real time

  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    let url = proto + location.host + "/ws";
    if (state.lastEventId !== null) url += "?last_event_id=" + state.lastEventId;
    const ws = new WebSocket(url);
    state.ws = ws;
    ws.onopen = () => { state.retries = 0; $("leads-conn").hidden = true; };
    ws.onmessage = (m) => {
      let f;
      try { f = JSON.parse(m.data); } catch (_) { return; }
      if (typeof f.id === "number") {
        if (state.lastEventId === null || f.id > state.lastEventId) state.lastEventId = f.id;
        if (f.type === "lead_found" && f.data && f.data.lead) onLead(f.data.lead);
        if (f.type === "source_updated" && f.data && f.data.source) onSource(f.data.source);
      } else if (f.type === "hello") {
        if (state.lastEventId === null) state.lastEventId = f.last_event_id;
        root.dataset.live = "true";
      } else if (f.type === "resync_required") {
        if (typeof f.last_event_id === "number") state.lastEventId = f.last_event_id;
        loadTasks();
        loadLeads(true);
      } else if (f.type === "session_ended") {
        location.assign("/login");
      }
    };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ws = null;
      root.dataset.live = "false";
      $("leads-conn").hidden = false;
      const delay = Math.min(30000, 500 * 2 ** state.retries) * (0.75 + Math.random() / 2);
      state.retries++;
      setTimeout(connect, delay);
    };
  }

  // ---------------------------------------------------------------- wiring

  $("task-list").addEventListener("click", (ev) => {
    const toggle = ev.target.closest("[data-toggle]");
    if (toggle) { toggleTask(Number(toggle.dataset.toggle)); return; }
    const open = ev.target.closest("[data-open]");
    if (open) openTask(Number(open.dataset.open));
  });
  const newTask = $("task-new");
  if (newTask) newTask.addEventListener("click", () => openTask(0));
  $("task-close").addEventListener("click", closeForm);
  $("task-form").addEventListener("submit", (ev) => { ev.preventDefault(); if (ADMIN) saveTask(); });
  const del = $("task-delete");
  if (del) del.addEventListener("click", deleteTask);
  $("try-run").addEventListener("click", tryQuery);
  $("task-target").addEventListener("change", (ev) => setTarget(ev.target.value));
  $("task-mode").addEventListener("change", (ev) => setMode(ev.target.value));
  $("task-account").addEventListener("change", (ev) => loadAccountChats(ev.target.value, null));
  $("task-pick").addEventListener("change", (ev) => {
    const o = ev.target.selectedOptions[0];
    if (o && o.value && !state.dialogs.some((d) => d.dialog_peer_id === Number(o.value))) {
      state.dialogs.push({ dialog_peer_id: Number(o.value), title: o.dataset.title });
      renderDialogs();
    }
    ev.target.value = "";
  });
  $("lf-task").addEventListener("change", () => { fillSourceFilter(); loadLeads(true); });
  for (const id of ["lf-source", "lf-from", "lf-to", "lf-read"]) $(id).addEventListener("change", () => loadLeads(true));
  let searchTimer = null;
  $("lf-q").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(() => loadLeads(true), 300); });
  $("lf-read-all").addEventListener("click", async () => {
    const task = $("lf-task").value;
    const r = await api("POST", "/api/v1/leads/read-all", task ? { task_id: Number(task) } : {});
    if (r.ok) loadLeads(true);
  });
  $("leads-more").addEventListener("click", () => loadLeads(false));
  $("lead-list").addEventListener("click", (ev) => {
    const read = ev.target.closest("[data-read]");
    if (read) { toggleRead(Number(read.dataset.read)); return; }
    const write = ev.target.closest("[data-write]");
    if (write) writeToAuthor(Number(write.dataset.write), write);
  });

  state.dialogs = [];
  loadTasks().then(() => loadLeads(true));
  connect();
})();
