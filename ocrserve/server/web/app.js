// ocrserve's page to try a served model. Plain JavaScript, no dependencies, no build step.
// Everything the server or a model says is inserted with textContent or as SVG attributes,
// never as HTML. The inference key is kept in sessionStorage only (this tab, until it closes).
"use strict";

(() => {
  const KEY_STORE = "ocrserve.inferenceKey";
  const MODEL_STORE = "ocrserve.model";
  const SVG = "http://www.w3.org/2000/svg";
  const TASKS = { textdet: "detection", textrecog: "recognition", e2e: "end to end" };

  const $ = (selector, root = document) => root.querySelector(selector);
  const state = { keyRefused: false, busy: Promise.resolve() };

  function storedKey() {
    return sessionStorage.getItem(KEY_STORE) || "";
  }

  function authHeaders() {
    const key = storedKey();
    return key ? { Authorization: "Bearer " + key } : {};
  }

  function showMessage(text, kind = "error") {
    const box = $("#message");
    box.textContent = text;
    box.className = kind;
    box.hidden = false;
  }

  function clearMessage() {
    $("#message").hidden = true;
  }

  function showKeyField() {
    $("#key-field").hidden = !(state.keyRefused || storedKey());
  }

  // TorchServe's error JSON {"code", "type", "message"}, or what stands in for it.
  async function errorOf(response) {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      return { code: response.status, type: body.type || "", message: body.message || text };
    } catch (_) {
      return { code: response.status, type: "", message: text.slice(0, 300) };
    }
  }

  function describeError(error) {
    return `${error.code} ${error.type ? error.type + ": " : ""}${error.message}`;
  }

  function refused(error) {
    state.keyRefused = true;
    showKeyField();
    const how = "`ocrserve key` prints it on the server's machine";
    showMessage(
      storedKey()
        ? `The server refused this key (${error.message.trim()}). Enter the current inference key: ${how}.`
        : `This server asks for its inference key: enter it above (${how}).`
    );
  }

  async function loadModels() {
    const select = $("#model");
    let response;
    try {
      response = await fetch("/ocrserve/models", { headers: authHeaders(), cache: "no-store" });
    } catch (err) {
      showMessage(`Cannot reach the server: ${err.message}`);
      return;
    }
    if (!response.ok) {
      const error = await errorOf(response);
      select.replaceChildren(new Option("(no models)", ""));
      select.disabled = true;
      if (response.status === 401) refused(error);
      else showMessage(`Cannot list the models: ${describeError(error)}`);
      return;
    }
    const { models } = await response.json();
    state.keyRefused = false;
    showKeyField();
    clearMessage();
    const wanted = sessionStorage.getItem(MODEL_STORE);
    const options = models.map((m) => {
      const task = TASKS[m.task] || m.task;
      return new Option(`${m.modelName} (${task})`, m.modelName);
    });
    if (!options.length) options.push(new Option("(no models served)", ""));
    select.replaceChildren(...options);
    select.disabled = !models.length;
    const preferred = models.find((m) => m.modelName === wanted) || models.find((m) => m.task === "e2e");
    if (preferred) select.value = preferred.modelName;
  }

  // The instances of an answer: {points: [[x, y], ...] | null, text, score, boxScore}.
  function instancesOf(body) {
    const polygon = (flat) => {
      const values = flat.map(Number);
      const score = values.length % 2 ? values.pop() : null;
      const points = [];
      for (let i = 0; i + 1 < values.length; i += 2) points.push([values[i], values[i + 1]]);
      return { points, score };
    };
    if (body && Array.isArray(body.boundary_result)) {
      return body.boundary_result.map((flat) => {
        const { points, score } = polygon(flat);
        return { points, text: null, score: null, boxScore: score };
      });
    }
    if (body && Array.isArray(body.result)) {
      return body.result
        .filter((r) => r && Array.isArray(r.box))
        .map((r) => ({
          points: polygon(r.box).points,
          text: String(r.text ?? ""),
          score: typeof r.text_score === "number" ? r.text_score : null,
          boxScore: typeof r.box_score === "number" ? r.box_score : null,
        }));
    }
    if (body && typeof body.text === "string") {
      const score = Array.isArray(body.score)
        ? body.score.reduce((a, b) => a + b, 0) / Math.max(1, body.score.length)
        : body.score;
      return [{ points: null, text: body.text, score: typeof score === "number" ? score : null, boxScore: null }];
    }
    return [];
  }

  function newCard(file, model) {
    const card = $("#card").content.firstElementChild.cloneNode(true);
    $(".file", card).textContent = file.name;
    $(".meta", card).textContent = `${model} · sending…`;
    card.dataset.state = "pending";
    $("#results").prepend(card);
    return card;
  }

  function link(card, index, on) {
    for (const el of card.querySelectorAll(`[data-index="${index}"]`)) el.classList.toggle("hl", on);
  }

  function hoverLinks(card, el, index) {
    el.addEventListener("mouseenter", () => link(card, index, true));
    el.addEventListener("mouseleave", () => link(card, index, false));
  }

  function drawPolygons(card, items, width, height) {
    const svg = $(".overlay", card);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const fontSize = Math.max(12, Math.round(Math.max(width, height) / 32));
    items.forEach((item, index) => {
      if (!item.points || !item.points.length) return;
      const group = document.createElementNS(SVG, "g");
      group.dataset.index = String(index);
      const shape = document.createElementNS(SVG, "polygon");
      shape.setAttribute("points", item.points.map(([x, y]) => `${x},${y}`).join(" "));
      const title = document.createElementNS(SVG, "title");
      title.textContent = item.text ?? `box ${index + 1}`;
      shape.append(title);
      const label = document.createElementNS(SVG, "text");
      const [x, y] = item.points[0];
      label.setAttribute("x", String(x));
      label.setAttribute("y", String(Math.max(fontSize, y - 4)));
      label.setAttribute("font-size", String(fontSize));
      label.textContent = String(index + 1);
      group.append(shape, label);
      svg.append(group);
      hoverLinks(card, group, index);
    });
  }

  function listLines(card, items) {
    const list = $(".lines", card);
    items.forEach((item, index) => {
      const li = document.createElement("li");
      li.dataset.index = String(index);
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = item.text ?? `text region ${index + 1}`;
      const score = document.createElement("span");
      score.className = "score";
      const parts = [];
      if (item.score !== null) parts.push(`text ${item.score.toFixed(3)}`);
      if (item.boxScore !== null) parts.push(`box ${item.boxScore.toFixed(3)}`);
      score.textContent = parts.join(" · ");
      li.append(text, score);
      list.append(li);
      hoverLinks(card, li, index);
    });
  }

  async function predict(file, model) {
    const card = newCard(file, model);
    const photo = $(".photo", card);
    photo.src = URL.createObjectURL(file);
    photo.alt = file.name;
    const started = performance.now();
    let response;
    try {
      response = await fetch(`/predictions/${encodeURIComponent(model)}`, {
        method: "POST",
        headers: { ...authHeaders(), "Content-Type": file.type || "application/octet-stream" },
        body: file,
      });
    } catch (err) {
      return fail(card, `Cannot reach the server: ${err.message}`);
    }
    const elapsed = performance.now() - started;
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 401) refused(error);
      return fail(card, describeError(error));
    }
    const raw = await response.text();
    const body = JSON.parse(raw);
    $(".raw pre", card).textContent = JSON.stringify(body, null, 2);
    const items = instancesOf(body);
    let size = null;
    try {
      await photo.decode();
      size = [photo.naturalWidth, photo.naturalHeight];
    } catch (_) {
      photo.hidden = true; // a format the browser cannot show (TIFF): the texts still are
    }
    if (size) drawPolygons(card, items, size[0], size[1]);
    listLines(card, items);
    const count = items.length === 1 ? "1 instance" : `${items.length} instances`;
    $(".meta", card).textContent = `${model} · ${count} · ${Math.round(elapsed)} ms`;
    card.dataset.state = "done";
  }

  function fail(card, text) {
    const error = $(".error", card);
    error.textContent = text;
    error.hidden = false;
    $(".body", card).hidden = true;
    $(".meta", card).textContent = "failed";
    card.dataset.state = "error";
  }

  function submit(files) {
    const model = $("#model").value;
    if (!model) {
      showMessage("Choose a model first (none is listed yet).");
      return;
    }
    for (const file of files) {
      // One request at a time, in the order given: the results appear as they come.
      state.busy = state.busy.then(() => predict(file, model)).catch((err) => showMessage(String(err)));
    }
  }

  function setUp() {
    const keyInput = $("#key");
    keyInput.value = storedKey();
    const saveKey = () => {
      const key = keyInput.value.trim();
      if (key) sessionStorage.setItem(KEY_STORE, key);
      else sessionStorage.removeItem(KEY_STORE);
      loadModels();
    };
    $("#key-save").addEventListener("click", saveKey);
    keyInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        saveKey();
      }
    });
    $("#controls").addEventListener("submit", (event) => event.preventDefault());
    $("#model").addEventListener("change", (event) => sessionStorage.setItem(MODEL_STORE, event.target.value));
    const input = $("#files");
    input.addEventListener("change", () => {
      submit([...input.files]);
      input.value = "";
    });
    const drop = $("#drop");
    drop.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        input.click();
      }
    });
    drop.addEventListener("dragover", (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      submit([...event.dataTransfer.files].filter((f) => f.type.startsWith("image/") || !f.type));
    });
    showKeyField();
    loadModels();
  }

  setUp();
})();
