// seglab serve page: open an image, click / drag prompts, show the mask the server returns, save.
// Plain JS, no build step. The server keeps every state (seglab/serve/app.py); the page only draws it.
"use strict";

const $ = (id) => document.getElementById(id);
const DRAG_PIXELS = 5;  // a press that moves less than this (screen pixels) is a click, else a box

const page = {
  info: null,
  state: null,   // the last state the server sent (tests read window.seglab.state)
  queue: Promise.resolve(),  // requests run one after another, in the order they were made
  pending: 0,
};
window.seglab = page;

function showMessage(text, isError = false) {
  const box = $("message");
  box.textContent = text;
  box.className = isError ? "error" : "";
}

// Every request goes through here: one at a time, errors shown in the page.
function request(method, url, body) {
  page.pending += 1;
  $("stage").classList.add("busy");
  const run = page.queue.then(() => call(method, url, body));
  page.queue = run.catch(() => {}).finally(() => {
    page.pending -= 1;
    if (!page.pending) $("stage").classList.remove("busy");
  });
  return run.catch((error) => { showMessage(error.message, true); throw error; });
}

function sessionUrl(action) { return `/api/sessions/${page.state.session}/${action}`; }

function show(state, message) {
  const fresh = !page.state || page.state.session !== state.session;
  page.state = state;
  if (fresh) {
    $("image").src = `/api/sessions/${state.session}/image`;
    $("stage").hidden = false;
  }
  $("overlay").src = state.prediction ? state.prediction.overlay : state.overlay;
  const marks = $("marks");
  marks.width = state.width;
  marks.height = state.height;
  drawPrompts();
  const drawing = state.prompts.length > 0;
  $("undo").disabled = !state.clicks || (!drawing && state.objects === 0);
  $("clear").disabled = !state.clicks || !drawing;
  $("next").disabled = !state.clicks || state.area === 0;
  $("save").disabled = !state.clicks || (state.area === 0 && state.objects === 0);
  const parts = [`${state.name}: ${state.width}x${state.height}`];
  if (state.clicks) {
    parts.push(`${state.objects} finished object${state.objects === 1 ? "" : "s"}`);
    if (state.score !== null) parts.push(`score ${state.score.toFixed(2)}, ${state.area} px`);
  }
  parts.push(`${state.ms} ms`);
  $("stats").textContent = parts.join(" · ");
  drawLegend(state.prediction ? state.prediction.legend : []);
  if (message !== undefined) showMessage(message);
  document.body.dataset.area = String(state.area);  // for scripts waiting on the page
}

function drawLegend(entries) {
  const list = $("legend");
  list.replaceChildren(...entries.map((entry) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${entry.color.join(",")})`;
    item.append(swatch, `${entry.name} ${(100 * entry.share).toFixed(1)}%`);
    return item;
  }));
}

function drawPrompts(dragBox) {
  const canvas = $("marks");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!page.state) return;
  const scale = canvas.width / Math.max(1, $("marks").getBoundingClientRect().width || canvas.width);
  const radius = Math.max(4, 6 * scale);
  ctx.lineWidth = Math.max(1.5, 2 * scale);
  const boxes = page.state.prompts.filter((p) => p.box).map((p) => p.box);
  if (dragBox) boxes.push(dragBox);
  for (const [x0, y0, x1, y1] of boxes) {
    ctx.strokeStyle = "#1e90ff";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  }
  for (const p of page.state.prompts.filter((q) => q.point)) drawPoint(ctx, p.point, p.label, radius);
}

// Screen position -> pixel of the image as the server has it.
function imagePoint(event) {
  return pixelAt($("image"), event, page.state.width, page.state.height);
}

function setUpPointer() {
  const stage = $("stage");
  let press = null;
  stage.addEventListener("contextmenu", (event) => event.preventDefault());
  stage.addEventListener("pointerdown", (event) => {
    if (!page.state || !page.state.clicks) return;
    press = { screen: [event.clientX, event.clientY], image: imagePoint(event), button: event.button,
              shift: event.shiftKey, dragging: false };
    stage.setPointerCapture(event.pointerId);
  });
  stage.addEventListener("pointermove", (event) => {
    if (!press) return;
    const moved = Math.hypot(event.clientX - press.screen[0], event.clientY - press.screen[1]);
    if (moved >= DRAG_PIXELS && press.button === 0) press.dragging = true;
    if (press.dragging) drawPrompts([...press.image, ...imagePoint(event)]);
  });
  stage.addEventListener("pointerup", (event) => {
    if (!press) return;
    const done = press;
    press = null;
    if (done.dragging) {
      const [x1, y1] = imagePoint(event);
      const [x0, y0] = done.image;
      const box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
      request("POST", sessionUrl("box"), { box }).then((s) => show(s, "box added")).catch(() => drawPrompts());
      return;
    }
    const label = done.button === 2 || done.shift ? 0 : 1;
    const [x, y] = done.image;
    request("POST", sessionUrl("click"), { x, y, label })
      .then((s) => show(s, `${label ? "positive" : "negative"} point at (${Math.round(x)}, ${Math.round(y)})`))
      .catch(() => {});
  });
}

function openWith(promise, name) {
  showMessage(`opening ${name}…`);
  page.state = null;
  promise.then((s) => show(s, `${name} opened` + (s.clicks ? ": click on an object" : ""))).catch(() => {});
}

function upload(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  openWith(request("POST", "/api/sessions", form), file.name);
}

function act(action, message) {
  if (!page.state) return;
  request("POST", sessionUrl(action)).then((s) => show(s, message)).catch(() => {});
}

function save() {
  if (!page.state) return;
  request("POST", sessionUrl("save")).then((s) => {
    show(s, `saved ${s.saved.objects} object${s.saved.objects === 1 ? "" : "s"}: ${s.saved.mask} and ${s.saved.coco}`);
  }).catch(() => {});
}

function setUpControls() {
  $("file").addEventListener("change", (event) => {
    if (event.target.files.length) upload(event.target.files[0]);
    event.target.value = "";
  });
  $("source").addEventListener("change", (event) => {
    const name = event.target.value;
    if (name) openWith(request("POST", "/api/sessions/source", { name }), name);
  });
  $("undo").addEventListener("click", () => act("undo", "undone"));
  $("clear").addEventListener("click", () => act("clear", "object cleared"));
  $("next").addEventListener("click", () => act("next", "next object: click on it"));
  $("save").addEventListener("click", save);
  document.addEventListener("keydown", (event) => {
    if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
    const key = event.key.toLowerCase();
    if (key === "z") act("undo", "undone");
    else if (key === "escape") act("clear", "object cleared");
    else if (key === "n" || key === "enter") act("next", "next object: click on it");
    else if (key === "s") { event.preventDefault(); save(); }
  });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
  });
}

async function start() {
  setUpControls();
  setUpPointer();
  page.info = await serverInfo(showMessage);
  if (!page.info) return;
  const info = page.info;
  $("model").textContent = `${info.model} (${info.task}) · saves to ${info.out}/ · uploads up to ${info.max_upload_mb} MB`;
  if (!info.clicks) $("hint").textContent = "Open an image to see the model's prediction.";
  if (info.source.length) {
    const select = $("source");
    for (const name of info.source) select.append(new Option(name, name));
    select.hidden = false;
  }
}

start();
