// The vlmkit page: one image (or clip), and what to do with it: chat, classify, find objects, read its text,
// search. Drawing over the image and the clip's timeline is overlay.js's.
// Plain browser JavaScript talking to the same server's JSON API; no build step, no dependencies.
"use strict";

const MAX_SIDE = 1024; // larger images are scaled down before upload: the model sees far fewer pixels anyway

const $ = (id) => document.getElementById(id);
const state = { image: null, video: null, messages: [], models: {}, abort: null };

function apiKey() {
  return $("api-key").value.trim();
}

function headers() {
  const result = { "Content-Type": "application/json" };
  if (apiKey()) result.Authorization = `Bearer ${apiKey()}`;
  return result;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error ? body.error.message : `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

async function postJson(path, body, signal) {
  const response = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body), signal });
  if (!response.ok) throw new Error(await errorText(response));
  return response;
}

// ------------------------------------------------------------------------------------ setup

async function connect() {
  try {
    const health = await (await fetch("/healthz")).json();
    const response = await fetch("/v1/models", { headers: headers() });
    if (response.status === 401) {
      $("status").textContent = "This server needs an API key: enter it under “API key”.";
      $("key-box").open = true;
      return;
    }
    if (!response.ok) throw new Error(await errorText(response));
    const models = {}; // filled before it replaces state.models: a request sent meanwhile sees the old ids
    for (const model of (await response.json()).data) {
      for (const capability of model.capabilities || []) models[capability] ??= model.id;
    }
    state.models = models;
    const offered = ["chat", "video", "embeddings", "search", "read", "detect", "segment", "images"].filter(
      (name) => health[name],
    );
    $("status").textContent = `Connected: ${offered.join(", ") || "nothing"} available.`;
    $("chat-section").hidden = !state.models.chat;
    $("classify-section").hidden = !state.models.classify;
    $("search-section").hidden = !health.search;
    $("read-section").hidden = !health.read;
    $("ground-section").hidden = !health.detect;
    $("segment").hidden = !health.segment;
    $("imagine-section").hidden = !health.images;
  } catch (error) {
    $("status").textContent = `Cannot reach the server: ${error.message}`;
  }
}

$("api-key").addEventListener("change", () => {
  sessionStorage.setItem("vlmkit-api-key", apiKey());
  connect();
});

// ------------------------------------------------------------------------------------ image

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function shrink(dataUrl) {
  const image = new Image();
  image.src = dataUrl;
  await image.decode();
  const scale = MAX_SIDE / Math.max(image.naturalWidth, image.naturalHeight);
  if (scale >= 1) return dataUrl;
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(image.naturalWidth * scale);
  canvas.height = Math.round(image.naturalHeight * scale);
  canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.92);
}

async function useFile(file) {
  if (file && file.type.startsWith("video/")) return useVideo(file);
  if (!file || !file.type.startsWith("image/")) {
    $("status").textContent = "That is neither an image nor a video file.";
    return;
  }
  try {
    state.image = await shrink(await readAsDataUrl(file));
  } catch {
    $("status").textContent = "The browser could not read that image.";
    return;
  }
  clearVideo();
  $("preview").src = state.image;
  $("preview").alt = `Chosen image: ${file.name}`;
  $("preview").hidden = false;
  $("drop-text").textContent = `${file.name} — drop another file to replace it`;
  $("clear-image").hidden = false;
  resetChat(); // a conversation is about one image
  clearReading();
}

// A clip goes to the chat whole (the server samples its frames); the player shows it, and the timeline under
// it the moment an answer names.
async function useVideo(file) {
  try {
    state.video = await readAsDataUrl(file);
  } catch {
    $("status").textContent = "The browser could not read that video.";
    return;
  }
  state.image = null;
  $("preview").hidden = true;
  $("preview").removeAttribute("src");
  if ($("player").src) URL.revokeObjectURL($("player").src);
  $("player").src = URL.createObjectURL(file);
  $("clip").hidden = false;
  $("drop-text").textContent = `${file.name} — drop another file to replace it`;
  $("clear-image").hidden = false;
  resetChat(); // a conversation is about one clip
  clearReading();
}

function clearVideo() {
  state.video = null;
  if ($("player").src) URL.revokeObjectURL($("player").src);
  $("player").removeAttribute("src");
  $("clip").hidden = true;
  clearMoment($("moment"), $("moment-text"));
}

function clearReading() {
  $("regions").hidden = true;
  $("read-text").textContent = "";
  $("read-status").textContent = "";
  $("objects").hidden = true;
  $("object-list").replaceChildren();
  $("ground-status").textContent = "";
}

$("image-input").addEventListener("change", (event) => useFile(event.target.files[0]));
const zone = $("drop-zone");
zone.addEventListener("click", () => $("image-input").click());
zone.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    $("image-input").click();
  }
});
zone.addEventListener("dragover", (event) => {
  event.preventDefault();
  zone.classList.add("dragging");
});
zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("dragging");
  useFile(event.dataTransfer.files[0]);
});
$("clear-image").addEventListener("click", () => {
  state.image = null;
  $("preview").hidden = true;
  $("preview").removeAttribute("src");
  $("drop-text").textContent = "Drop an image or a short video here, or press Enter to choose a file";
  $("clear-image").hidden = true;
  $("image-input").value = "";
  clearVideo();
  resetChat();
  clearReading();
});

// ------------------------------------------------------------------------------------ chat

function addTurn(role, text) {
  const item = document.createElement("li");
  item.className = role;
  const label = document.createElement("span");
  label.className = "role";
  label.textContent = role === "user" ? "You" : "Model";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  item.append(label, body);
  $("transcript").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function resetChat() {
  if (state.abort) state.abort.abort();
  state.messages = [];
  $("transcript").replaceChildren();
}

function userMessage(text) {
  const first = state.messages.length === 0;
  if (first && state.video) {
    return { role: "user", content: [{ type: "video_url", video_url: { url: state.video } }, { type: "text", text }] };
  }
  if (first && state.image) {
    return { role: "user", content: [{ type: "image_url", image_url: { url: state.image } }, { type: "text", text }] };
  }
  return { role: "user", content: text };
}

// What a reply carries besides its text (on the stream's last delta): objects to draw over the image, a moment
// to mark on the clip's timeline.
async function showExtras(delta) {
  if (delta.objects && state.image) await showObjects(delta.objects, "the answer");
  if (delta.moment && state.video) markMoment($("timeline"), $("moment"), $("moment-text"), $("player"), delta.moment);
}

// Server-sent events: "data: {json}" lines separated by blank lines; "data: [DONE]" ends the stream.
async function* sseData(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

async function sendChat(event) {
  event.preventDefault();
  const text = $("question").value.trim();
  if (!text || state.abort) return;
  $("question").value = "";
  state.messages.push(userMessage(text));
  addTurn("user", text);
  const reply = addTurn("assistant", "");
  const output = reply.querySelector(".text");
  reply.classList.add("streaming");
  reply.setAttribute("aria-busy", "true");
  state.abort = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  try {
    const body = { model: state.models.chat, messages: state.messages, stream: true };
    const response = await postJson("/v1/chat/completions", body, state.abort.signal);
    for await (const chunk of sseData(response)) {
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices[0]?.delta || {};
      if (delta.content) output.textContent += delta.content;
      await showExtras(delta);
    }
    state.messages.push({ role: "assistant", content: output.textContent });
  } catch (error) {
    if (error.name !== "AbortError") {
      output.textContent += ` [error: ${error.message}]`;
      reply.classList.add("error");
    }
    state.messages.pop(); // the failed question is not part of the conversation
  } finally {
    reply.classList.remove("streaming");
    reply.removeAttribute("aria-busy");
    reply.dataset.done = "true";
    state.abort = null;
    $("send").disabled = false;
    $("stop").disabled = true;
  }
}

$("chat-form").addEventListener("submit", sendChat);
$("question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("chat-form").requestSubmit();
  }
});
$("stop").addEventListener("click", () => state.abort && state.abort.abort());
$("reset").addEventListener("click", resetChat);

// ------------------------------------------------------------------------------------ classify

function showBars(predictions) {
  const items = predictions.map(({ label, probability }) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = label;
    const track = document.createElement("span");
    track.className = "track";
    track.setAttribute("aria-hidden", "true");
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.display = "block";
    fill.style.width = `${(probability * 100).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = `${(probability * 100).toFixed(1)}%`;
    item.append(name, track, value);
    return item;
  });
  $("bars").replaceChildren(...items);
}

$("classify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const labels = $("labels").value.split(",").map((s) => s.trim()).filter(Boolean);
  if (!state.image) return showMessage($("bars"), "Choose an image first.");
  if (labels.length === 0) return showMessage($("bars"), "Type at least one label.");
  try {
    const response = await postJson("/v1/classify", { model: state.models.classify, image: state.image, labels });
    showBars((await response.json()).data);
  } catch (error) {
    showMessage($("bars"), error.message);
  }
});

function showMessage(list, text) {
  const item = document.createElement("li");
  item.className = "error";
  item.textContent = text;
  list.replaceChildren(item);
}

// ------------------------------------------------------------------------------------ find objects

async function showObjects(objects, source) {
  await drawObjects($("objects"), state.image, objects);
  const items = objects.map((object) => {
    const item = document.createElement("li");
    const [r, g, b] = labelColour(object.label);
    item.style.borderLeftColor = `rgb(${r}, ${g}, ${b})`;
    const box = object.box.map((v) => Math.round(v)).join(", ");
    item.textContent = `${object.label} · box ${box}${object.mask ? " · mask" : ""}`;
    return item;
  });
  $("object-list").replaceChildren(...items);
  $("ground-status").textContent = `${objects.length} object${objects.length === 1 ? "" : "s"} found by ${source}.`;
}

async function ground(route) {
  const text = $("find").value.trim();
  if (!state.image) {
    $("ground-status").textContent = "Choose an image first.";
    return;
  }
  if (!text) {
    $("ground-status").textContent = "Type what to find.";
    return;
  }
  $("ground-status").textContent = "Looking…";
  const asked = $("as-expression").checked ? { expression: text } : { labels: text };
  try {
    const found = await (await postJson(route, { image: state.image, ...asked })).json();
    await showObjects(found.objects, route === "/v1/segment" ? "segmenting" : "detecting");
  } catch (error) {
    $("ground-status").textContent = `Finding failed: ${error.message}`;
  }
}

$("ground-form").addEventListener("submit", (event) => {
  event.preventDefault();
  ground("/v1/detect");
});
$("segment").addEventListener("click", () => ground("/v1/segment"));

// ------------------------------------------------------------------------------------ read

// The image with each text line tinted by confidence (green sure, red doubtful) and each word outlined.
async function drawRegions(page) {
  const image = new Image();
  image.src = state.image;
  await image.decode();
  const canvas = $("regions");
  canvas.width = page.width;
  canvas.height = page.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0, page.width, page.height);
  const colour = (confidence) => `${Math.round(255 * (1 - confidence))}, ${Math.round(180 * confidence)}, 40`;
  for (const line of page.lines) {
    const [x0, y0, x1, y1] = line.box;
    context.fillStyle = `rgba(${colour(line.confidence)}, 0.25)`;
    context.fillRect(x0, y0, x1 - x0, y1 - y0);
    for (const word of line.words) {
      const [a, b, c, d] = word.box;
      context.strokeStyle = `rgb(${colour(word.confidence)})`;
      context.lineWidth = Math.max(1, Math.round(Math.max(page.width, page.height) / 800));
      context.strokeRect(a, b, c - a, d - b);
    }
  }
  canvas.hidden = false;
}

$("read").addEventListener("click", async () => {
  if (!state.image) {
    $("read-status").textContent = "Choose an image first.";
    return;
  }
  $("read-status").textContent = "Reading…";
  try {
    const page = await (await postJson("/v1/read", { image: state.image })).json();
    await drawRegions(page);
    $("read-text").textContent = page.text;
    const words = page.lines.reduce((total, line) => total + line.words.length, 0);
    const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;
    $("read-status").textContent = `${count(page.lines.length, "line")}, ${count(words, "word")} (${page.engine}).`;
  } catch (error) {
    $("read-status").textContent = `Reading failed: ${error.message}`;
  }
});

// ------------------------------------------------------------------------------------ search

function showResults(hits) {
  const items = hits.map((hit) => {
    const item = document.createElement("li");
    const figure = document.createElement("figure");
    const image = document.createElement("img");
    image.alt = hit.path;
    if (hit.thumbnail) image.src = hit.thumbnail;
    const caption = document.createElement("figcaption");
    const where = hit.page ? ` · page ${hit.page}` : "";
    caption.textContent = `${hit.path}${where} · ${hit.score.toFixed(3)}`;
    if (hit.line) {
      const line = document.createElement("q");
      line.textContent = hit.line;
      caption.append(document.createElement("br"), line);
    }
    figure.append(image, caption);
    item.append(figure);
    return item;
  });
  $("results").replaceChildren(...items);
  $("search-status").textContent = `${hits.length} result${hits.length === 1 ? "" : "s"}.`;
}

async function search(query) {
  $("search-status").textContent = "Searching…";
  try {
    const response = await postJson("/v1/search", { ...query, k: 12 });
    showResults((await response.json()).data);
  } catch (error) {
    $("results").replaceChildren();
    $("search-status").textContent = `Search failed: ${error.message}`;
  }
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("query").value.trim();
  if (text) search({ text });
  else $("search-status").textContent = "Type something to search for.";
});
$("search-image").addEventListener("click", () => {
  if (state.image) search({ image: state.image });
  else $("search-status").textContent = "Choose an image first.";
});

// ------------------------------------------------------------------------------------ imagine

$("imagine-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const prompt = $("imagine-prompt").value.trim();
  if (!prompt) {
    $("imagine-status").textContent = "Describe the image to draw.";
    return;
  }
  const body = { prompt, n: Number($("imagine-n").value), seed: Number($("imagine-seed").value) };
  $("imagine-status").textContent = "Drawing…";
  try {
    const started = performance.now();
    const reply = await (await postJson("/v1/images/generations", body)).json();
    const items = reply.data.map((image, index) => {
      const item = document.createElement("li");
      const picture = document.createElement("img");
      picture.src = `data:image/png;base64,${image.b64_json}`;
      picture.alt = `${prompt} (seed ${body.seed + index})`;
      item.append(picture);
      return item;
    });
    $("drawn").replaceChildren(...items);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    $("imagine-status").textContent = `${items.length} image${items.length === 1 ? "" : "s"} in ${seconds} s.`;
  } catch (error) {
    $("drawn").replaceChildren();
    $("imagine-status").textContent = `Drawing failed: ${error.message}`;
  }
});

$("api-key").value = sessionStorage.getItem("vlmkit-api-key") || "";
connect();
