// seglab serve: what both pages (app.js, video.js) share: the JSON-over-fetch call (an HTTP error becomes an
// Error whose message is the server's `detail` and the status), drawing a click, and screen -> image pixel.
// Plain JS, loaded before the page's script.
"use strict";

async function call(method, url, body) {
  const options = { method };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers = { "Content-Type": "application/json" };
  }
  const response = await fetch(url, options);
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const detail = data && data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail))
                                       : response.statusText;
    throw new Error(`${detail} (HTTP ${response.status})`);
  }
  return data;
}

// A click prompt as a dot: green positive, red negative, white rim.
function drawPoint(ctx, point, label, radius) {
  ctx.beginPath();
  ctx.arc(point[0], point[1], radius, 0, 2 * Math.PI);
  ctx.fillStyle = label === 1 ? "#12b76a" : "#f04438";
  ctx.fill();
  ctx.strokeStyle = "#fff";
  ctx.stroke();
}

// Screen position of `event` over `element` -> pixel of the width x height image the server has.
function pixelAt(element, event, width, height) {
  const rect = element.getBoundingClientRect();
  const x = (event.clientX - rect.left) * (width / rect.width);
  const y = (event.clientY - rect.top) * (height / rect.height);
  return [Math.min(Math.max(x, 0), width - 0.5), Math.min(Math.max(y, 0), height - 0.5)];
}

// GET /api/info (the model, task, limits, output folder); null after showing the error with `show`.
async function serverInfo(show) {
  try {
    return await call("GET", "/api/info");
  } catch (error) {
    show(error.message, true);
    return null;
  }
}
