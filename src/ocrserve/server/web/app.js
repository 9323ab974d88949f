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
  const state = { keyRefused: false, busy: Promise.resolve(), tasks: {} };
  // The `format` option's downloads (docs/outputs.md): the file name's ending, and what it is.
  const DOWNLOADS = {
    text: { suffix: ".txt", name: "text" },
    hocr: { suffix: ".hocr", name: "hOCR" },
    alto: { suffix: ".alto.xml", name: "ALTO" },
    pdf: { suffix: ".searchable.pdf", name: "searchable PDF" },
  };

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
    state.tasks = Object.fromEntries(models.map((m) => [m.modelName, m.task]));
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

  const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;
  const count = (n, one, many = one + "s") => `${n} ${n === 1 ? one : many}`;

  // What an answer holds, for a card's or a page's heading: "6 lines", "5 boxes", or the text.
  function summaryOf(body, items) {
    if (body && Array.isArray(body.boundary_result)) return count(items.length, "box", "boxes");
    if (body && Array.isArray(body.result)) return count(items.length, "line");
    if (body && typeof body.text === "string") {
      const text = body.text.length > 60 ? body.text.slice(0, 59) + "…" : body.text;
      return `“${text}”`;
    }
    return "no result";
  }

  function newCard(file, model) {
    const card = $("#card").content.firstElementChild.cloneNode(true);
    $(".file", card).textContent = file.name;
    $(".meta", card).textContent = `${model} · sending…`;
    card.dataset.state = "pending";
    $("#results").prepend(card);
    return card;
  }

  // Highlights go together within `root`: a card (an image) or a page section (a document).
  function link(root, index, on) {
    for (const el of root.querySelectorAll(`[data-index="${index}"]`)) el.classList.toggle("hl", on);
  }

  function hoverLinks(root, el, index) {
    el.addEventListener("mouseenter", () => link(root, index, true));
    el.addEventListener("mouseleave", () => link(root, index, false));
  }

  // Polygons in `width` x `height` pixels of what the model saw; the viewBox scales them to the
  // image as shown, whatever its own size.
  function drawPolygons(root, items, width, height) {
    const svg = $(".overlay", root);
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
      hoverLinks(root, group, index);
    });
  }

  function listLines(root, items) {
    const list = $(".lines", root);
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
      hoverLinks(root, li, index);
    });
  }

  // A page's "data:image/...;base64," URI as a blob: URL (the page's policy allows blob: images,
  // not data: ones); null for anything else.
  function imageUrlOf(uri) {
    const match = /^data:(image\/[\w.+-]+);base64,([A-Za-z0-9+/=\s]*)$/.exec(String(uri ?? ""));
    if (!match) return null;
    const bytes = Uint8Array.from(atob(match[2].replace(/\s/g, "")), (c) => c.charCodeAt(0));
    return URL.createObjectURL(new Blob([bytes], { type: match[1] }));
  }

  // An answer as shown in "Raw JSON": a page image's data URI stands abbreviated.
  function rawJson(body) {
    return JSON.stringify(
      body,
      (key, value) => {
        if (key !== "image" || typeof value !== "string" || !value.startsWith("data:")) return value;
        const kib = Math.round((value.length * 3) / 4 / 1024);
        return `${value.slice(0, value.indexOf(",") + 1)}… (${kib} KiB)`;
      },
      2
    );
  }

  function send(file, model, query, accept) {
    const headers = { ...authHeaders(), "Content-Type": file.type || "application/octet-stream" };
    if (accept) headers.Accept = accept;
    const url = `/predictions/${encodeURIComponent(model)}${query}`;
    return fetch(url, { method: "POST", headers, body: file });
  }

  // A PDF or a TIFF: sent to be answered page by page, each page shown as it comes.
  function isDocument(file) {
    return /^(application\/pdf|image\/tiff)$/.test(file.type) || /\.(pdf|tiff?)$/i.test(file.name);
  }

  function isPdf(file) {
    return file.type === "application/pdf" || /\.pdf$/i.test(file.name);
  }

  const sizeOf = (bytes) => (bytes < 1024 ? `${bytes} bytes` : `${Math.round(bytes / 1024)} KiB`);

  // "scan.pdf" -> "scan.searchable.pdf", "page.jpg" -> "page.hocr", ...
  function downloadName(file, format) {
    const stem = file.name.replace(/\.[^./\\]*$/, "") || "ocr";
    return stem + DOWNLOADS[format].suffix;
  }

  // The card's download buttons, once an end-to-end model's answer is shown: each sends the
  // file again with the `format` option (the server writes it, so it matches what curl gets)
  // and saves the answer under the file's name. An answer is fetched once per card.
  function offerDownloads(card, file, model) {
    if (state.tasks[model] !== "e2e") return;
    const group = $(".downloads", card);
    const status = $(".download-status", group);
    const fetched = new Map();
    $("[data-format=pdf]", group).hidden = !isPdf(file);
    for (const button of group.querySelectorAll("button[data-format]")) {
      const format = button.dataset.format;
      button.addEventListener("click", async () => {
        const what = DOWNLOADS[format].name;
        button.disabled = true;
        status.className = "download-status";
        status.textContent = `Preparing the ${what}…`;
        try {
          if (!fetched.has(format)) fetched.set(format, await fetchFormat(file, model, format));
          const { blob, failedPages } = fetched.get(format);
          const name = downloadName(file, format);
          save(blob, name);
          const notes = [`Saved ${name} (${sizeOf(blob.size)})`];
          if (failedPages) notes.push(`failed pages ${failedPages} are empty in it`);
          status.textContent = notes.join("; ") + ".";
        } catch (err) {
          status.className = "download-status failed";
          status.textContent = `No ${what}: ${err.message}`;
        } finally {
          button.disabled = false;
        }
      });
    }
    group.hidden = false;
  }

  async function fetchFormat(file, model, format) {
    let response;
    try {
      response = await send(file, model, `?format=${format}`, null);
    } catch (err) {
      throw new Error(`cannot reach the server: ${err.message}`);
    }
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 401) refused(error);
      throw new Error(describeError(error));
    }
    return { blob: await response.blob(), failedPages: response.headers.get("X-Failed-Pages") };
  }

  // Saves `blob` as the browser saves a download, under `name`.
  function save(blob, name) {
    const url = URL.createObjectURL(blob);
    const anchor = document.createElement("a");
    anchor.href = url;
    anchor.download = name;
    anchor.hidden = true;
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  async function predict(file, model) {
    const card = newCard(file, model);
    const asDocument = isDocument(file);
    const photo = $(".photo", card);
    if (asDocument) {
      $(".body", card).remove(); // its pages come as sections
    } else {
      $(".pages", card).remove();
      photo.src = URL.createObjectURL(file);
      photo.alt = file.name;
    }
    const started = performance.now();
    let response;
    try {
      response = asDocument
        ? await send(file, model, "?page_image=true", "application/x-ndjson")
        : await send(file, model, "", null);
    } catch (err) {
      return fail(card, `Cannot reach the server: ${err.message}`);
    }
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 401) refused(error);
      return fail(card, describeError(error));
    }
    if (asDocument) return readDocument(card, file, model, response, started);
    const body = JSON.parse(await response.text());
    const elapsed = performance.now() - started;
    $(".raw pre", card).textContent = rawJson(body);
    const items = instancesOf(body);
    let size = null;
    try {
      await photo.decode();
      size = [photo.naturalWidth, photo.naturalHeight];
    } catch (_) {
      photo.hidden = true; // a format the browser cannot show: the texts still are
    }
    if (size) drawPolygons(card, items, size[0], size[1]);
    listLines(card, items);
    $(".meta", card).textContent = `${model} · ${summaryOf(body, items)} · ${Math.round(elapsed)} ms`;
    offerDownloads(card, file, model);
    card.dataset.state = "done";
  }

  // The lines of an application/x-ndjson body, each as soon as it has arrived whole.
  async function* ndjsonLines(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value, { stream: !done });
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end).trim();
        buffer = buffer.slice(end + 1);
        if (line) yield line;
      }
      if (done) break;
    }
    if (buffer.trim()) yield buffer.trim();
  }

  // The pages of a document answer: streamed (one JSON object a line), else {"pages": [...]}
  // from a server that answered all at once, else one plain answer (a one-page TIFF).
  async function* pagesOf(response) {
    if ((response.headers.get("Content-Type") || "").includes("ndjson")) {
      for await (const line of ndjsonLines(response)) yield JSON.parse(line);
      return;
    }
    const body = JSON.parse(await response.text());
    yield* Array.isArray(body.pages) ? body.pages : [body];
  }

  async function readDocument(card, file, model, response, started) {
    const announced = Number.parseInt(response.headers.get("X-Page-Count") || "", 10);
    const total = Number.isFinite(announced) && announced > 0 ? announced : null;
    const progress = $(".progress", card);
    const bar = $("progress", progress);
    const showProgress = (read) => {
      if (total === null) return;
      bar.max = total;
      bar.value = read;
      $("span", progress).textContent = `${read} of ${count(total, "page")} read`;
      progress.hidden = false;
    };
    showProgress(0);
    const expected = total === null ? "pages" : count(total, "page");
    $(".meta", card).textContent = `${model} · reading ${expected}…`;
    const pages = [];
    try {
      for await (const page of pagesOf(response)) {
        pages.push(page);
        showPage(card, page, pages.length, total);
        showProgress(pages.length);
        $(".raw pre", card).textContent = rawJson({ pages });
      }
    } catch (err) {
      const shown = count(pages.length, "page");
      return fail(card, `The answer broke off after ${shown}: ${err.message}`, { keepPages: true });
    }
    progress.hidden = true;
    const failed = pages.filter((p) => p && p.error).length;
    const parts = [model, count(pages.length, "page")];
    if (failed) parts.push(`${failed} failed`);
    parts.push(seconds(performance.now() - started));
    $(".meta", card).textContent = parts.join(" · ");
    offerDownloads(card, file, model);
    card.dataset.state = "done";
  }

  // One page of a document, appended to its card: the page image with the polygons, the lines,
  // or the page's error in their place.
  function showPage(card, page, position, total) {
    const section = $("#page").content.firstElementChild.cloneNode(true);
    const number = Number.isInteger(page.page) ? page.page : position;
    const head = [total === null ? `page ${number}` : `page ${number} of ${total}`];
    if (typeof page.time_ms === "number") head.push(seconds(page.time_ms));
    section.dataset.page = String(number);
    // When the page was shown, and when the server finished it (ms, one clock for both when
    // they run on one machine): the browser test checks that pages appear as they come.
    section.dataset.shownAt = String(Date.now());
    if (typeof page.done_at === "number") section.dataset.doneAt = String(page.done_at * 1000);
    $(".pages", card).append(section);
    if (page.error) {
      head.push("failed");
      $(".page-head", section).textContent = head.join(" · ");
      const error = $(".error", section);
      error.textContent = describeError({ code: "", type: "", message: "", ...page.error });
      error.hidden = false;
      $(".body", section).remove();
      section.dataset.state = "error";
      return;
    }
    const items = instancesOf(page);
    head.push(summaryOf(page, items));
    $(".page-head", section).textContent = head.join(" · ");
    const url = imageUrlOf(page.image);
    const photo = $(".photo", section);
    if (url) {
      photo.src = url;
      photo.alt = `page ${number}`;
      photo.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
    } else {
      $(".stage", section).hidden = true;
    }
    if (url && page.width > 0 && page.height > 0) {
      drawPolygons(section, items, page.width, page.height);
    }
    listLines(section, items);
    section.dataset.state = "done";
  }

  // `keepPages`: a document whose answer broke off keeps the pages it has shown.
  function fail(card, text, { keepPages = false } = {}) {
    const error = $(".error", card);
    error.textContent = text;
    error.hidden = false;
    for (const el of card.querySelectorAll(keepPages ? ".body" : ".body, .pages")) el.hidden = true;
    $(".progress", card).hidden = true;
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
      const readable = (f) => f.type.startsWith("image/") || !f.type || isDocument(f);
      submit([...event.dataTransfer.files].filter(readable));
    });
    showKeyField();
    loadModels();
  }

  setUp();
})();
