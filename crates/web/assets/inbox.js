// Switchboard's operator inbox: the chat list (filters, unread badges, paging by cursor), the
// chat view (paged history, formatting, media, edits, deletions, delivery states), the composer
// (attachments, reply-to) and the assignment and status controls. Live updates come from /ws as
// deltas; a lost connection is reopened with the last event id so nothing is missed.
//
// Every text from Telegram or from other people is put into the page as text nodes (never as
// HTML). The interface strings come from the server's catalogue through `data-strings`.
// Uses `api` and `readCookie` from app.js, which is loaded first.
"use strict";

(() => {
  const root = document.getElementById("inbox");
  if (!root) return;

  const STRINGS = JSON.parse(root.dataset.strings || "{}");
  const ME = Number(root.dataset.user);
  const ADMIN = root.dataset.admin === "true";
  const LOCALE = root.dataset.locale || "en";
  const PAGE = 50;
  const $ = (id) => document.getElementById(id);

  function tr(key, vars) {
    let s = STRINGS[key] || key;
    if (vars) for (const [name, value] of Object.entries(vars)) s = s.replace("{" + name + "}", String(value));
    return s;
  }

  // Builds an element. Children that are strings become text nodes.
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
    filter: { assignee: "all", status: "", source: "" },
    chats: new Map(),
    cursor: undefined, // undefined: first page not loaded; null: no more pages
    listGen: 0,
    listLoading: null,
    listLoaded: false,
    members: new Map(),
    online: new Set(),
    open: null,
    openGen: 0,
    messages: new Map(),
    oldestId: null,
    hasMore: false,
    loadingOlder: false,
    replyTo: null,
    attachment: null,
    uploading: false,
    sending: false,
    lastEventId: null,
    ws: null,
    wsReady: false,
    retries: 0,
    pending: new Map(),
  };

  // ---------------------------------------------------------------- formatting helpers

  const timeFmt = new Intl.DateTimeFormat(LOCALE, { hour: "2-digit", minute: "2-digit" });
  const dateFmt = new Intl.DateTimeFormat(LOCALE, { day: "numeric", month: "short" });
  const fullFmt = new Intl.DateTimeFormat(LOCALE, { dateStyle: "medium", timeStyle: "short" });

  function shortTime(ms) {
    if (!ms) return "";
    const d = new Date(ms);
    return d.toDateString() === new Date().toDateString() ? timeFmt.format(d) : dateFmt.format(d);
  }

  function timeEl(ms) {
    return el("time", { datetime: new Date(ms).toISOString(), title: fullFmt.format(new Date(ms)) }, shortTime(ms));
  }

  function fileSize(n) {
    if (typeof n !== "number") return "";
    const units = ["B", "KB", "MB", "GB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return new Intl.NumberFormat(LOCALE, { maximumFractionDigits: i ? 1 : 0 }).format(n) + " " + units[i];
  }

  function safeUrl(raw) {
    let u;
    try { u = new URL(raw); } catch (_) { return null; }
    return ["http:", "https:", "mailto:", "tg:"].includes(u.protocol) ? u.href : null;
  }

  function link(href, text) {
    if (!href) return el("span", {}, text);
    return el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }, text);
  }

  // One Bot-API entity as an empty element to fill; `body` is the text it covers.
  function entityElement(e, body) {
    switch (e.type) {
      case "bold": return el("strong");
      case "italic": return el("em");
      case "underline": return el("u");
      case "strikethrough": return el("s");
      case "code": return el("code");
      case "pre": return el("pre", { "data-language": e.language || null });
      case "blockquote": case "expandable_blockquote": return el("blockquote");
      case "spoiler": {
        const s = el("span", { class: "spoiler", tabindex: "0", role: "button", title: tr("inbox_spoiler") });
        const reveal = () => s.classList.add("shown");
        s.addEventListener("click", reveal);
        s.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") reveal(); });
        return s;
      }
      case "text_link": return link(safeUrl(e.url || ""));
      case "url": return link(safeUrl(/^[a-z][a-z0-9+.-]*:/i.test(body) ? body : "https://" + body));
      case "email": return link(safeUrl("mailto:" + body));
      case "phone_number": return el("a", { href: "tel:" + body.replace(/[^0-9+]/g, "") });
      case "mention": case "text_mention": return el("span", { class: "mention" });
      case "hashtag": case "cashtag": case "bot_command": return el("span", { class: "tag" });
      default: return el("span");
    }
  }

  // Renders `text` with its entities (offsets in UTF-16 units, as JavaScript strings are) as
  // nested elements holding text nodes. Overlapping entities are clipped, never dropped text.
  function renderText(parent, text, entities) {
    const list = (Array.isArray(entities) ? entities : [])
      .filter((e) => e && typeof e.offset === "number" && typeof e.length === "number" && e.length > 0)
      .slice()
      .sort((a, b) => a.offset - b.offset || b.length - a.length);
    build(parent, text, 0, text.length, list);
  }

  function build(parent, text, start, end, ents) {
    let pos = start;
    let i = 0;
    while (i < ents.length) {
      const e = ents[i];
      const from = Math.max(e.offset, pos);
      const to = Math.min(e.offset + e.length, end);
      if (to <= from) { i++; continue; }
      if (from > pos) parent.append(text.slice(pos, from));
      let j = i + 1;
      while (j < ents.length && ents[j].offset < to) j++;
      const node = entityElement(e, text.slice(from, to));
      build(node, text, from, to, ents.slice(i + 1, j));
      parent.append(node);
      pos = to;
      i = j;
    }
    if (pos < end) parent.append(text.slice(pos, end));
  }

  // ---------------------------------------------------------------- members and presence

  function memberName(id) {
    if (id === null || id === undefined) return tr("inbox_assignee_none");
    const m = state.members.get(id);
    const name = m ? m.display_name : "#" + id;
    return id === ME ? name + " (" + tr("inbox_you") + ")" : name;
  }

  function dot(id) {
    const on = state.online.has(id);
    return el("span", { class: "dot" + (on ? " on" : ""), role: "img", "aria-label": tr(on ? "inbox_online" : "inbox_offline"), "data-user": id });
  }

  async function loadMembers() {
    const r = await api("GET", "/api/v1/inbox/members");
    if (!r.ok) return;
    state.members.clear();
    for (const m of r.data.members) {
      state.members.set(m.user_id, m);
      if (m.online) state.online.add(m.user_id); else state.online.delete(m.user_id);
    }
    renderPresence();
  }

  function renderPresence() {
    const list = $("team-list");
    list.replaceChildren(...[...state.members.values()].map((m) => el("li", {},
      dot(m.user_id), " ", memberName(m.user_id), " ",
      el("span", { class: "hint" }, m.role + (m.open_chats !== null && m.open_chats !== undefined
        ? " · " + m.open_chats + "/" + m.max_chats + " " + tr("inbox_open_chats") : "")))));
    for (const d of document.querySelectorAll(".dot[data-user]")) {
      const on = state.online.has(Number(d.dataset.user));
      d.classList.toggle("on", on);
      d.setAttribute("aria-label", tr(on ? "inbox_online" : "inbox_offline"));
    }
    const chat = state.open && state.chats.get(state.open);
    if (chat && ADMIN) renderAssign(chat);
  }

  // ---------------------------------------------------------------- the chat list

  function sourceLabel(chat) {
    const key = chat.account_id != null ? "account:" + chat.account_id : "bot:" + chat.bot_id;
    const opt = document.querySelector('#filter-source option[value="' + key + '"]');
    const kind = tr(chat.account_id != null ? "inbox_source_account" : "inbox_source_bot");
    return opt ? kind + " " + opt.dataset.label : kind;
  }

  function matches(chat) {
    const f = state.filter;
    if (!ADMIN && chat.assignee_id != null && chat.assignee_id !== ME) return false;
    if (f.assignee === "mine" && chat.assignee_id !== ME) return false;
    if (f.assignee === "unassigned" && chat.assignee_id != null) return false;
    if (f.status && chat.status !== f.status) return false;
    if (f.source) {
      const [kind, id] = f.source.split(":");
      if (kind === "account" && chat.account_id !== Number(id)) return false;
      if (kind === "bot" && chat.bot_id !== Number(id)) return false;
    }
    return true;
  }

  function newer(a, b) {
    return (b.last_message_at || 0) - (a.last_message_at || 0) || b.id - a.id;
  }

  function rowFor(chat) {
    const unread = chat.unread_count > 0
      ? el("span", { class: "unread", "aria-label": tr("inbox_unread", { n: chat.unread_count }) }, String(chat.unread_count))
      : null;
    const who = chat.assignee_id != null
      ? el("span", { class: "who" }, dot(chat.assignee_id), " ", memberName(chat.assignee_id))
      : el("span", { class: "who none" }, tr("inbox_assignee_none"));
    return el("button", { type: "button", class: "chat-row", "aria-current": state.open === chat.id ? "true" : null },
      el("span", { class: "chat-title", dir: "auto" }, chat.title || ("@" + (chat.username || chat.id))),
      chat.last_message_at ? el("span", { class: "chat-time" }, timeEl(chat.last_message_at)) : el("span"),
      el("span", { class: "chat-meta" },
        el("span", { class: "chip status-" + chat.status }, tr("inbox_status_" + chat.status)), " ",
        el("span", { class: "src" }, sourceLabel(chat)), " ", who),
      unread || el("span"));
  }

  function renderList() {
    const ul = $("chat-list");
    const chats = [...state.chats.values()].filter(matches).sort(newer);
    const existing = new Map([...ul.children].map((li) => [Number(li.dataset.chatId), li]));
    const focused = document.activeElement && document.activeElement.closest("#chat-list li");
    const focusedId = focused ? Number(focused.dataset.chatId) : null;
    const rows = chats.map((c) => {
      let li = existing.get(c.id);
      existing.delete(c.id);
      if (!li) li = el("li", { "data-chat-id": c.id });
      li.replaceChildren(rowFor(c));
      return li;
    });
    for (const li of existing.values()) li.remove();
    rows.forEach((li, i) => { if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null); });
    if (focusedId !== null) {
      const again = ul.querySelector('li[data-chat-id="' + focusedId + '"] button');
      if (again) again.focus();
    }
    $("chat-list-empty").hidden = chats.length > 0 || !state.listLoaded;
    $("chat-list-more").hidden = !state.listLoading;
    let unread = 0;
    for (const c of state.chats.values()) unread += c.unread_count > 0 ? 1 : 0;
    document.title = document.title.replace(/^\(\d+\) /, "");
    if (unread) document.title = "(" + unread + ") " + document.title;
  }

  function listQuery() {
    const q = new URLSearchParams({ assignee: state.filter.assignee, limit: String(PAGE) });
    if (state.filter.status) q.set("status", state.filter.status);
    if (state.filter.source) {
      const [kind, id] = state.filter.source.split(":");
      q.set(kind === "account" ? "account_id" : "bot_id", id);
    }
    if (state.cursor) { q.set("before_at", state.cursor.at); q.set("before_id", state.cursor.id); }
    return q;
  }

  async function loadChats(reset) {
    if (reset) {
      state.listGen++;
      state.cursor = undefined;
      state.listLoading = null;
    }
    if (state.listLoading !== null || state.cursor === null) return;
    const gen = state.listGen;
    state.listLoading = gen;
    renderList();
    const r = await api("GET", "/api/v1/chats?" + listQuery());
    if (gen !== state.listGen) return;
    state.listLoading = null;
    if (!r.ok) { renderList(); return; }
    if (reset) state.chats.clear();
    for (const c of r.data.chats) state.chats.set(c.id, c);
    state.cursor = r.data.next_before_id != null ? { at: r.data.next_before_at, id: r.data.next_before_id } : null;
    state.listLoaded = true;
    renderList();
    fillList();
  }

  // Loads the next page when the list is scrolled near its end (or does not fill its box).
  function fillList() {
    const ul = $("chat-list");
    if (state.cursor && ul.scrollTop + ul.clientHeight >= ul.scrollHeight - 80) loadChats(false);
  }

  function setFilter(change) {
    Object.assign(state.filter, change);
    for (const b of document.querySelectorAll(".inbox-filters [data-assignee]")) {
      b.setAttribute("aria-pressed", String(b.dataset.assignee === state.filter.assignee));
    }
    loadChats(true);
  }

  async function fetchChat(id) {
    const r = await api("GET", "/api/v1/chats/" + id);
    if (!r.ok) return null;
    state.chats.set(r.data.chat.id, r.data.chat);
    return r.data.chat;
  }

  function updateChat(chat) {
    state.chats.set(chat.id, chat);
    renderList();
    if (state.open === chat.id) renderHead(chat);
  }

  function dropChat(id) {
    state.chats.delete(id);
    renderList();
    if (state.open === id) closeChat(tr("inbox_chat_removed"));
  }

  // ---------------------------------------------------------------- the chat view

  function renderHead(chat) {
    $("chat-title").textContent = chat.title || ("@" + (chat.username || chat.id));
    const sub = [];
    if (chat.username) sub.push("@" + chat.username);
    sub.push(sourceLabel(chat));
    $("chat-sub").textContent = sub.join(" · ");
    $("chat-status").value = chat.status;
    renderAssign(chat);
  }

  function renderAssign(chat) {
    const box = $("chat-assign");
    const current = chat.assignee_id;
    if (ADMIN) {
      const select = el("select", { id: "chat-assignee" },
        el("option", { value: "" }, tr("inbox_assignee_none")),
        ...[...state.members.values()].map((m) => el("option", { value: m.user_id, selected: m.user_id === current },
          memberName(m.user_id) + " — " + tr(state.online.has(m.user_id) ? "inbox_online" : "inbox_offline")
          + (m.open_chats != null ? " · " + m.open_chats + "/" + m.max_chats : ""))));
      if (current != null && !state.members.has(current)) select.append(el("option", { value: current, selected: true }, memberName(current)));
      select.addEventListener("change", () => assign(chat.id, select.value === "" ? null : Number(select.value)));
      box.replaceChildren(current != null ? dot(current) : "", el("label", { for: "chat-assignee", class: "sr-only" }, tr("inbox_assignee_none")), select);
      return;
    }
    const who = el("span", { class: "who" }, current != null ? dot(current) : "", " ", memberName(current));
    let action = null;
    if (current == null) action = el("button", { type: "button", id: "chat-take", onclick: () => assign(chat.id, ME) }, tr("inbox_take"));
    else if (current === ME) action = el("button", { type: "button", class: "secondary", id: "chat-hand-back", onclick: () => assign(chat.id, null) }, tr("inbox_hand_back"));
    box.replaceChildren(who, action || "");
  }

  async function assign(chatId, userId) {
    const r = await api("POST", "/api/v1/chats/" + chatId + "/assign", { user_id: userId });
    if (!r.ok) { showChatError(errorText(r)); const c = state.chats.get(chatId); if (c) renderAssign(c); return; }
    updateChat(r.data.chat);
    loadMembers();
  }

  function showChatError(text) {
    const p = $("chat-error");
    p.textContent = text;
    p.hidden = !text;
  }

  function closeChat(notice) {
    state.open = null;
    state.openGen++;
    $("chat-pane").hidden = true;
    const ph = $("chat-placeholder");
    ph.textContent = notice || tr("inbox_pick_chat");
    ph.hidden = false;
    history.replaceState(null, "", location.pathname + location.search);
    renderList();
  }

  async function openChat(id, force) {
    if (state.open === id && !force) return;
    state.open = id;
    const gen = ++state.openGen;
    state.messages.clear();
    state.oldestId = null;
    state.hasMore = false;
    state.loadingOlder = false;
    setReply(null);
    if (!force) setAttachment(null);
    showChatError("");
    history.replaceState(null, "", "#chat-" + id);
    $("chat-placeholder").hidden = true;
    $("chat-pane").hidden = false;
    const box = $("messages");
    box.replaceChildren(el("p", { class: "hint" }, tr("inbox_loading")));
    renderList();
    const chat = state.chats.get(id) || await fetchChat(id);
    if (gen !== state.openGen) return;
    if (!chat) { closeChat(tr("inbox_chat_removed")); return; }
    renderHead(chat);
    const page = await fetchMessages(id, null);
    if (gen !== state.openGen) return;
    box.replaceChildren();
    if (!page) { showChatError(tr("inbox_reconnecting")); return; }
    addPage(page);
    box.scrollTop = box.scrollHeight;
    markRead(id);
    if (!force) $("composer-text").focus();
  }

  function addPage(page) {
    for (const m of page.messages) {
      if (state.oldestId === null || m.id < state.oldestId) state.oldestId = m.id;
      upsertMessage(m, false);
    }
    state.hasMore = page.has_more;
    renderOlderButton();
  }

  function renderOlderButton() {
    const box = $("messages");
    let b = $("load-older");
    if (state.hasMore && !b) {
      b = el("button", { type: "button", id: "load-older", class: "secondary older", onclick: loadOlder }, tr("inbox_load_older"));
      box.prepend(b);
    } else if (!state.hasMore && b) b.remove();
  }

  async function loadOlder() {
    if (!state.open || !state.hasMore || state.loadingOlder) return;
    state.loadingOlder = true;
    const gen = state.openGen;
    const box = $("messages");
    const page = await fetchMessages(state.open, state.oldestId);
    if (gen !== state.openGen) return;
    state.loadingOlder = false;
    if (!page) return;
    const before = box.scrollHeight;
    addPage(page);
    box.scrollTop += box.scrollHeight - before;
  }

  // Asks for a page of messages over the WebSocket (answered in chunks), or over HTTP when
  // the socket is down or slow. Resolves `{messages, has_more}` (newest first) or null.
  function fetchMessages(chatId, before) {
    const viaHttp = async () => {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (before) q.set("before", before);
      const r = await api("GET", "/api/v1/chats/" + chatId + "/messages?" + q);
      return r.ok ? r.data : null;
    };
    if (!state.wsReady || state.pending.has(chatId)) return viaHttp();
    return new Promise((resolve) => {
      const done = (result) => {
        const p = state.pending.get(chatId);
        if (!p) return;
        clearTimeout(p.timer);
        state.pending.delete(chatId);
        if (result) resolve(result); else viaHttp().then(resolve);
      };
      state.pending.set(chatId, { messages: [], received: 0, done, timer: setTimeout(() => done(null), 8000) });
      const cmd = { type: "get_chat_messages", chat_id: chatId, limit: PAGE };
      if (before) cmd.before = before;
      state.ws.send(JSON.stringify(cmd));
    });
  }

  function onChatMessages(f) {
    const p = state.pending.get(f.chat_id);
    if (!p) return;
    p.messages.push(...f.messages);
    p.received++;
    if (p.received >= f.chunks) p.done({ messages: p.messages, has_more: f.has_more });
  }

  function markRead(id) {
    const chat = state.chats.get(id);
    if (chat) { chat.unread_count = 0; renderList(); }
    if (state.wsReady) state.ws.send(JSON.stringify({ type: "mark_as_read", chat_id: id }));
    else api("POST", "/api/v1/chats/" + id + "/read");
  }

  function order(a, b) {
    return a.sent_at - b.sent_at || a.id - b.id;
  }

  // Adds or replaces a message of the open chat, keeping the view in time order.
  // Telegram's echo of a reply (a `received` outgoing message with the reply's Telegram id):
  // when the echo was stored before the reply was recorded sent, the store dropped it with
  // that record, so the page drops it too and keeps the reply. True when `m` is such an echo
  // of a reply the page shows.
  function dropEchoes(m) {
    if (m.tg_message_id == null || m.direction !== "out") return false;
    for (const [id, other] of state.messages) {
      if (id === m.id || other.tg_message_id !== m.tg_message_id || other.direction !== "out") continue;
      if (m.status === "received") return true;
      if (other.status === "received") {
        state.messages.delete(id);
        const node = $("msg-" + id);
        if (node) node.remove();
      }
    }
    return false;
  }

  function upsertMessage(m, live) {
    const box = $("messages");
    const nearBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 120;
    if (dropEchoes(m)) return;
    state.messages.set(m.id, m);
    const node = messageEl(m);
    const old = $("msg-" + m.id);
    if (old) { old.replaceWith(node); return; }
    let after = null;
    for (let c = box.lastElementChild; c; c = c.previousElementSibling) {
      const other = c.dataset.id && state.messages.get(Number(c.dataset.id));
      if (other && order(other, m) <= 0) { after = c; break; }
    }
    if (after) after.after(node);
    else { const older = $("load-older"); if (older) older.after(node); else box.prepend(node); }
    if (live && (nearBottom || m.direction === "out")) box.scrollTop = box.scrollHeight;
  }

  function quoteOf(tgId) {
    const target = [...state.messages.values()].find((x) => x.tg_message_id === tgId);
    const text = target ? (target.text || tr("inbox_media_" + ((target.media && target.media.kind) || "other"))) : tr("inbox_reply_unknown");
    return text.length > 90 ? text.slice(0, 90) + "…" : text;
  }

  function messageEl(m) {
    const out = m.direction === "out";
    const box = el("article", {
      class: "msg " + (out ? "out" : "in") + (m.deleted ? " deleted" : ""),
      id: "msg-" + m.id, "data-id": m.id, "data-status": m.status, "aria-label": null,
    });
    const chat = state.chats.get(m.chat_id);
    if (out && m.author_id != null) box.append(el("div", { class: "msg-sender" }, memberName(m.author_id)));
    else if (!out && m.sender_name && chat && chat.peer_kind !== "user") box.append(el("div", { class: "msg-sender", dir: "auto" }, m.sender_name));
    if (m.reply_to_tg_id != null) {
      box.append(el("div", { class: "msg-quote", dir: "auto" }, quoteOf(m.reply_to_tg_id)));
    }
    if (m.media && m.media.kind) box.append(mediaEl(m));
    if (m.text) {
      const t = el("div", { class: "msg-text", dir: "auto" });
      renderText(t, m.text, m.entities);
      box.append(t);
    }
    const meta = el("div", { class: "msg-meta" }, timeEl(m.sent_at));
    if (m.edited_at) {
      const b = el("button", { type: "button", class: "linklike edited", "aria-expanded": "false", title: fullFmt.format(new Date(m.edited_at)) }, tr("inbox_edited"));
      b.addEventListener("click", () => toggleHistory(m, box, b));
      meta.append(" ", b);
    }
    if (m.deleted) meta.append(" ", el("span", { class: "deleted-label" }, tr("inbox_deleted")));
    if (out) {
      const uncertain = m.status === "failed" && m.error === "send_uncertain";
      // `received`: written in Telegram itself (from the phone), so it is sent.
      const shown = uncertain ? "uncertain" : m.status === "received" ? "sent" : m.status;
      meta.append(" ", el("span", { class: "msg-status", "data-status": shown }, tr("inbox_msg_" + shown)));
      if (uncertain) {
        // Telegram may have posted it: the operator checks and decides.
        meta.append(" ", el("span", { class: "error" }, tr("send_uncertain")));
        meta.append(" ", el("button", { type: "button", class: "retry", onclick: () => retry(m.id) }, tr("inbox_send_again")));
        meta.append(" ", el("button", { type: "button", class: "mark-sent", onclick: () => markSent(m.id) }, tr("inbox_mark_sent")));
      } else if (m.status === "failed") {
        if (m.error) meta.append(" ", el("span", { class: "error" }, m.error));
        meta.append(" ", el("button", { type: "button", class: "retry", onclick: () => retry(m.id) }, tr("inbox_retry")));
      }
    }
    if (m.tg_message_id != null && !m.deleted) {
      meta.append(" ", el("button", { type: "button", class: "linklike reply", onclick: () => setReply(m) }, tr("inbox_reply")));
    }
    box.append(meta);
    return box;
  }

  async function toggleHistory(m, box, button) {
    const existing = box.querySelector(".msg-history");
    if (existing) { existing.remove(); button.setAttribute("aria-expanded", "false"); return; }
    const r = await api("GET", "/api/v1/messages/" + m.id + "/history");
    const panel = el("div", { class: "msg-history", role: "group", "aria-label": tr("inbox_edit_history"), id: "history-" + m.id },
      el("strong", {}, tr("inbox_edit_history")));
    if (!r.ok) panel.append(el("p", { class: "error" }, errorText(r)));
    else if (!r.data.edits.length) panel.append(el("p", { class: "hint" }, tr("inbox_no_history")));
    else {
      panel.append(el("ol", {}, ...r.data.edits.map((e) => el("li", {},
        el("span", { class: "hint" }, fullFmt.format(new Date(e.edited_at))), " ",
        el("span", { class: "old", dir: "auto" }, e.old_text)))));
    }
    panel.append(el("button", { type: "button", class: "linklike", onclick: () => { panel.remove(); button.setAttribute("aria-expanded", "false"); button.focus(); } }, tr("inbox_close")));
    button.setAttribute("aria-controls", panel.id);
    button.setAttribute("aria-expanded", "true");
    box.querySelector(".msg-meta").before(panel);
  }

  async function retry(id) {
    const r = await api("POST", "/api/v1/messages/" + id + "/retry");
    if (!r.ok) { showChatError(errorText(r)); return; }
    const m = state.messages.get(id);
    if (r.data.message.chat_id === state.open && (!m || m.status === "failed")) upsertMessage(r.data.message, false);
  }

  async function markSent(id) {
    const r = await api("POST", "/api/v1/messages/" + id + "/mark_sent");
    if (!r.ok) { showChatError(errorText(r)); return; }
    if (r.data.message.chat_id === state.open) upsertMessage(r.data.message, false);
  }

  function mediaEl(m) {
    const md = m.media;
    const kind = md.kind;
    const label = STRINGS["inbox_media_" + kind] ? tr("inbox_media_" + kind) : tr("inbox_media_other");
    const src = "/api/v1/messages/" + m.id + "/media";
    const has = Boolean(md.file_id);
    const mime = md.mime_type || "";
    const wrap = el("div", { class: "msg-media media-" + kind });
    const missing = () => el("span", { class: "hint" }, label + " — " + tr("inbox_media_missing"));
    switch (kind) {
      case "photo":
        wrap.append(has ? el("a", { href: src, target: "_blank", rel: "noopener" }, el("img", { src, alt: label, loading: "lazy" })) : missing());
        break;
      case "video": case "video_note": case "animation":
        wrap.append(has ? el("video", {
          src, controls: kind !== "animation", preload: "metadata", "aria-label": label,
          autoplay: kind === "animation", muted: kind === "animation", loop: kind === "animation", playsinline: true,
        }) : missing());
        break;
      case "voice": case "audio": {
        const title = [md.performer, md.title].filter(Boolean).join(" — ");
        wrap.append(el("span", { class: "hint" }, title || label));
        wrap.append(has ? el("audio", { src, controls: true, preload: "none", "aria-label": title || label }) : missing());
        break;
      }
      case "sticker":
        if (has && /webm|video/.test(mime)) wrap.append(el("video", { src, autoplay: true, muted: true, loop: true, playsinline: true, "aria-label": label + " " + (md.emoji || "") }));
        else if (has && /^image\//.test(mime)) wrap.append(el("img", { src, alt: label + " " + (md.emoji || ""), loading: "lazy" }));
        else wrap.append(el("span", { class: "sticker-emoji", role: "img", "aria-label": label }, md.emoji || "🖼"));
        break;
      case "location": case "live_location": case "venue": {
        const coords = typeof md.latitude === "number" ? md.latitude.toFixed(5) + ", " + md.longitude.toFixed(5) : "";
        wrap.append("📍 ", el("strong", {}, md.title || label), " ");
        if (md.address) wrap.append(el("span", { dir: "auto" }, md.address), " ");
        if (coords) wrap.append(el("a", { href: "geo:" + md.latitude + "," + md.longitude }, coords));
        break;
      }
      case "contact": {
        const name = [md.first_name, md.last_name].filter(Boolean).join(" ");
        wrap.append("👤 ", el("strong", { dir: "auto" }, name || label), " ");
        if (md.phone_number) wrap.append(el("a", { href: "tel:" + String(md.phone_number).replace(/[^0-9+]/g, "") }, md.phone_number));
        break;
      }
      case "dice":
        wrap.append(el("span", { class: "sticker-emoji" }, md.emoticon || "🎲"), " " + (md.value ?? ""));
        break;
      case "document": {
        const name = md.file_name || label;
        const text = "📄 " + name + (md.size ? " (" + fileSize(md.size) + ")" : "");
        wrap.append(has ? el("a", { href: src, download: name }, text) : el("span", {}, text, " — ", tr("inbox_media_missing")));
        break;
      }
      default:
        wrap.append(el("span", { class: "hint" }, label));
    }
    return wrap;
  }

  // ---------------------------------------------------------------- the composer

  function setReply(m) {
    state.replyTo = m;
    const box = $("composer-reply");
    if (!m) { box.hidden = true; box.replaceChildren(); return; }
    box.replaceChildren(
      el("span", {}, tr("inbox_replying_to") + ": "),
      el("q", { dir: "auto" }, m.text ? (m.text.length > 90 ? m.text.slice(0, 90) + "…" : m.text) : tr("inbox_media_" + ((m.media && m.media.kind) || "other"))),
      el("button", { type: "button", class: "linklike", "aria-label": tr("inbox_close"), onclick: () => setReply(null) }, "×"));
    box.hidden = false;
    $("composer-text").focus();
  }

  function setAttachment(a, busy) {
    state.attachment = a;
    const box = $("composer-attachment");
    if (busy) { box.replaceChildren(el("span", { class: "hint" }, tr("inbox_uploading"))); box.hidden = false; return; }
    if (!a) { box.hidden = true; box.replaceChildren(); return; }
    box.replaceChildren(
      el("span", { class: "chip" }, "📎 " + a.file_name + (a.size ? " (" + fileSize(a.size) + ")" : "")),
      el("button", { type: "button", class: "linklike", "aria-label": tr("inbox_remove_attachment"), onclick: () => setAttachment(null) }, "×"));
    box.hidden = false;
  }

  async function upload(file) {
    state.uploading = true;
    setAttachment(null, true);
    showChatError("");
    const form = new FormData();
    form.append("file", file, file.name);
    let r;
    try {
      const res = await fetch("/api/v1/files", {
        method: "POST", body: form, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": readCookie("sb_csrf") },
      });
      let data = null;
      try { data = await res.json(); } catch (_) { data = null; }
      r = { ok: res.ok, status: res.status, data };
    } catch (e) {
      r = { ok: false, status: 0, data: null };
    }
    state.uploading = false;
    if (!r.ok) { setAttachment(null); showChatError(errorText(r)); return; }
    setAttachment(r.data);
  }

  async function send() {
    const chatId = state.open;
    const text = $("composer-text").value;
    if (!chatId || state.sending || state.uploading) return;
    if (!text.trim() && !state.attachment) return;
    const body = { text };
    if (state.attachment) {
      const a = state.attachment;
      body.attachment = { file_id: a.file_id, kind: a.kind, file_name: a.file_name, mime_type: a.mime_type };
    }
    if (state.replyTo) body.reply_to_tg_id = state.replyTo.tg_message_id;
    state.sending = true;
    $("composer-send").disabled = true;
    const r = await api("POST", "/api/v1/chats/" + chatId + "/messages", body);
    state.sending = false;
    $("composer-send").disabled = false;
    if (!r.ok) { showChatError(errorText(r)); return; }
    showChatError("");
    $("composer-text").value = "";
    setReply(null);
    setAttachment(null);
    // The socket may already have brought this message in a later state (sending, sent):
    // the HTTP answer only adds it when it is not there yet.
    if (state.open === chatId && !state.messages.has(r.data.message.id)) upsertMessage(r.data.message, true);
  }

  // ---------------------------------------------------------------- real time

  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    let url = proto + location.host + "/ws";
    if (state.lastEventId !== null) url += "?last_event_id=" + state.lastEventId;
    const ws = new WebSocket(url);
    state.ws = ws;
    ws.onopen = () => { state.wsReady = true; state.retries = 0; $("inbox-conn").hidden = true; };
    ws.onmessage = (m) => {
      let f;
      try { f = JSON.parse(m.data); } catch (_) { return; }
      if (typeof f.id === "number") {
        if (state.lastEventId === null || f.id > state.lastEventId) state.lastEventId = f.id;
        onEvent(f.type, f.data || {});
      } else onControl(f);
    };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ws = null;
      state.wsReady = false;
      $("inbox-conn").hidden = false;
      for (const p of [...state.pending.values()]) p.done(null);
      const delay = Math.min(30000, 500 * 2 ** state.retries) * (0.75 + Math.random() / 2);
      state.retries++;
      setTimeout(connect, delay);
    };
  }

  function onControl(f) {
    switch (f.type) {
      case "hello":
        if (state.lastEventId === null) state.lastEventId = f.last_event_id;
        break;
      case "initial_chats":
        for (const id of f.online || []) state.online.add(id);
        renderPresence();
        if (!state.listLoaded && state.listLoading === null && state.filter.assignee === "all" && !state.filter.status && !state.filter.source) {
          for (const c of f.chats) state.chats.set(c.id, c);
          const last = f.chats[f.chats.length - 1];
          state.cursor = f.chats.length >= PAGE && last ? { at: last.last_message_at || 0, id: last.id } : null;
          state.listLoaded = true;
          renderList();
          fillList();
        }
        break;
      case "chat_messages":
        onChatMessages(f);
        break;
      case "resync_required":
        // The server restarted or our last event is too old: the event id starts again from
        // the server's, and the list, the members and the open chat are fetched anew.
        if (typeof f.last_event_id === "number") state.lastEventId = f.last_event_id;
        loadChats(true);
        loadMembers();
        if (state.open) openChat(state.open, true);
        break;
      case "session_ended":
        location.assign("/login");
        break;
      case "error":
        for (const p of [...state.pending.values()]) p.done(null);
        break;
      default:
        break;
    }
  }

  function onEvent(type, data) {
    switch (type) {
      case "new_message": {
        const m = data.message;
        if (!m) return;
        if (!state.chats.has(m.chat_id)) fetchChat(m.chat_id).then(() => renderList());
        if (m.chat_id === state.open) {
          upsertMessage(m, true);
          if (m.direction === "in" && document.visibilityState === "visible") markRead(m.chat_id);
        }
        break;
      }
      case "message_updated": case "message_status": {
        const m = data.message;
        if (m && m.chat_id === state.open && (state.messages.has(m.id) || type === "message_status")) upsertMessage(m, false);
        break;
      }
      case "chat_updated": {
        const chat = data.chat;
        const id = chat ? chat.id : data.chat_id;
        const assignee = chat ? chat.assignee_id : data.assignee_id;
        if (data.removed && !ADMIN && assignee !== ME) { dropChat(id); break; }
        if (!chat) break;
        if (!ADMIN && chat.assignee_id != null && chat.assignee_id !== ME) { dropChat(id); break; }
        if (state.open === chat.id && document.visibilityState === "visible" && chat.unread_count > 0) {
          chat.unread_count = 0;
          markRead(chat.id);
        }
        updateChat(chat);
        break;
      }
      case "presence": {
        if (data.online) state.online.add(data.user_id); else state.online.delete(data.user_id);
        const m = state.members.get(data.user_id);
        if (m) m.online = data.online; else loadMembers();
        renderPresence();
        break;
      }
      default:
        break;
    }
  }

  // ---------------------------------------------------------------- wiring

  for (const b of document.querySelectorAll(".inbox-filters [data-assignee]")) {
    b.addEventListener("click", () => setFilter({ assignee: b.dataset.assignee }));
  }
  $("filter-status").addEventListener("change", (ev) => setFilter({ status: ev.target.value }));
  $("filter-source").addEventListener("change", (ev) => setFilter({ source: ev.target.value }));
  $("chat-list").addEventListener("click", (ev) => {
    const li = ev.target.closest("li[data-chat-id]");
    if (li) openChat(Number(li.dataset.chatId));
  });
  $("chat-list").addEventListener("scroll", fillList);
  $("messages").addEventListener("scroll", () => { if ($("messages").scrollTop < 60) loadOlder(); });
  $("chat-status").addEventListener("change", async (ev) => {
    const id = state.open;
    const r = await api("POST", "/api/v1/chats/" + id + "/status", { status: ev.target.value });
    if (!r.ok) { showChatError(errorText(r)); const c = state.chats.get(id); if (c) ev.target.value = c.status; return; }
    updateChat(r.data.chat);
  });
  const text = $("composer-text");
  text.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); send(); }
    if (ev.key === "Escape" && state.replyTo) setReply(null);
  });
  text.setAttribute("maxlength", "4096");
  $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); send(); });
  $("composer-file").addEventListener("change", (ev) => {
    const file = ev.target.files && ev.target.files[0];
    ev.target.value = "";
    if (file) upload(file);
  });
  document.addEventListener("visibilitychange", () => {
    const chat = state.open && state.chats.get(state.open);
    if (chat && document.visibilityState === "visible" && chat.unread_count > 0) markRead(chat.id);
  });
  setInterval(() => { if (state.wsReady) state.ws.send(JSON.stringify({ type: "ping" })); }, 25000);

  loadMembers();
  connect();
  // Without the socket's first page soon, ask over HTTP.
  setTimeout(() => { if (!state.listLoaded) loadChats(true); }, 2500);
  const wanted = /^#chat-(\d+)$/.exec(location.hash);
  if (wanted) openChat(Number(wanted[1]));
})();
