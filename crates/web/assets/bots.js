// Switchboard's Bots page: add a bot by token, start/stop/delete, live status from `bot_status`.
"use strict";

(function () {
  function cookie(name) {
    const m = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith(name + "="));
    return m ? decodeURIComponent(m.slice(name.length + 1)) : "";
  }

  async function call(method, path, body) {
    const headers = { "Accept": "application/json", "X-CSRF-Token": cookie("sb_csrf") };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    return { ok: res.ok, data };
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.getElementById("bots-page");
    if (!page) return;
    const form = document.getElementById("bot-add-form");
    if (form) {
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const err = form.querySelector(".error");
        err.hidden = true;
        const button = form.querySelector("button");
        button.disabled = true;
        const r = await call("POST", "/api/v1/bots", { token: form.token.value.trim() });
        button.disabled = false;
        form.token.value = "";
        if (r.ok) { window.location.reload(); return; }
        err.textContent = (r.data && r.data.error && r.data.error.message) || "Error";
        err.hidden = false;
      });
    }
    page.addEventListener("click", async (ev) => {
      const b = ev.target.closest("button[data-bot-action]");
      if (!b) return;
      const row = b.closest("tr[data-bot]");
      const action = b.dataset.botAction;
      if (b.dataset.confirm && !window.confirm(b.dataset.confirm)) return;
      const id = row.dataset.bot;
      const r = action === "delete"
        ? await call("DELETE", "/api/v1/bots/" + id)
        : await call("POST", "/api/v1/bots/" + id + "/" + action);
      if (r.ok) window.location.reload();
    });
    const proto = window.location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + window.location.host + "/ws");
    ws.onmessage = (m) => {
      const ev = JSON.parse(m.data);
      if (ev.type !== "bot_status") return;
      const row = page.querySelector('tr[data-bot="' + ev.data.bot_id + '"]');
      if (!row) { if (ev.data.status !== "deleted") window.location.reload(); return; }
      if (ev.data.status === "deleted") { row.remove(); return; }
      const badge = row.querySelector(".badge");
      badge.dataset.status = ev.data.status;
      badge.textContent = ev.data.status;
      const detail = row.querySelector(".detail");
      if (detail) detail.textContent = ev.data.detail || "";
    };
  });
})();
