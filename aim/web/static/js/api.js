// Talking to the JSON API. Errors arrive as {"error": {type, message, detail}} and are
// thrown as ApiError so pages can show the message (and a query's position).

export class ApiError extends Error {
  constructor(status, type, message, detail) {
    super(message);
    this.status = status;
    this.type = type;
    this.detail = detail || {};
  }
}

async function raiseFor(response) {
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  const err = body && body.error;
  if (err) throw new ApiError(response.status, err.type, err.message, err.detail);
  throw new ApiError(response.status, 'HTTPError',
    `The server answered ${response.status} ${response.statusText}.`, {});
}

export function queryString(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    search.set(key, Array.isArray(value) ? value.join(',') : String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export async function getJSON(path, params = {}, options = {}) {
  const response = await fetch(path + queryString(params), options);
  if (!response.ok) await raiseFor(response);
  return response.json();
}

// The server's write token, from the page's meta tag: every edit carries it (a page of
// another site cannot read it, so it cannot make edits).
function writeToken() {
  const meta = document.querySelector('meta[name="aim-write-token"]');
  return meta ? meta.content : '';
}

export async function sendJSON(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { 'Content-Type': 'application/json', 'X-Aim-Token': writeToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) await raiseFor(response);
  return response.json();
}

// Binary series frame: 'AIMS' | u32 header length | JSON header | pad to 8 |
// per series x, y (and step unless x is the step) as float64[n], or float32 with x as
// offsets from head.x0. Views share the one ArrayBuffer: no copying.
export function decodeSeriesFrame(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== 'AIMS') throw new ApiError(0, 'BadFrame', 'The series answer is not an AIMS frame.');
  const headLength = new DataView(buffer).getUint32(4, true);
  const head = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headLength)));
  let offset = 8 + headLength;
  offset += (8 - (offset % 8)) % 8;
  const Typed = head.dtype === 'f4' ? Float32Array : Float64Array;
  const size = Typed.BYTES_PER_ELEMENT;
  const x0 = head.x0 || 0;
  for (const s of head.series) {
    const n = s.n;
    const x = new Typed(buffer, offset, n); offset += n * size;
    if (Typed === Float64Array && !x0) s.x = x;
    else { s.x = new Float64Array(n); for (let i = 0; i < n; i++) s.x[i] = x[i] + x0; }
    s.y = new Typed(buffer, offset, n); offset += n * size;
    if (head.has_step) { s.step = new Typed(buffer, offset, n); offset += n * size; } else s.step = s.x;
  }
  return head;
}

export async function getSeries(params, options = {}) {
  const response = await fetch('/api/series' + queryString({ ...params, format: 'binary' }), options);
  if (!response.ok) await raiseFor(response);
  return decodeSeriesFrame(await response.arrayBuffer());
}
