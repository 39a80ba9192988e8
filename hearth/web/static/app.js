// Hearth's page: status, models, a chat playground and the last requests. Plain JS, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const STATUS_EVERY_MS = 1000;
const CATALOG_EVERY_MS = 3000;

const state = {
  lastTokens: null, // [tokens_streamed_total, time] of the previous /status poll
  modelManagement: false, // the server serves LM Studio's /api/v1/models, /load, /unload
  catalog: [], // [{key, type, state, progress, instanceId}]
  pendingLoads: new Set(), // catalog keys whose load request is in flight
  history: [], // the conversation, as chat messages
  controller: null, // AbortController of the answer being streamed
};

// ---------------------------------------------------------------------------------------------
// HTTP

function headers(extra = {}) {
  const key = localStorage.getItem("hearth.apiKey");
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function getJSON(path) {
  const r = await fetch(path, { headers: headers(), cache: "no-store" });
  if (!r.ok) throw new HttpError(r.status, await errorMessage(r));
  return r.json();
}

async function postJSON(path, body, signal) {
  return fetch(path, {
    method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body), signal,
  });
}

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function errorMessage(r) {
  try {
    const body = await r.json();
    return body.error?.message || `HTTP ${r.status}`;
  } catch { return `HTTP ${r.status}`; }
}

// ---------------------------------------------------------------------------------------------
// formatting

function duration(seconds) {
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.floor(seconds % 60)} s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} days`;
}

function ms(value) {
  if (value == null) return "–";
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(2)} s`;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// ---------------------------------------------------------------------------------------------
// status, live figures, last requests

function showServerState(kind, text) {
  $("status-dot").className = `dot ${kind}`;
  $("status-text").textContent = text;
}

async function pollStatus() {
  try {
    const s = await getJSON("/status");
    const model = s.models[0];
    const runsOn = model && model.offload ? ` · ${model.offload}` : "";
    if (s.state === "ready") showServerState("ready", `Ready · ${s.models.map((m) => m.id).join(", ") || "no model"}${runsOn}`);
    else if (s.state === "loading") showServerState("loading", `Loading ${model ? model.id : "model"}…`);
    else showServerState("down", s.state === "failed" ? "Model failed to load" : "No model loaded");
    $("version").textContent = s.version;
    $("uptime").textContent = duration(s.uptime_seconds);
    $("fig-inflight").textContent = s.in_flight;
    $("fig-queue").textContent = s.queue_depth;
    $("fig-running").textContent = s.running;
    const now = performance.now();
    if (state.lastTokens) {
      const [tokens, then] = state.lastTokens;
      const rate = Math.max(0, s.tokens_streamed_total - tokens) / ((now - then) / 1000);
      $("fig-tps").textContent = rate >= 10 ? Math.round(rate) : rate.toFixed(1);
    }
    state.lastTokens = [s.tokens_streamed_total, now];
    renderRecent(s.recent);
    if (s.model_management !== state.modelManagement) {
      state.modelManagement = s.model_management;
      refreshCatalog();
    }
    if (!s.model_management) setCatalogFromStatus(s);
  } catch (e) {
    showServerState("down", e instanceof HttpError ? `Error: ${e.message}` : "Server unreachable");
    if (e.status === 401) $("settings-card").open = true; // the server wants an API key: ask for it
    state.lastTokens = null;
  } finally {
    setTimeout(pollStatus, document.hidden ? 5 * STATUS_EVERY_MS : STATUS_EVERY_MS);
  }
}

function renderRecent(recent) {
  const body = $("recent");
  body.replaceChildren();
  for (const r of recent.slice(0, 12)) {
    const row = body.insertRow();
    row.title = `request id ${r.id}`;
    cell(row, new Date(r.time * 1000).toLocaleTimeString());
    cell(row, `${r.method} ${r.route}`, "route");
    cell(row, r.model || "–");
    cell(row, r.status, `s${String(r.status)[0]}`);
    cell(row, r.prompt_tokens || r.completion_tokens ? `${r.prompt_tokens} + ${r.completion_tokens}` : "–", "num");
    cell(row, ms(r.ttft_ms), "num");
    cell(row, ms(r.duration_ms), "num");
  }
  $("recent-empty").hidden = recent.length > 0;
}

// ---------------------------------------------------------------------------------------------
// models: LM Studio's routes when the server has them, else the one model /status reports

function setCatalogFromStatus(s) {
  const entries = s.models.map((m) => ({ key: m.id, type: "llm", state: m.state === "ready" ? "loaded" : m.state,
                                         instanceId: m.id }));
  renderCatalog(entries);
  $("models-note").hidden = false;
  $("models-note").textContent = "Loading and unloading models at runtime needs the model registry, which this server does not have yet: it serves the model it was started with.";
}

async function refreshCatalog() {
  if (!state.modelManagement) return;
  try {
    const body = await getJSON("/api/v1/models");
    const entries = (body.models || []).map((m) => {
      const instance = (m.loaded_instances || [])[0];
      let s = instance ? "loaded" : "not loaded";
      if (m.state) s = m.state; // a registry may report loading and its progress
      if (state.pendingLoads.has(m.key) && !instance) s = "loading";
      return { key: m.key, type: m.type || "llm", state: s, progress: m.load_progress ?? m.progress,
               instanceId: instance?.id, name: m.display_name };
    });
    $("models-note").hidden = true;
    renderCatalog(entries);
  } catch (e) {
    $("models-note").hidden = false;
    $("models-note").textContent = `Could not list the models: ${e.message}`;
  }
}

function renderCatalog(entries) {
  state.catalog = entries;
  const body = $("models");
  body.replaceChildren();
  for (const m of entries) {
    const row = body.insertRow();
    row.dataset.key = m.key;
    cell(row, m.name && m.name !== m.key ? `${m.name} (${m.key})` : m.key);
    cell(row, m.type);
    const stateCell = cell(row, "");
    const span = document.createElement("span");
    span.className = "state";
    span.textContent = m.state;
    if (m.state === "loading") {
      const bar = document.createElement("progress");
      if (typeof m.progress === "number") bar.value = m.progress;
      bar.max = 1;
      bar.setAttribute("aria-label", `loading ${m.key}`);
      span.append(bar);
    }
    stateCell.append(span);
    const action = row.insertCell();
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small";
    const loaded = m.state === "loaded";
    button.textContent = loaded ? "Unload" : "Load";
    button.setAttribute("aria-label", `${button.textContent} ${m.key}`);
    if (!state.modelManagement) {
      button.disabled = true;
      button.title = "Needs the model registry (LM Studio's /api/v1/models routes)";
    } else if (m.state === "loading") {
      button.disabled = true;
    }
    button.addEventListener("click", () => (loaded ? unload(m) : load(m)));
    action.append(button);
  }
  updateModelPicker();
}

async function load(m) {
  state.pendingLoads.add(m.key);
  renderCatalog(state.catalog.map((e) => (e.key === m.key ? { ...e, state: "loading" } : e)));
  const poll = setInterval(refreshCatalog, 500);
  try {
    const r = await postJSON("/api/v1/models/load", { model: m.key });
    if (!r.ok) alertModels(`Loading ${m.key} failed: ${await errorMessage(r)}`);
  } finally {
    clearInterval(poll);
    state.pendingLoads.delete(m.key);
    await refreshCatalog();
  }
}

async function unload(m) {
  const r = await postJSON("/api/v1/models/unload", { instance_id: m.instanceId || m.key });
  if (!r.ok) alertModels(`Unloading ${m.key} failed: ${await errorMessage(r)}`);
  await refreshCatalog();
}

function alertModels(text) {
  $("models-note").hidden = false;
  $("models-note").textContent = text;
}

async function updateModelPicker() {
  const select = $("model");
  const chosen = select.value;
  let ids = state.catalog.filter((m) => m.type !== "embedding" && m.state === "loaded").map((m) => m.instanceId || m.key);
  if (state.modelManagement) { // not-loaded models load just in time when asked for
    ids = ids.concat(state.catalog.filter((m) => m.type !== "embedding" && m.state !== "loaded").map((m) => m.key));
  }
  const current = [...select.options].map((o) => o.value);
  if (current.join("\n") === ids.join("\n")) return;
  select.replaceChildren(...ids.map((id) => new Option(id, id)));
  if (ids.includes(chosen)) select.value = chosen;
}

// ---------------------------------------------------------------------------------------------
// chat

function addMessage(role, text) {
  const li = document.createElement("li");
  li.className = `msg ${role}`;
  const p = document.createElement("p");
  p.className = "text";
  p.textContent = text;
  li.append(p);
  $("messages").append(li);
  li.scrollIntoView({ block: "nearest" });
  return li;
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}

async function send(event) {
  event?.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || state.controller) return;
  $("prompt").value = "";
  addMessage("user", text);
  state.history.push({ role: "user", content: text });
  const messages = [];
  const system = $("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push(...state.history);
  const body = {
    model: $("model").value || "local", messages, stream: true, stream_options: { include_usage: true },
    temperature: Number($("temperature").value), max_tokens: Number($("max-tokens").value) || undefined,
  };
  const li = addMessage("assistant", "");
  li.classList.add("streaming");
  const out = li.querySelector(".text").appendChild(document.createTextNode(""));
  const meta = document.createElement("div");
  meta.className = "meta";
  li.append(meta);
  const controller = (state.controller = new AbortController());
  setBusy(true);
  const sent = performance.now();
  let first = null, last = null, deltas = 0, usage = null, finish = null, answer = "";
  try {
    const r = await postJSON("/v1/chat/completions", body, controller.signal);
    if (!r.ok) throw new HttpError(r.status, await errorMessage(r));
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
          const chunk = JSON.parse(line.slice(6));
          if (chunk.error) throw new Error(chunk.error.message);
          if (chunk.usage) usage = chunk.usage;
          const choice = chunk.choices?.[0];
          if (choice?.finish_reason) finish = choice.finish_reason;
          const piece = choice?.delta?.content;
          if (piece) {
            last = performance.now();
            if (first === null) first = last;
            deltas += 1;
            answer += piece;
            out.appendData(piece); // token by token, as it arrives
          }
        }
      }
      showStats(meta, sent, first, last, usage?.completion_tokens ?? deltas, finish);
    }
    state.history.push({ role: "assistant", content: answer });
  } catch (e) {
    if (e.name === "AbortError") {
      finish = "stopped";
      if (answer) state.history.push({ role: "assistant", content: answer });
    } else {
      li.classList.add("error");
      out.appendData(answer ? `\n[${e.message}]` : e.message);
      state.history.pop(); // the question had no answer: leave it out of the next turn
    }
  } finally {
    li.classList.remove("streaming");
    showStats(meta, sent, first, last, usage?.completion_tokens ?? deltas, finish);
    state.controller = null;
    setBusy(false);
    $("prompt").focus();
  }
}

function showStats(meta, sent, first, last, tokens, finish) {
  const parts = [];
  if (first !== null) parts.push(`TTFT ${ms(first - sent)}`);
  if (first !== null && last > first && tokens > 1) parts.push(`${((tokens - 1) / ((last - first) / 1000)).toFixed(1)} tok/s`);
  parts.push(`${tokens} token${tokens === 1 ? "" : "s"}`);
  if (finish) parts.push(finish === "length" ? "stopped at max tokens" : finish);
  meta.textContent = parts.join(" · ");
}

function stop() {
  state.controller?.abort(); // the server sees the disconnect and frees the sequence
}

// ---------------------------------------------------------------------------------------------

function init() {
  $("api-url").textContent = `${location.origin}/v1`;
  $("copy-url").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(`${location.origin}/v1`);
      $("copy-url").textContent = "Copied";
    } catch {
      $("copy-url").textContent = "Select it";
    }
    setTimeout(() => ($("copy-url").textContent = "Copy"), 1500);
  });
  $("chat-form").addEventListener("submit", send);
  $("stop").addEventListener("click", stop);
  $("clear").addEventListener("click", () => {
    stop();
    state.history = [];
    $("messages").replaceChildren();
    $("prompt").focus();
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) send(e);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.controller) stop();
  });
  const key = $("api-key");
  key.value = localStorage.getItem("hearth.apiKey") || "";
  key.addEventListener("change", () => {
    if (key.value) localStorage.setItem("hearth.apiKey", key.value);
    else localStorage.removeItem("hearth.apiKey");
  });
  pollStatus();
  setInterval(() => { if (!document.hidden) refreshCatalog(); }, CATALOG_EVERY_MS);
}

init();
