// Switchboard's small page script: sign-in, sign-out, the language switch and the Accounts
// page (live list, actions, connect wizard, import and upload).
"use strict";

function readCookie(name) {
  const m = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith(name + "="));
  return m ? decodeURIComponent(m.slice(name.length + 1)) : "";
}

// API calls: JSON (or FormData) in, JSON out. Error messages come in the page's language.
async function api(method, path, body) {
  const headers = { "Accept": "application/json", "Accept-Language": document.documentElement.lang || "en" };
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = readCookie("sb_csrf");
  const payload = body === undefined || form ? body : JSON.stringify(body);
  const res = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  let data = null;
  try { data = await res.json(); } catch (_) { data = null; }
  const retryAfter = parseInt(res.headers.get("Retry-After") || "0", 10) || 0;
  return { ok: res.ok, status: res.status, data, retryAfter };
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login-form");
  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const err = document.getElementById("login-error");
      const button = form.querySelector("button");
      button.disabled = true;
      err.hidden = true;
      const r = await api("POST", "/api/v1/auth/login", { username: form.username.value, password: form.password.value });
      button.disabled = false;
      if (r.ok) { window.location.assign("/inbox"); return; }
      err.textContent = (r.data && r.data.error && r.data.error.message) || ("HTTP " + r.status);
      err.hidden = false;
    });
  }
  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      await api("POST", "/api/v1/auth/logout");
      window.location.assign("/login");
    });
  }
  const lang = document.getElementById("lang-select");
  if (lang) {
    lang.addEventListener("change", async () => {
      if (lang.dataset.save === "user") {
        const r = await api("PUT", "/api/v1/me/locale", { locale: lang.value || null });
        if (r.ok) window.location.reload();
      } else {
        document.cookie = "sb_lang=" + lang.value + "; Path=/; SameSite=Strict; Max-Age=31536000";
        window.location.reload();
      }
    });
  }
});

// --- Accounts page: live health, actions, and the connect wizard ---
function errorText(r) {
  return (r.data && r.data.error && r.data.error.message) || ("HTTP " + r.status);
}

// Shows an API error in the wizard step `box`. When Telegram asked to wait (FLOOD_WAIT, a
// 429 with Retry-After), the step's buttons stay disabled and the message counts down.
function showError(box, r) {
  const p = box.querySelector(".error");
  clearInterval(p._countdown);
  const text = errorText(r);
  p.textContent = text;
  p.hidden = false;
  let left = r.retryAfter || 0;
  if (left <= 0) return;
  const buttons = box.querySelectorAll("button");
  const tick = () => {
    p.dataset.waitSeconds = String(left);
    p.textContent = text + " (" + left + " s)";
    buttons.forEach((b) => { b.disabled = left > 0; });
    if (left <= 0) { clearInterval(p._countdown); p.textContent = text; }
    left -= 1;
  };
  tick();
  p._countdown = setInterval(tick, 1000);
}

function statusLabel(status) {
  const list = document.getElementById("accounts-list");
  const labels = list ? JSON.parse(list.dataset.statusLabels || "{}") : {};
  return labels[status] || status;
}

// Shows an `account_status` event on the account's row; false when the list has no such row.
function applyStatus(data) {
  const row = document.querySelector('tr[data-account="' + data.account_id + '"]');
  if (!row) return false;
  const badge = row.querySelector(".badge");
  badge.dataset.status = data.status;
  badge.textContent = statusLabel(data.status);
  const detail = row.querySelector(".detail");
  if (detail) detail.textContent = data.detail || "";
  return true;
}

// Replaces the account list with the server's current one; the wizard keeps its state. Only
// the newest of overlapping refreshes is applied, so an older answer never wins. The list may
// have been rendered before a status event that arrived while it was on its way: the events
// seen since the refresh started are applied again on the fresh list, so none is undone.
let refreshes = 0;
const statusSinceRefresh = new Set();
async function refreshAccounts() {
  const mine = ++refreshes;
  const since = new Map();
  statusSinceRefresh.add(since);
  try {
    const res = await fetch("/accounts", { credentials: "same-origin", headers: { "Accept": "text/html" } });
    if (!res.ok) return;
    const html = await res.text();
    if (mine !== refreshes) return;
    const doc = new DOMParser().parseFromString(html, "text/html");
    const fresh = doc.getElementById("accounts-list");
    const current = document.getElementById("accounts-list");
    if (fresh && current) current.replaceWith(fresh);
    for (const data of since.values()) applyStatus(data);
  } finally {
    statusSinceRefresh.delete(since);
  }
}

function askPassword(box, flowId, hint, onDone) {
  const form = box.querySelector(".password-form");
  form.hidden = false;
  form.querySelector(".hint-text").textContent = hint ? " (" + hint + ")" : "";
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    box.querySelector(".error").hidden = true;
    const r = await api("POST", "/api/v1/accounts/login/" + flowId + "/password", { password: form.password.value });
    if (!r.ok) { showError(box, r); return; }
    form.reset();
    form.hidden = true;
    onDone(r.data);
  };
}

function showUploadResults(list, entries) {
  list.textContent = "";
  for (const e of entries) {
    const li = document.createElement("li");
    li.dataset.status = e.status;
    li.dataset.code = e.status === "error" ? e.error.code : "";
    const outcome = e.status === "imported"
      ? list.dataset.imported + " (" + statusLabel(e.account.status) + ")"
      : e.error.message + " [" + e.error.code + "]";
    li.textContent = e.name + ": " + outcome;
    list.appendChild(li);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  if (!document.getElementById("accounts-list")) return;
  document.addEventListener("click", async (ev) => {
    const b = ev.target.closest("#accounts-list button[data-action]");
    if (!b) return;
    const id = b.closest("tr").dataset.account;
    if (b.dataset.confirm && !window.confirm(b.dataset.confirm)) return;
    const action = b.dataset.action;
    const err = document.getElementById("list-error");
    err.hidden = true;
    b.disabled = true;
    const r = action === "delete"
      ? await api("DELETE", "/api/v1/accounts/" + id)
      : await api("POST", "/api/v1/accounts/" + id + "/" + action);
    b.disabled = false;
    if (!r.ok) { err.textContent = errorText(r); err.hidden = false; return; }
    await refreshAccounts();
  });
  document.addEventListener("change", async (ev) => {
    const box = ev.target.closest("#accounts-list input[data-setting]");
    if (!box) return;
    const id = box.closest("tr").dataset.account;
    box.disabled = true;
    const r = await api("PATCH", "/api/v1/accounts/" + id, { [box.dataset.setting]: box.checked });
    box.disabled = false;
    if (!r.ok) box.checked = !box.checked;
  });
  const proto = window.location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(proto + window.location.host + "/ws");
  ws.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type !== "account_status") return;
    for (const since of statusSinceRefresh) since.set(ev.data.account_id, ev.data);
    if (!applyStatus(ev.data)) refreshAccounts();
  };

  const phoneBox = document.getElementById("connect-phone");
  if (phoneBox) {
    let flow = null;
    const phoneForm = document.getElementById("phone-form");
    const codeForm = document.getElementById("code-form");
    const info = document.getElementById("code-info");
    const sentVia = (code) => { info.textContent = info.dataset.label + ": " + code.delivery; };
    const done = () => {
      flow = null;
      phoneForm.reset();
      codeForm.reset();
      codeForm.hidden = true;
      refreshAccounts();
    };
    const after = (data) => {
      if (data.status === "done") { done(); return; }
      if (data.status === "password_needed") { codeForm.hidden = true; askPassword(phoneBox, flow, data.hint, done); }
    };
    phoneForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      phoneBox.querySelector(".error").hidden = true;
      const r = await api("POST", "/api/v1/accounts/login/phone", { phone: phoneForm.phone.value });
      if (!r.ok) { showError(phoneBox, r); return; }
      flow = r.data.flow_id;
      sentVia(r.data.code);
      codeForm.hidden = false;
      codeForm.code.focus();
    });
    codeForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      phoneBox.querySelector(".error").hidden = true;
      const r = await api("POST", "/api/v1/accounts/login/" + flow + "/code", { code: codeForm.code.value.trim() });
      if (!r.ok) { showError(phoneBox, r); return; }
      after(r.data);
    });
    document.getElementById("resend").addEventListener("click", async () => {
      phoneBox.querySelector(".error").hidden = true;
      const r = await api("POST", "/api/v1/accounts/login/" + flow + "/resend");
      if (!r.ok) { showError(phoneBox, r); return; }
      sentVia(r.data.code);
    });
  }

  const qrBox = document.getElementById("connect-qr");
  if (qrBox) {
    let timer = null;
    const image = document.getElementById("qr-image");
    const done = () => { image.textContent = ""; refreshAccounts(); };
    document.getElementById("qr-start").addEventListener("click", async () => {
      qrBox.querySelector(".error").hidden = true;
      const r = await api("POST", "/api/v1/accounts/login/qr");
      if (!r.ok) { showError(qrBox, r); return; }
      const flow = r.data.flow_id;
      image.innerHTML = r.data.svg;
      clearInterval(timer);
      timer = setInterval(async () => {
        const s = await api("GET", "/api/v1/accounts/login/" + flow);
        if (!s.ok) { clearInterval(timer); showError(qrBox, s); return; }
        if (s.data.status === "qr_pending") { image.innerHTML = s.data.svg; return; }
        clearInterval(timer);
        if (s.data.status === "done") { done(); return; }
        if (s.data.status === "password_needed") { image.textContent = ""; askPassword(qrBox, flow, s.data.hint, done); }
      }, 2000);
    });
  }

  const importBox = document.getElementById("import");
  if (importBox) {
    const importForm = document.getElementById("import-form");
    importForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      importBox.querySelector(".error").hidden = true;
      const r = await api("POST", "/api/v1/accounts/import", { session_string: importForm.session.value.trim() });
      if (!r.ok) { showError(importBox, r); return; }
      importForm.reset();
      refreshAccounts();
    });
    const results = document.getElementById("upload-results");
    for (const input of [document.getElementById("import-files"), document.getElementById("import-folder")]) {
      input.addEventListener("change", async () => {
        if (!input.files.length) return;
        importBox.querySelector(".error").hidden = true;
        results.textContent = "";
        const fd = new FormData();
        // A folder upload names each file by its path inside the folder ({phone}/{phone}.json).
        for (const f of input.files) fd.append("files", f, f.webkitRelativePath || f.name);
        input.disabled = true;
        const r = await api("POST", "/api/v1/accounts/import/upload", fd);
        input.disabled = false;
        input.value = "";
        if (!r.ok) { showError(importBox, r); return; }
        showUploadResults(results, r.data.entries);
        refreshAccounts();
      });
    }
  }
});

// --- Settings, System section (admins): worker states refreshed every 5 s, restart-clients ---
document.addEventListener("DOMContentLoaded", () => {
  const system = document.getElementById("system");
  if (!system) return;
  const labels = JSON.parse(system.dataset.labels || "{}");
  const stateBadge = (cell, state) => {
    const badge = cell && cell.querySelector(".badge");
    if (!badge) return;
    badge.dataset.state = state;
    badge.textContent = labels[state] || state;
  };
  const fill = (row, w) => {
    if (!row) return;
    stateBadge(row.querySelector(".state"), w ? w.state : "none");
    row.querySelector(".restarts").textContent = w ? String(w.restarts) : "0";
    row.querySelector(".error").textContent = (w && w.last_error) || "";
  };
  const health = (row, status, detail) => {
    const badge = row && row.querySelector(".health .badge");
    if (!badge) return;
    badge.dataset.status = status;
    badge.textContent = labels["status_" + status] || status;
    row.querySelector(".health .detail").textContent = detail || "";
  };
  const refresh = async () => {
    const r = await api("GET", "/api/v1/system/status");
    if (!r.ok || !r.data) return;
    const ready = document.getElementById("system-ready");
    ready.dataset.ready = String(r.data.ready);
    for (const w of r.data.workers) fill(system.querySelector(`tr[data-worker="${CSS.escape(w.name)}"]`), w);
    for (const a of r.data.accounts) {
      const row = system.querySelector(`tr[data-account="${a.account_id}"]`);
      fill(row, a.worker);
      health(row, a.status, a.status_detail);
    }
    for (const b of r.data.bots) {
      const row = system.querySelector(`tr[data-bot="${b.bot_id}"]`);
      fill(row, b.worker);
      health(row, b.status, b.status_detail);
    }
  };
  setInterval(refresh, 5000);
  const restart = document.getElementById("restart-clients");
  const result = document.getElementById("restart-result");
  restart.addEventListener("click", async () => {
    restart.disabled = true;
    const r = await api("POST", "/api/v1/system/control", { action: "restart_clients" });
    restart.disabled = false;
    result.hidden = false;
    if (r.ok) {
      result.className = "ok";
      result.textContent = restart.dataset.done.replace("{n}", String(r.data.restarted));
      setTimeout(refresh, 1000);
    } else {
      result.className = "error";
      result.textContent = errorText(r) + (r.retryAfter ? " (" + r.retryAfter + " s)" : "");
    }
  });
});
