// Switchboard's Schedule page: upcoming runs grouped by day (in the viewer's time zone), the
// posts, the history of runs with their status and link, and the editor (sender and target,
// text, media uploaded through /api/v1/files, preview, schedule in a time zone, grace,
// follow-ups, draft). Changes arrive from /ws (`post_updated`, `post_deleted`,
// `post_run_updated`); a lost connection is reopened with the last event id.
//
// Every text from Telegram or from people is put into the page as text nodes (never as HTML).
// The interface strings come from the server's catalogue through `data-strings`.
// Uses `api` from app.js, which is loaded first.
"use strict";

(() => {
  const root = document.getElementById("schedule");
  if (!root) return;

  const STRINGS = JSON.parse(root.dataset.strings || "{}");
  const ADMIN = root.dataset.admin === "true";
  const LOCALE = root.dataset.locale || "en";
  const VIEWER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const $ = (id) => document.getElementById(id);
  const dayFmt = new Intl.DateTimeFormat(LOCALE, { weekday: "long", day: "numeric", month: "long" });
  const timeFmt = new Intl.DateTimeFormat(LOCALE, { hour: "2-digit", minute: "2-digit" });
  const fullFmt = new Intl.DateTimeFormat(LOCALE, { dateStyle: "medium", timeStyle: "short" });
  const TEXT_MAX = 4096;
  const CAPTION_MAX = 1024;

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
    const e = r.data && r.data.error;
    if (!e) return "HTTP " + r.status;
    if (typeof e.position === "number") return tr("schedule_error_at", { message: e.message, position: e.position });
    return e.message;
  }

  // The catalogue's text for a run's error code (the server sends every known one as
  // `run_error_<code in lower case>`); a Telegram refusal it does not know is named as is.
  function runErrorText(code) {
    const key = "run_error_" + code.toLowerCase();
    return STRINGS[key] ? tr(key) : tr("run_error_other", { code: code });
  }

  function snippet(post) {
    const t = (post.content.text || "").trim();
    if (!t) return tr("schedule_media_only");
    return t.length > 80 ? t.slice(0, 79) + "…" : t;
  }

  function dayKey(ms) {
    const d = new Date(ms);
    return d.getFullYear() + "-" + (d.getMonth() + 1) + "-" + d.getDate();
  }

  function dayLabel(ms) {
    const today = new Date();
    const tomorrow = new Date(today.getFullYear(), today.getMonth(), today.getDate() + 1);
    if (dayKey(ms) === dayKey(today.getTime())) return tr("schedule_today");
    if (dayKey(ms) === dayKey(tomorrow.getTime())) return tr("schedule_tomorrow");
    return dayFmt.format(new Date(ms));
  }

  const state = {
    posts: new Map(),
    editing: null, // post id, or 0 for a new post
    media: [], // [{file_id, kind, file_name, mime_type}]
    lastEventId: null,
    ws: null,
    retries: 0,
    reload: null,
  };

  // ---------------------------------------------------------------- lists

  async function loadAll() {
    await Promise.all([loadPosts(), loadUpcoming(), loadHistory()]);
  }

  function scheduleReload() {
    if (state.reload) return;
    state.reload = setTimeout(() => { state.reload = null; loadAll(); }, 150);
  }

  async function loadPosts() {
    const r = await api("GET", "/api/v1/posts");
    if (!r.ok) return;
    state.posts = new Map(r.data.posts.map((p) => [p.id, p]));
    const list = $("post-list");
    list.replaceChildren();
    for (const p of state.posts.values()) {
      list.append(el("li", { "data-post-id": p.id, "aria-current": state.editing === p.id ? "true" : null },
        el("button", { type: "button", class: "task-row", "data-open": p.id },
          el("span", { class: "task-name", text: p.target.title }),
          el("span", { class: "chip state-" + p.state, "data-state": p.state, text: tr("schedule_state_" + p.state) }),
          el("span", { class: "task-query", text: snippet(p) }))));
    }
    $("post-list-empty").hidden = state.posts.size > 0;
  }

  async function loadUpcoming() {
    const r = await api("GET", "/api/v1/posts/upcoming?days=14");
    if (!r.ok) return;
    const posts = new Map(r.data.posts.map((p) => [p.id, p]));
    const list = $("upcoming-list");
    list.replaceChildren();
    let day = null;
    let ul = null;
    for (const run of r.data.runs) {
      const post = posts.get(run.post_id);
      if (!post) continue;
      const key = dayKey(run.at);
      if (key !== day) {
        day = key;
        ul = el("ul", { class: "upcoming-day-runs" });
        list.append(el("section", { class: "upcoming-day", "data-day": key }, el("h3", { text: dayLabel(run.at) }), ul));
      }
      ul.append(el("li", { class: "upcoming-run", "data-post-id": post.id, "data-at": run.at },
        el("button", { type: "button", class: "task-row", "data-open": post.id },
          el("time", { datetime: new Date(run.at).toISOString(), text: timeFmt.format(new Date(run.at)) }),
          el("span", { class: "task-name", text: post.target.title }),
          el("span", { class: "task-query", text: snippet(post) }))));
    }
    $("upcoming-empty").hidden = r.data.runs.length > 0;
    $("upcoming-zone").textContent = VIEWER_ZONE;
  }

  async function loadHistory() {
    const r = await api("GET", "/api/v1/posts/runs?limit=100");
    if (!r.ok) return;
    const body = $("history-list");
    body.replaceChildren();
    const shown = r.data.runs.filter((run) => run.status !== "scheduled");
    for (const run of shown) {
      const post = state.posts.get(run.post_id);
      const when = run.published_at || run.due_at;
      body.append(el("tr", { "data-run-id": run.id, "data-status": run.status },
        el("td", {}, el("time", { class: "run-time", datetime: new Date(when).toISOString(), text: fullFmt.format(new Date(when)) })),
        el("td", { text: post ? post.target.title + " — " + snippet(post) : "#" + run.post_id }),
        el("td", {}, el("span", { class: "chip run-" + run.status, text: tr("schedule_run_" + run.status) }),
          run.error ? el("span", { class: "hint small run-error", title: run.error, text: " " + runErrorText(run.error) }) : null),
        el("td", {}, run.link ? el("a", { href: run.link, target: "_blank", rel: "noopener", text: tr("schedule_open_post") }) : null)));
    }
    $("history-empty").hidden = shown.length > 0;
  }

  // ---------------------------------------------------------------- editor

  function sender() {
    const [kind, id] = ($("post-sender").value || "").split(":");
    return kind === "bot" ? { kind: "bot", bot: Number(id) } : { kind: "account", account: Number(id) };
  }

  async function loadTargets(selected) {
    const s = sender();
    const select = $("post-target");
    const isBot = s.kind === "bot";
    $("post-target-peer-wrap").hidden = !isBot;
    select.parentElement.hidden = isBot;
    if (isBot) { if (selected) $("post-target-peer").value = selected.peer_id; return; }
    select.replaceChildren(el("option", { value: "", text: tr("schedule_targets_loading") }));
    const r = await api("GET", "/api/v1/posts/targets?sender_kind=account&sender_id=" + s.account);
    select.replaceChildren(el("option", { value: "", text: tr("schedule_pick_target") }));
    const targets = (r.ok && r.data.targets) || [];
    if (selected && !targets.some((t) => t.peer_id === selected.peer_id)) targets.unshift(selected);
    for (const t of targets) {
      select.append(el("option", { value: t.peer_id, text: t.title + (t.username ? " (@" + t.username + ")" : "") }));
    }
    if (selected) select.value = String(selected.peer_id);
    else if (targets.length === 1) select.value = String(targets[0].peer_id);
    if (!r.ok) showError(errorText(r));
  }

  function targetPeer() {
    return sender().kind === "bot" ? Number($("post-target-peer").value) : Number($("post-target").value);
  }

  function showKind() {
    const k = $("post-kind").value;
    $("post-at-wrap").hidden = k !== "once";
    $("post-time-wrap").hidden = !(k === "daily" || k === "weekdays" || k === "weekly");
    $("post-weekday-wrap").hidden = k !== "weekly";
    $("post-cron-wrap").hidden = k !== "cron";
  }

  function scheduleBody() {
    const k = $("post-kind").value;
    if (k === "once") return { kind: "once", at: $("post-at").value };
    if (k === "cron") return { kind: "cron", expression: $("post-cron").value };
    if (k === "weekly") return { kind: "weekly", weekday: Number($("post-weekday").value), time: $("post-time").value };
    return { kind: k, time: $("post-time").value };
  }

  function optionalNumber(id) {
    const v = $(id).value.trim();
    return v === "" ? null : Number(v);
  }

  function formBody() {
    return {
      sender: sender(),
      target_peer_id: targetPeer(),
      text: $("post-text").value,
      entities: [],
      media: state.media,
      link_preview: $("post-link-preview").checked,
      silent: $("post-silent").checked,
      schedule: scheduleBody(),
      time_zone: $("post-zone").value.trim(),
      grace_minutes: Number($("post-grace").value || "15"),
      draft: $("post-draft").checked,
      pin_hours: optionalNumber("post-pin"),
      delete_after_hours: optionalNumber("post-delete-after"),
    };
  }

  function renderMedia() {
    const list = $("post-media");
    list.replaceChildren();
    state.media.forEach((m, i) => {
      list.append(el("li", { "data-file-id": m.file_id },
        el("span", { text: m.kind + " · " + (m.file_name || m.file_id.slice(0, 8)) }),
        ADMIN ? el("button", { type: "button", class: "secondary small", "data-remove": i, text: tr("schedule_remove_media") }) : null));
    });
    renderPreview();
  }

  function renderPreview() {
    const box = $("post-preview");
    box.replaceChildren();
    const bubble = el("div", { class: "bubble out preview-bubble" });
    if (state.media.length > 1) bubble.append(el("div", { class: "preview-album", text: tr("schedule_album", { n: state.media.length }) }));
    else if (state.media.length === 1) bubble.append(el("div", { class: "preview-album", text: state.media[0].kind }));
    const text = $("post-text").value;
    if (text) bubble.append(el("div", { class: "preview-text", text }));
    const link = /https?:\/\/\S+/.exec(text);
    if (link && $("post-link-preview").checked && state.media.length === 0) {
      bubble.append(el("div", { class: "preview-link", text: link[0] }));
    }
    if ($("post-silent").checked) bubble.append(el("div", { class: "hint small", text: "🔕 " + tr("schedule_silent_note") }));
    box.append(bubble);
    const max = state.media.length ? CAPTION_MAX : TEXT_MAX;
    let units = 0;
    for (const ch of text) units += ch.codePointAt(0) > 0xffff ? 2 : 1;
    const count = $("post-text-count");
    count.textContent = tr("schedule_chars", { n: units, max });
    count.classList.toggle("error", units > max);
  }

  function showError(msg) {
    const e = $("post-error");
    e.textContent = msg;
    e.hidden = !msg;
  }

  function localInput(ms, zone) {
    // The post's once time shown in its own zone, as `YYYY-MM-DDTHH:MM`.
    const parts = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(new Date(ms));
    const get = (t) => (parts.find((p) => p.type === t) || {}).value;
    return get("year") + "-" + get("month") + "-" + get("day") + "T" + get("hour") + ":" + get("minute");
  }

  // The editor, or in its place a word on how to open it.
  function showForm(on) {
    $("post-form").hidden = !on;
    $("post-placeholder").hidden = on;
  }

  async function openPost(id) {
    state.editing = id;
    showError("");
    $("post-status").hidden = true;
    showForm(true);
    const p = id ? state.posts.get(id) : null;
    if (p) {
      const value = p.sender.kind + ":" + (p.sender.account || p.sender.bot);
      $("post-sender").value = value;
      $("post-text").value = p.content.text;
      state.media = p.content.media.map((m) => ({ ...m }));
      $("post-link-preview").checked = p.content.link_preview;
      $("post-silent").checked = p.content.silent;
      $("post-draft").checked = p.state === "draft";
      $("post-kind").value = p.schedule.kind;
      if (p.schedule.kind === "once") $("post-at").value = p.schedule.at.slice(0, 16);
      if (p.schedule.time) $("post-time").value = p.schedule.time;
      if (p.schedule.weekday) $("post-weekday").value = String(p.schedule.weekday);
      if (p.schedule.expression) $("post-cron").value = p.schedule.expression;
      $("post-zone").value = p.time_zone;
      $("post-grace").value = p.grace_minutes;
      $("post-pin").value = p.follow_ups.pin_hours || "";
      $("post-delete-after").value = p.follow_ups.delete_after_hours || "";
      await loadTargets(p.target);
    } else {
      $("post-text").value = "";
      state.media = [];
      $("post-draft").checked = false;
      $("post-kind").value = "once";
      $("post-zone").value = VIEWER_ZONE;
      $("post-at").value = localInput(Date.now() + 3600 * 1000, VIEWER_ZONE);
      $("post-grace").value = 15;
      $("post-pin").value = "";
      $("post-delete-after").value = "";
      await loadTargets(null);
    }
    showKind();
    renderMedia();
    const editable = ADMIN && (!p || p.state !== "finished");
    for (const b of ["post-publish", "post-cancel-post", "post-delete"]) {
      const button = $(b);
      if (button) button.hidden = !p;
    }
    if ($("post-save")) $("post-save").disabled = !editable;
    for (const li of document.querySelectorAll("#post-list li")) {
      li.setAttribute("aria-current", String(Number(li.dataset.postId) === id));
    }
  }

  async function save(ev) {
    ev.preventDefault();
    if (!ADMIN) return;
    showError("");
    const id = state.editing;
    const r = id ? await api("PUT", "/api/v1/posts/" + id, formBody()) : await api("POST", "/api/v1/posts", formBody());
    if (!r.ok) { showError(errorText(r)); return; }
    state.editing = r.data.post.id;
    state.posts.set(r.data.post.id, r.data.post);
    $("post-status").textContent = tr("schedule_saved");
    $("post-status").hidden = false;
    await loadAll();
    await openPost(r.data.post.id);
    $("post-status").hidden = false;
  }

  async function upload(files) {
    showError("");
    for (const f of files) {
      const form = new FormData();
      form.append("file", f, f.name);
      $("post-status").textContent = tr("schedule_uploading");
      $("post-status").hidden = false;
      const r = await api("POST", "/api/v1/files", form);
      $("post-status").hidden = true;
      if (!r.ok) { showError(errorText(r)); return; }
      const kind = r.data.kind === "voice" ? "audio" : r.data.kind;
      state.media.push({ file_id: r.data.file_id, kind, file_name: r.data.file_name, mime_type: r.data.mime_type });
    }
    renderMedia();
  }

  async function act(method, suffix) {
    const id = state.editing;
    if (!id) return;
    const r = await api(method, "/api/v1/posts/" + id + suffix, method === "DELETE" ? undefined : {});
    if (!r.ok) { showError(errorText(r)); return; }
    if (method === "DELETE") {
      state.editing = null;
      showForm(false);
    } else if (suffix === "/publish") {
      $("post-status").textContent = tr("schedule_published_now");
      $("post-status").hidden = false;
    }
    await loadAll();
  }

  // ---------------------------------------------------------------- live

  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    let url = proto + location.host + "/ws";
    if (state.lastEventId !== null) url += "?last_event_id=" + state.lastEventId;
    const ws = new WebSocket(url);
    state.ws = ws;
    ws.onopen = () => { state.retries = 0; $("schedule-conn").hidden = true; };
    ws.onmessage = (m) => {
      let f;
      try { f = JSON.parse(m.data); } catch (_) { return; }
      if (typeof f.id === "number") {
        if (state.lastEventId === null || f.id > state.lastEventId) state.lastEventId = f.id;
        if (f.type === "post_updated" || f.type === "post_deleted" || f.type === "post_run_updated") scheduleReload();
      } else if (f.type === "hello") {
        if (state.lastEventId === null) state.lastEventId = f.last_event_id;
        root.dataset.live = "true";
      } else if (f.type === "resync_required") {
        if (typeof f.last_event_id === "number") state.lastEventId = f.last_event_id;
        scheduleReload();
      } else if (f.type === "session_ended") {
        location.assign("/login");
      }
    };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ws = null;
      root.dataset.live = "false";
      $("schedule-conn").hidden = false;
      const delay = Math.min(30000, 500 * 2 ** state.retries) * (0.75 + Math.random() / 2);
      state.retries++;
      setTimeout(connect, delay);
    };
  }

  // ---------------------------------------------------------------- wiring

  root.addEventListener("click", (ev) => {
    const open = ev.target.closest("[data-open]");
    if (open) { openPost(Number(open.dataset.open)); return; }
    const remove = ev.target.closest("[data-remove]");
    if (remove) { state.media.splice(Number(remove.dataset.remove), 1); renderMedia(); }
  });
  if ($("post-new")) $("post-new").addEventListener("click", () => openPost(0));
  $("post-close").addEventListener("click", () => { state.editing = null; showForm(false); });
  $("post-form").addEventListener("submit", save);
  $("post-sender").addEventListener("change", () => loadTargets(null));
  $("post-kind").addEventListener("change", showKind);
  for (const id of ["post-text", "post-link-preview", "post-silent"]) {
    $(id).addEventListener("input", renderPreview);
    $(id).addEventListener("change", renderPreview);
  }
  $("post-file").addEventListener("change", (ev) => { upload([...ev.target.files]); ev.target.value = ""; });
  if ($("post-publish")) $("post-publish").addEventListener("click", () => act("POST", "/publish"));
  if ($("post-cancel-post")) $("post-cancel-post").addEventListener("click", () => act("POST", "/cancel"));
  if ($("post-delete")) $("post-delete").addEventListener("click", () => {
    if (confirm(tr("schedule_delete_confirm"))) act("DELETE", "");
  });

  loadPosts().then(() => Promise.all([loadUpcoming(), loadHistory()])).then(() => { root.dataset.ready = "true"; });
  connect();
})();
