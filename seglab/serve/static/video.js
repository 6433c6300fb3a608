// seglab serve video view: open a clip, click prompts on any frame, propagate (the server runs the tracker in the
// background; the page polls its progress), scrub through the result, correct, save. Plain JS, no build step.
// The server keeps every state (seglab/serve/video_routes.py); the page only draws it.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 250;

const page = {
  info: null,
  state: null,   // the last state the server sent (tests read window.seglabVideo.state)
  frame: 0,      // the frame on screen
  queue: Promise.resolve(),
};
window.seglabVideo = page;

function showMessage(text, isError = false) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

// Requests run one after another, in the order they were made; errors are shown in the page.
function request(method, url, body) {
  const run = page.queue.then(() => call(method, url, body));
  page.queue = run.catch(() => {});
  return run.catch((error) => { showMessage(error.message, true); throw error; });
}

function videoUrl(action) { return `/api/videos/${page.state.video}/${action}`; }

function frameUrl(frame) { return `/api/videos/${page.state.video}/frames/${frame}.jpg?v=${page.state.version}`; }

function show(state, message) {
  page.state = state;
  $("viewer").hidden = false;
  const slider = $("slider");
  slider.max = String(state.frames - 1);
  page.frame = Math.min(page.frame, state.frames - 1);
  slider.value = String(page.frame);
  const running = state.job.running;
  $("next").disabled = running || !state.objects.includes(state.current_obj);
  $("propagate").disabled = running || state.prompts.length === 0;
  $("propagate").textContent = state.dirty_from !== null && state.tracked.length > 0
    ? `Propagate from frame ${state.dirty_from}` : "Propagate";
  $("save").disabled = running || state.tracked.length === 0;
  $("cancel").hidden = !running;
  const progress = $("progress");
  progress.hidden = !running && state.job.total === 0;
  progress.max = Math.max(1, state.job.total);
  progress.value = state.job.done;
  $("stats").textContent = [`${state.name}: ${state.frames} frames, ${state.width}x${state.height}`,
    `${state.objects.length} object${state.objects.length === 1 ? "" : "s"}, drawing object ${state.current_obj}`,
    `${state.tracked.length} frames tracked`].join(" · ");
  if (message !== undefined) showMessage(message);
  showFrame(page.frame);
}

function showFrame(frame) {
  page.frame = frame;
  $("slider").value = String(frame);
  const url = frameUrl(frame);
  if ($("frame").getAttribute("src") !== url) $("frame").src = url;
  const tracked = page.state.tracked.includes(frame) ? "tracked" : "not tracked yet";
  $("frame-label").textContent = `frame ${frame} / ${page.state.frames - 1} (${tracked})`;
  document.body.dataset.frame = String(frame);  // for scripts waiting on the page
  drawPrompts();
}

function drawPrompts() {
  const canvas = $("marks");
  canvas.width = page.state.width;
  canvas.height = page.state.height;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const scale = canvas.width / Math.max(1, canvas.getBoundingClientRect().width || canvas.width);
  ctx.lineWidth = Math.max(1.5, 2 * scale);
  for (const p of page.state.prompts.filter((q) => q.frame === page.frame)) {
    drawPoint(ctx, p.point, p.label, Math.max(4, 6 * scale));
  }
}

// Screen position -> pixel of the frame as the server has it.
function framePoint(event) {
  return pixelAt($("frame"), event, page.state.width, page.state.height);
}

function setUpPointer() {
  const stage = $("stage");
  stage.addEventListener("contextmenu", (event) => event.preventDefault());
  stage.addEventListener("pointerup", (event) => {
    if (!page.state) return;
    const label = event.button === 2 || event.shiftKey ? 0 : 1;
    const [x, y] = framePoint(event);
    const frame = page.frame;
    request("POST", videoUrl("click"), { frame, x, y, label })
      .then((s) => show(s, `${label ? "positive" : "negative"} point on frame ${frame} at (${Math.round(x)}, ${Math.round(y)})`))
      .catch(() => {});
  });
}

function upload(files) {
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  const what = files.length === 1 ? files[0].name : `${files.length} frames`;
  showMessage(`opening ${what}…`);
  page.frame = 0;
  request("POST", "/api/videos", form)
    .then((s) => show(s, `${what} opened: ${s.frames} frames; click on an object`)).catch(() => {});
}

function poll() {
  request("GET", `/api/videos/${page.state.video}`).then((s) => {
    if (s.job.running) {
      show(s, `propagating: ${s.job.done} / ${s.job.total} frames (frame ${s.job.frame ?? s.job.start})`);
      setTimeout(poll, POLL_MS);
    } else {
      show(s, s.job.error ? s.job.error : `propagated through ${s.job.done} frames: scrub to check them`);
      if (s.job.error) showMessage(s.job.error, true);
    }
  }).catch(() => {});
}

function propagate() {
  if (!page.state || $("propagate").disabled) return;
  request("POST", videoUrl("propagate"), {}).then((s) => { show(s, "propagating…"); poll(); }).catch(() => {});
}

function save() {
  if (!page.state || $("save").disabled) return;
  request("POST", videoUrl("save")).then((s) => {
    const saved = s.saved;
    show(s, `saved ${saved.count} frames to ${saved.frames}/ and ${saved.video}` +
      (saved.untracked ? ` (${saved.untracked} not tracked: saved empty)` : ""));
  }).catch(() => {});
}

function nextObject() {
  if (!page.state || $("next").disabled) return;
  request("POST", videoUrl("next")).then((s) => show(s, `object ${s.current_obj}: click on it`)).catch(() => {});
}

function step(delta) {
  if (!page.state) return;
  showFrame(Math.min(Math.max(page.frame + delta, 0), page.state.frames - 1));
}

function setUpControls() {
  $("file").addEventListener("change", (event) => {
    if (event.target.files.length) upload([...event.target.files]);
    event.target.value = "";
  });
  $("slider").addEventListener("input", (event) => { if (page.state) showFrame(Number(event.target.value)); });
  $("next").addEventListener("click", nextObject);
  $("propagate").addEventListener("click", propagate);
  $("cancel").addEventListener("click", () => request("POST", videoUrl("cancel")).catch(() => {}));
  $("save").addEventListener("click", save);
  document.addEventListener("keydown", (event) => {
    if (event.target.tagName === "INPUT" && event.target.type !== "range") return;
    const key = event.key.toLowerCase();
    if (event.target.type === "range" && (key === "arrowleft" || key === "arrowright")) return;  // the slider's own
    if (key === "arrowleft") step(-1);
    else if (key === "arrowright") step(1);
    else if (key === "n") nextObject();
    else if (key === "p") propagate();
    else if (key === "s") { event.preventDefault(); save(); }
  });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) upload([...event.dataTransfer.files]);
  });
}

async function start() {
  setUpControls();
  setUpPointer();
  page.info = await serverInfo(showMessage);
  if (!page.info) return;
  const info = page.info;
  $("model").textContent = `${info.model} (${info.task}) · saves to ${info.out}/video/ · uploads up to ` +
    `${info.max_upload_mb} MB`;
  if (!info.clicks) showMessage("the video view needs a promptable model (start seglab serve with one)", true);
}

start();
