// Switchboard's small page script: sign-in, sign-out and the language switch.
"use strict";

function readCookie(name) {
  const m = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith(name + "="));
  return m ? decodeURIComponent(m.slice(name.length + 1)) : "";
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = readCookie("sb_csrf");
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  let data = null;
  try { data = await res.json(); } catch (_) { data = null; }
  return { ok: res.ok, status: res.status, data };
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
function showError(box, r) {
  const p = box.querySelector(".error");
  p.textContent = (r.data && r.data.error && r.data.error.message) || ("HTTP " + r.status);
  p.hidden = false;
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
    onDone(r.data);
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("accounts");
  if (table) {
    table.addEventListener("click", async (ev) => {
      const b = ev.target.closest("button[data-action]");
      if (!b) return;
      const row = b.closest("tr");
      const id = row.dataset.account;
      if (b.dataset.confirm && !window.confirm(b.dataset.confirm)) return;
      const action = b.dataset.action;
      const r = action === "delete"
        ? await api("DELETE", "/api/v1/accounts/" + id)
        : await api("POST", "/api/v1/accounts/" + id + "/" + action);
      if (r.ok) window.location.reload();
    });
  }
  if (document.getElementById("accounts") || document.getElementById("accounts-empty")) {
    const proto = window.location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + window.location.host + "/ws");
    ws.onmessage = (m) => {
      const ev = JSON.parse(m.data);
      if (ev.type !== "account_status") return;
      const row = document.querySelector('tr[data-account="' + ev.data.account_id + '"]');
      if (!row) { window.location.reload(); return; }
      const badge = row.querySelector(".badge");
      badge.dataset.status = ev.data.status;
      badge.textContent = ev.data.status.replace("_", " ");
    };
  }

  const phoneBox = document.getElementById("connect-phone");
  if (phoneBox) {
    let flow = null;
    const codeForm = document.getElementById("code-form");
    const info = document.getElementById("code-info");
    const done = () => window.location.reload();
    const after = (data) => {
      if (data.status === "done") { done(); return; }
      if (data.status === "password_needed") { codeForm.hidden = true; askPassword(phoneBox, flow, data.hint, done); }
    };
    document.getElementById("phone-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      phoneBox.querySelector(".error").hidden = true;
      const r = await api("POST", "/api/v1/accounts/login/phone", { phone: ev.target.phone.value });
      if (!r.ok) { showError(phoneBox, r); return; }
      flow = r.data.flow_id;
      info.textContent = r.data.code.delivery;
      codeForm.hidden = false;
    });
    codeForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      phoneBox.querySelector(".error").hidden = true;
      const r = await api("POST", "/api/v1/accounts/login/" + flow + "/code", { code: codeForm.code.value });
      if (!r.ok) { showError(phoneBox, r); return; }
      after(r.data);
    });
    document.getElementById("resend").addEventListener("click", async () => {
      const r = await api("POST", "/api/v1/accounts/login/" + flow + "/resend");
      if (!r.ok) { showError(phoneBox, r); return; }
      info.textContent = r.data.code.delivery;
    });
  }

  const qrBox = document.getElementById("connect-qr");
  if (qrBox) {
    let timer = null;
    document.getElementById("qr-start").addEventListener("click", async () => {
      qrBox.querySelector(".error").hidden = true;
      const r = await api("POST", "/api/v1/accounts/login/qr");
      if (!r.ok) { showError(qrBox, r); return; }
      const flow = r.data.flow_id;
      document.getElementById("qr-image").innerHTML = r.data.svg;
      clearInterval(timer);
      timer = setInterval(async () => {
        const s = await api("GET", "/api/v1/accounts/login/" + flow);
        if (!s.ok) { clearInterval(timer); showError(qrBox, s); return; }
        if (s.data.status === "qr_pending") { document.getElementById("qr-image").innerHTML = s.data.svg; return; }
        clearInterval(timer);
        if (s.data.status === "done") { window.location.reload(); return; }
        if (s.data.status === "password_needed") askPassword(qrBox, flow, s.data.hint, () => window.location.reload());
      }, 2000);
    });
  }

  const importForm = document.getElementById("import-form");
  if (importForm) {
    importForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const box = document.getElementById("import");
      box.querySelector(".error").hidden = true;
      const r = await api("POST", "/api/v1/accounts/import", { session_string: importForm.session.value.trim() });
      if (!r.ok) { showError(box, r); return; }
      window.location.reload();
    });
  }
});
