// Runs the dashboard page's inline script under Node for tests/integration/server/test_dashboard.py.
//
//   node dashboard_harness.js shape PAGE_FILE < input.json
//       evaluates the script without a document (nothing starts) and prints what its pure
//       functions make of the input: {pipelines, runs, toFetch, durations, ages, urls, badges}.
//   node dashboard_harness.js browse BASE_URL TOKEN
//       fetches BASE_URL/dashboard, runs its script against a small fake DOM, fake timers and
//       Node's real fetch() to the real server, drives it (401, token form, refresh, failure,
//       hidden tab, revoked token) and prints one JSON report of what the page showed and sent.
"use strict";

const fs = require("fs");
const vm = require("vm");

const EXPORTS = "\n;globalThis.__dash = { state, shapePipelines, shapeRuns, runsToFetch, "
  + "formatDuration, formatAge, safeUrl, badgeClass };\n";

function inlineScript(page) {
  const match = /<script>([\s\S]*?)<\/script>/.exec(page);
  if (match === null) throw new Error("the page has no inline <script>");
  return match[1];
}

function shape(pageFile) {
  const script = inlineScript(fs.readFileSync(pageFile, "utf8"));
  const context = vm.createContext({});
  vm.runInContext(script + EXPORTS, context);
  const dash = context.__dash;
  const input = JSON.parse(fs.readFileSync(0, "utf8"));
  const records = new Map(input.records.map((record) => [record.run_id, record]));
  const report = {
    pipelines: dash.shapePipelines(input.entries, input.now_ms),
    runs: dash.shapeRuns(input.page, records, input.now_ms),
    toFetch: dash.runsToFetch(input.page, records),
    durations: input.durations.map(dash.formatDuration),
    ages: input.ages.map((iso) => dash.formatAge(iso, input.now_ms)),
    urls: input.urls.map(dash.safeUrl),
    badges: input.statuses.map(dash.badgeClass),
  };
  process.stdout.write(JSON.stringify(report));
}

// ---- a fake DOM: just what the page's script uses; innerHTML is a trap ----

class FakeElement {
  constructor(tag, id) {
    this.tagName = tag.toUpperCase();
    this.id = id || "";
    this.className = "";
    this.hidden = false;
    this.title = "";
    this.value = "";
    this.children = [];
    this.ownText = "";
    this.listeners = {};
  }
  set textContent(value) {
    this.children = [];
    this.ownText = String(value);
  }
  get textContent() {
    return this.ownText + this.children.map((child) => child.textContent).join("");
  }
  set innerHTML(_value) {
    throw new Error("the page wrote innerHTML");
  }
  append(...nodes) {
    for (const node of nodes) {
      if (!(node instanceof FakeElement)) throw new Error("append() got a non-element");
      this.children.push(node);
    }
  }
  replaceChildren(...nodes) {
    this.children = [];
    this.ownText = "";
    this.append(...nodes);
  }
  addEventListener(type, listener) {
    (this.listeners[type] = this.listeners[type] || []).push(listener);
  }
  dispatch(type, event) {
    for (const listener of this.listeners[type] || []) listener(event);
  }
  focus() {}
  describe() {
    return {
      tag: this.tagName.toLowerCase(), className: this.className, text: this.ownText,
      title: this.title, href: this.href === undefined ? null : this.href,
      children: this.children.map((child) => child.describe()),
    };
  }
}

function fakeDocument(page) {
  const elements = new Map();
  for (const match of page.matchAll(/<(\w+)[^>]*\sid="([^"]+)"/g)) {
    elements.set(match[2], new FakeElement(match[1], match[2]));
  }
  elements.get("auth").hidden = true;  // as the page's markup says
  const document = new FakeElement("#document");
  document.hidden = false;
  document.createElement = (tag) => new FakeElement(tag);
  document.getElementById = (id) => {
    const found = elements.get(id);
    if (found === undefined) throw new Error("the page has no element with id " + id);
    return found;
  };
  document.write = () => {
    throw new Error("the page called document.write");
  };
  return { document, elements };
}

function fakeStorage() {
  const items = new Map();
  return {
    items,
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
  };
}

async function browse(baseUrl, token) {
  const pageResponse = await fetch(baseUrl + "/dashboard");
  const page = await pageResponse.text();
  const pageUrl = baseUrl + "/dashboard";
  const { document, elements } = fakeDocument(page);
  const storage = fakeStorage();
  const timers = new Map();
  let nextTimer = 1;
  const sent = [];
  let failing = false;

  // The page runs in its own context (its globals are these fakes); Node's own fetch keeps
  // the real timers it needs.
  const context = vm.createContext({
    document,
    window: { sessionStorage: storage },
    AbortController,
    setTimeout: (callback, ms) => {
      const id = nextTimer++;
      timers.set(id, { callback, ms });
      return id;
    },
    clearTimeout: (id) => timers.delete(id),
    fetch: (path, init) => {
      const url = new URL(path, pageUrl).href;
      sent.push({ url, authorization: init.headers.Authorization || null });
      if (failing) return Promise.reject(new TypeError("fetch failed"));
      return fetch(url, init);
    },
  });

  const dash = () => context.__dash;
  async function settle(condition) {
    const deadline = Date.now() + 8000;
    while (!(dash() && !dash().state.busy && condition())) {
      if (Date.now() > deadline) throw new Error("the page did not settle");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  const refreshTimers = () => [...timers.values()].filter((timer) => timer.ms === 5000);
  function tick() {
    const [id, timer] = [...timers.entries()].find(([, t]) => t.ms === 5000);
    timers.delete(id);
    timer.callback();
  }
  const text = (id) => elements.get(id).textContent;
  const report = {};

  vm.runInContext(inlineScript(page) + EXPORTS, context);
  await settle(() => dash().state.waitingForToken);
  report.first = {
    sent: sent.splice(0), authHidden: elements.get("auth").hidden, reason: text("auth-reason"),
    refresh: text("refresh"), refreshTimers: refreshTimers().length,
  };

  elements.get("token").value = "  " + token + " ";
  let prevented = false;
  elements.get("auth").dispatch("submit", { preventDefault: () => { prevented = true; } });
  await settle(() => dash().state.lastOk !== null);
  report.afterToken = {
    prevented, sent: sent.splice(0), authHidden: elements.get("auth").hidden,
    stored: storage.getItem("conveyor.apiToken"), inputValue: elements.get("token").value,
    refresh: text("refresh"), refreshClass: elements.get("refresh").className,
    pipelines: elements.get("pipelines").describe(), runs: elements.get("runs").describe(),
    refreshTimers: refreshTimers().length,
  };

  failing = true;
  const lastOk = dash().state.lastOk;
  tick();
  await settle(() => elements.get("refresh").className === "failed");
  report.failed = {
    refresh: text("refresh"), refreshClass: elements.get("refresh").className,
    runs: elements.get("runs").describe(), keptLastOk: dash().state.lastOk === lastOk,
    refreshTimers: refreshTimers().length,
  };
  failing = false;
  sent.splice(0);

  document.hidden = true;
  document.dispatch("visibilitychange", {});
  report.hidden = { refreshTimers: refreshTimers().length, sent: sent.length };
  document.hidden = false;
  document.dispatch("visibilitychange", {});
  await settle(() => elements.get("refresh").className === "");
  report.visibleAgain = {
    sent: sent.splice(0), refresh: text("refresh"), refreshTimers: refreshTimers().length,
  };

  storage.setItem("conveyor.apiToken", "revoked-token-0123456789abcdef");
  tick();
  await settle(() => dash().state.waitingForToken);
  report.revoked = {
    authHidden: elements.get("auth").hidden, stored: storage.getItem("conveyor.apiToken"),
    refreshTimers: refreshTimers().length,
  };
  process.stdout.write(JSON.stringify(report));
}

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === "shape") shape(args[0]);
  else if (mode === "browse") await browse(args[0], args[1]);
  else throw new Error("usage: dashboard_harness.js shape PAGE_FILE | browse BASE_URL TOKEN");
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
    process.exit(1);
  },
);
