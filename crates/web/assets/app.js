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
