// seglab serve: the one JSON-over-fetch call both pages (app.js, video.js) make; an HTTP error becomes an
// Error whose message is the server's `detail` and the status. Plain JS, loaded before the page's script.
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
