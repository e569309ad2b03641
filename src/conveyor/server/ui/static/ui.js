// conveyor web UI: the API token, the buttons, and the job log viewer.
// Served by conveyor (server/ui/pages.py) under a CSP without inline script or eval.
// Every value from the server is written with textContent, never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "conveyor.token";
  const root = document.body.dataset.root || "";
  const api = (path) => root + "/api/v1/" + path;

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function authHeaders(extra) {
    const headers = Object.assign({}, extra || {});
    const value = token();
    if (value) headers.Authorization = "Bearer " + value;
    return headers;
  }

  function notice(text) {
    const el = document.getElementById("notice");
    if (el) el.textContent = text;
  }

  function askForToken() {
    sessionStorage.removeItem(TOKEN_KEY);
    const form = document.getElementById("token-form");
    form.hidden = false;
    document.getElementById("token-input").focus();
  }

  function refreshLive() {
    document.querySelectorAll(".live").forEach((el) => window.htmx && htmx.trigger(el, "refresh"));
  }

  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("token-input");
    sessionStorage.setItem(TOKEN_KEY, input.value);
    input.value = "";
    event.target.hidden = true;
    notice("");
    refreshLive();
    if (window.conveyorLog) window.conveyorLog.start();
  });

  // htmx: the token on every fragment request; a 401 asks for it.
  document.body.addEventListener("htmx:configRequest", (event) => {
    Object.assign(event.detail.headers, authHeaders());
  });
  document.body.addEventListener("htmx:responseError", (event) => {
    const status = event.detail.xhr.status;
    if (status === 401) askForToken();
    else notice("Refresh failed (" + status + ") at " + new Date().toLocaleTimeString() + "; showing older data.");
  });
  document.body.addEventListener("htmx:sendError", () => {
    notice("The server did not answer at " + new Date().toLocaleTimeString() + "; showing older data.");
  });
  document.body.addEventListener("htmx:afterSwap", () => notice(""));

  // Buttons: play / retry a job, cancel / retry a run, through the JSON API.
  async function act(button) {
    const run = encodeURIComponent(button.dataset.run);
    const job = button.dataset.job ? encodeURIComponent(button.dataset.job) : null;
    const paths = {
      "play-job": "runs/" + run + "/jobs/" + job + "/play",
      "retry-job": "runs/" + run + "/jobs/" + job + "/retry",
      "cancel-run": "runs/" + run + "/cancel",
      "retry-run": "runs/" + run + "/retry",
    };
    button.disabled = true;
    try {
      const answer = await fetch(api(paths[button.dataset.action]), {
        method: "POST",
        headers: authHeaders(),
      });
      if (answer.status === 401) return askForToken();
      if (!answer.ok) {
        const body = await answer.json().catch(() => ({}));
        notice((body.error && body.error.message) || "The server refused (" + answer.status + ").");
        return;
      }
      const body = await answer.json().catch(() => ({}));
      if (button.dataset.action === "retry-run" && body.run_id && body.run_id !== button.dataset.run) {
        location.assign(root + "/ui/runs/" + encodeURIComponent(body.run_id));
        return;
      }
      notice(button.textContent.trim() + ": requested.");
      refreshLive();
    } finally {
      button.disabled = false;
    }
  }
  document.body.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) act(button);
  });

  // ---- the log viewer ------------------------------------------------------------------
  // Rows are step headers and lines; only the rows in view (plus a margin) are in the DOM,
  // so a 100,000-line log scrolls as fast as a short one.
  function LogView(el) {
    this.el = el;
    this.runId = el.dataset.run;
    this.job = el.dataset.job;
    this.view = document.getElementById("log-view");
    this.spacer = document.getElementById("log-spacer");
    this.state = document.getElementById("log-state");
    this.records = [];
    this.collapsed = new Set();
    this.rows = [];
    this.matches = [];
    this.matchAt = -1;
    this.rowHeight = 20;
    this.following = true;
    this.target = null;
    this.pending = false;
    this.view.addEventListener("scroll", () => {
      const bottom = this.view.scrollHeight - this.view.clientHeight - this.view.scrollTop;
      this.following = bottom < this.rowHeight * 2;
      this.schedule();
    });
    window.addEventListener("resize", () => this.schedule());
    window.addEventListener("hashchange", () => this.jumpToHash());
    document.getElementById("log-ts").addEventListener("change", (e) => {
      this.view.classList.toggle("show-ts", e.target.checked);
    });
    const search = document.getElementById("log-search");
    search.addEventListener("input", () => this.search(search.value));
    search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); this.nextMatch(); }
    });
    document.getElementById("log-next").addEventListener("click", () => this.nextMatch());
    document.getElementById("log-download").addEventListener("click", () => this.download());
    this.view.addEventListener("click", (e) => {
      const head = e.target.closest("button.step");
      if (head) this.toggle(head.dataset.step);
    });
    this.start();
  }

  LogView.prototype.path = function () {
    return api("runs/" + encodeURIComponent(this.runId) + "/jobs/" + encodeURIComponent(this.job) + "/log");
  };

  LogView.prototype.start = async function () {
    if (this.started) return;
    this.started = true;
    try {
      const answer = await fetch(this.path(), { headers: authHeaders() });
      if (answer.status === 401) { this.started = false; return askForToken(); }
      if (!answer.ok) {
        const body = await answer.json().catch(() => ({}));
        this.state.textContent = (body.error && body.error.message) || "Cannot read the log (" + answer.status + ").";
        return;
      }
      // The follow goes on from the byte the answer ended at: the server reads no line twice.
      this.offset = answer.headers.get("X-Log-Offset") || "0";
      const text = await answer.text();
      for (const line of text.split("\n")) if (line) this.records.push(JSON.parse(line));
      this.rebuild();
      this.jumpToHash() || this.toBottom();
      await this.follow();
    } catch (error) {
      this.state.textContent = "Log interrupted: " + error.message;
      this.started = false;
    }
  };

  // Server-Sent Events over fetch (EventSource cannot send the Bearer header).
  LogView.prototype.follow = async function () {
    const last = this.records.length ? this.records[this.records.length - 1].n : 0;
    this.state.textContent = "Following…";
    const answer = await fetch(this.path() + "?follow=1&offset=" + encodeURIComponent(this.offset || "0"), {
      headers: authHeaders({ "Last-Event-ID": String(last), Accept: "text/event-stream" }),
    });
    if (!answer.ok) { this.state.textContent = "Cannot follow the log (" + answer.status + ")."; return; }
    const reader = answer.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      const added = [];
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (!data) continue;
        const parsed = JSON.parse(data);
        if (event === "end") {
          this.ended(parsed.status);
        } else if (event === "error") {
          this.state.textContent = "Log unreadable: " + parsed.message;
        } else {
          added.push(parsed);
        }
      }
      if (added.length) {
        this.records.push(...added);
        this.rebuild();
        if (this.following) this.toBottom();
      }
    }
  };

  LogView.prototype.ended = function (status) {
    this.state.textContent = "Job ended: " + (status || "unknown") + " · " + this.records.length + " lines";
    this.el.dataset.ended = status || "unknown";
  };

  LogView.prototype.rebuild = function () {
    const rows = [];
    let step = null;
    for (let i = 0; i < this.records.length; i++) {
      const rec = this.records[i];
      if (rec.step !== step) {
        step = rec.step;
        rows.push({ step: step });
      }
      if (!this.collapsed.has(step)) rows.push({ rec: rec });
    }
    this.rows = rows;
    this.spacer.style.height = rows.length * this.rowHeight + "px";
    if (this.query) this.search(this.query, true);
    this.schedule();
  };

  LogView.prototype.schedule = function () {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  };

  LogView.prototype.render = function () {
    const top = this.view.scrollTop;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - 20);
    const last = Math.min(this.rows.length, Math.ceil((top + this.view.clientHeight) / this.rowHeight) + 20);
    // Rows are rebuilt on every scroll: keep keyboard focus on the same step or line.
    const active = document.activeElement;
    const focusKey = active && this.spacer.contains(active)
      ? (active.dataset.step !== undefined ? "s" + active.dataset.step : "l" + active.textContent)
      : null;
    const fragment = document.createDocumentFragment();
    for (let i = first; i < last; i++) fragment.appendChild(this.rowElement(this.rows[i], i));
    this.spacer.replaceChildren(fragment);
    if (focusKey !== null) {
      const again = Array.from(this.spacer.querySelectorAll("button.step, a.ln")).find((el) =>
        (el.dataset.step !== undefined ? "s" + el.dataset.step : "l" + el.textContent) === focusKey);
      (again || this.view).focus({ preventScroll: true });
    }
  };

  LogView.prototype.rowElement = function (row, index) {
    const el = document.createElement("div");
    el.className = "row";
    el.style.top = index * this.rowHeight + "px";
    if (row.step !== undefined) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "step";
      button.dataset.step = row.step;
      const open = !this.collapsed.has(row.step);
      button.setAttribute("aria-expanded", String(open));
      button.textContent = (open ? "▾ " : "▸ ") + (row.step || "(no step)");
      el.appendChild(button);
      return el;
    }
    const rec = row.rec;
    el.id = "L" + rec.n;
    if (this.target === rec.n) el.classList.add("target");
    if (this.matches.length && this.matches[this.matchAt] === index) el.classList.add("match");
    if (rec.stream === "stderr") el.classList.add("stderr");
    const link = document.createElement("a");
    link.className = "ln";
    link.href = "#L" + rec.n;
    link.textContent = rec.n;
    const ts = document.createElement("span");
    ts.className = "ts";
    ts.textContent = rec.ts;
    const text = document.createElement("span");
    text.className = "text";
    text.appendChild(ansiFragment(rec.text));
    el.append(link, ts, text);
    return el;
  };

  LogView.prototype.toBottom = function () {
    this.view.scrollTop = this.view.scrollHeight;
    this.schedule();
  };

  LogView.prototype.scrollToRow = function (index) {
    this.view.scrollTop = Math.max(0, index * this.rowHeight - this.view.clientHeight / 3);
    this.following = false;
    this.schedule();
  };

  LogView.prototype.jumpToHash = function () {
    const found = /^#L(\d+)$/.exec(location.hash);
    if (!found) return false;
    const n = Number(found[1]);
    const rec = this.records.find((r) => r.n === n);
    if (!rec) return false;
    this.collapsed.delete(rec.step);
    this.target = n;
    this.rebuild();
    this.scrollToRow(this.rows.findIndex((r) => r.rec && r.rec.n === n));
    return true;
  };

  LogView.prototype.toggle = function (step) {
    if (this.collapsed.has(step)) this.collapsed.delete(step);
    else this.collapsed.add(step);
    this.rebuild();
    const index = this.rows.findIndex((r) => r.step === step && r.rec === undefined);
    this.render();
    const button = this.spacer.querySelector('button.step[data-step="' + CSS.escape(step) + '"]');
    if (button) button.focus({ preventScroll: true });
    if (index >= 0 && (index * this.rowHeight < this.view.scrollTop)) this.scrollToRow(index);
  };

  LogView.prototype.search = function (query, keep) {
    this.query = query;
    const needle = query.toLowerCase();
    this.matches = [];
    if (needle) {
      this.rows.forEach((row, i) => {
        if (row.rec && stripAnsi(row.rec.text).toLowerCase().includes(needle)) this.matches.push(i);
      });
    }
    if (!keep) this.matchAt = -1;
    document.getElementById("log-matches").textContent = needle ? this.matches.length + " matches" : "";
    if (!keep && this.matches.length) this.nextMatch();
    else this.schedule();
  };

  LogView.prototype.nextMatch = function () {
    if (!this.matches.length) return;
    this.matchAt = (this.matchAt + 1) % this.matches.length;
    document.getElementById("log-matches").textContent =
      "match " + (this.matchAt + 1) + " of " + this.matches.length;
    this.scrollToRow(this.matches[this.matchAt]);
  };

  LogView.prototype.download = function () {
    const text = this.records.map((r) => stripAnsi(r.text)).join("\n") + "\n";
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = this.job.replace(/[^A-Za-z0-9._-]+/g, "_") + ".log";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  // ---- ANSI SGR colours as classes; every other escape is dropped --------------------
  const ESCAPE = /\x1b\[([0-9;]*)([A-Za-z])/g;

  function stripAnsi(text) {
    return text.replace(ESCAPE, "");
  }

  function ansiFragment(text) {
    const fragment = document.createDocumentFragment();
    let classes = [];
    let at = 0;
    const emit = (part) => {
      if (!part) return;
      if (!classes.length) { fragment.appendChild(document.createTextNode(part)); return; }
      const span = document.createElement("span");
      span.className = classes.join(" ");
      span.textContent = part;
      fragment.appendChild(span);
    };
    for (const m of text.matchAll(ESCAPE)) {
      emit(text.slice(at, m.index));
      at = m.index + m[0].length;
      if (m[2] !== "m") continue;
      for (const code of (m[1] || "0").split(";").map(Number)) {
        if (code === 0) classes = [];
        else if (code === 1) classes.push("ansi-bold");
        else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) {
          classes = classes.filter((c) => !c.startsWith("ansi-fg"));
          classes.push("ansi-fg" + code);
        } else if ((code >= 40 && code <= 47) || (code >= 100 && code <= 107)) {
          classes = classes.filter((c) => !c.startsWith("ansi-bg"));
          classes.push("ansi-bg" + code);
        }
      }
    }
    emit(text.slice(at));
    return fragment;
  }

  const logEl = document.getElementById("log");
  if (logEl) window.conveyorLog = new LogView(logEl);
})();
