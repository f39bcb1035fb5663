// Shared by the callguard pages: the JSON API, the events socket, and one side's
// WebRTC connection to a call (docs/API.md).
import { t } from "/static/i18n.js";

export const $ = (id) => document.getElementById(id);

// ?measure=1 turns off the browser's voice processing and records what is heard
// (static/measure.js); the browser test uses it.
export const measuring = new URLSearchParams(location.search).has("measure");

// Debug view for people and tests: window.callguard.
export const debug = (window.callguard = window.callguard || { log: [] });

export function note(message) {
  debug.log.push(`${new Date().toISOString()} ${message}`);
  if (debug.log.length > 200) debug.log.shift();
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, { method = "GET", body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "network", t("error.network"));
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    // an empty or non-JSON body: the status says enough
  }
  if (!response.ok) {
    throw new ApiError(response.status, data.error || `http_${response.status}`,
      data.message || response.statusText || "request failed");
  }
  return data;
}

/** "wrong user name or password" -> "Wrong user name or password." */
export function sentence(text) {
  const t = String(text || "").trim();
  if (!t) return "";
  return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".");
}

/** Sets the text only when it changes, so a live region announces news, not every refresh. */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export function setStatus(el, text, tone = "") {
  setText(el, text);
  el.dataset.tone = tone;
}

/**
 * The signed-in staff member, named in the page header with a working Sign out button
 * (`beforeSignOut` first: a call to hang up, a view to close). Null when there is none:
 * `signedOut()` is called for a missing or expired session, any other failure is shown.
 */
export async function signedIn(status, { signedOut, beforeSignOut = async () => {} }) {
  let me;
  try {
    me = await api("/api/me");
  } catch (err) {
    if ([401, 403].includes(err.status)) signedOut();
    else setStatus(status, sentence(err.message), "bad");
    return null;
  }
  if (me.must_change_password) { // a server-set password: the sign-in page asks for a new one
    signedOut();
    return null;
  }
  debug.user = me;
  const roles = ["counselor", "supervisor", "qa"];
  const role = roles.includes(me.role) ? t(`common.role.${me.role}`) : me.role;
  $("who").textContent = t("common.signed_in", { name: me.name, role });
  $("signout").hidden = false;
  $("signout").addEventListener("click", async () => {
    await beforeSignOut();
    await api("/api/logout", { method: "POST", body: {} }).catch(() => {});
    location.replace("/login");
  });
  return me;
}

export function formatSeconds(value, digits = 1) {
  return typeof value === "number" ? `${value.toFixed(digits)} s` : "–";
}

/** The call's server-sent events, reconnecting until the call ends or close() is called. */
// The events socket's close code when the server ended its session (relay/web/calls_api.py).
const SESSION_ENDED = 4001;

export function openEvents(callId, { token, onEvent, onLost }) {
  let socket = null;
  let stopped = false;
  let retry = 0;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  const url = `${scheme}//${location.host}/api/calls/${encodeURIComponent(callId)}/events${query}`;

  function connect() {
    socket = new WebSocket(url);
    socket.onopen = () => { retry = 0; };
    socket.onmessage = (msg) => {
      let event;
      try { event = JSON.parse(msg.data); } catch { return; }
      if (event.type === "ended") stopped = true;
      onEvent(event);
    };
    socket.onclose = async (closed) => {
      if (stopped) return;
      if (closed.code === SESSION_ENDED) { // revoked, or the account disabled: sign in again
        stopped = true;
        location.replace(`/login?next=${encodeURIComponent(location.pathname)}`);
        return;
      }
      retry += 1;
      // Ask why it closed: a call that has ended or gone needs no reconnection.
      if (onLost && (await onLost())) { stopped = true; return; }
      if (!stopped) setTimeout(connect, Math.min(10000, 500 * 2 ** retry));
    };
  }
  connect();
  return {
    close() {
      stopped = true;
      if (socket) socket.close();
    },
  };
}

/** Resolves once every ICE candidate is in the local description (no trickle). */
export function iceGatheringComplete(pc, timeoutMs = 5000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      clearTimeout(timer);
      resolve();
    };
    // Some networks never report "complete"; go on with the candidates found so far.
    const timer = setTimeout(() => { pc.removeEventListener("icegatheringstatechange", done); resolve(); }, timeoutMs);
    pc.addEventListener("icegatheringstatechange", done);
  });
}

export async function openMicrophone() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new ApiError(0, "insecure", t("error.insecure"));
  }
  // Real calls keep the browser's echo cancellation; measurement needs the raw signal.
  const processing = !measuring;
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing },
      video: false,
    });
  } catch (err) {
    const messages = {
      NotAllowedError: t("error.mic_blocked"),
      NotFoundError: t("error.mic_missing"),
      NotReadableError: t("error.mic_busy"),
    };
    throw new ApiError(0, "microphone", messages[err.name] || t("error.mic_other", { name: err.name }));
  }
}

/**
 * One side's connection to a call: sends the microphone, plays what the server sends.
 * Reconnects by itself (a new offer) when the connection fails; onChange(state) reports
 * the RTCPeerConnection state, onEnded(error) a call that is over or refused.
 */
export class CallLink {
  constructor({ callId, role, token, audio, mic, onChange, onEnded, onRemoteStream }) {
    Object.assign(this, { callId, role, token, audio, mic, onChange, onEnded, onRemoteStream });
    this.pc = null;
    this.closed = false;
    this.failures = 0;
    this.state = "new";
  }

  async start() {
    const { ice_servers: iceServers } = await api("/api/rtc-config", { token: this.token });
    this.iceServers = iceServers;
    await this.connect();
  }

  async connect() {
    const old = this.pc;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    debug.pc = pc;
    if (old) old.close();
    for (const track of this.mic.getAudioTracks()) pc.addTransceiver(track, { direction: "sendrecv", streams: [this.mic] });
    pc.ontrack = (event) => {
      const stream = event.streams[0] || new MediaStream([event.track]);
      this.audio.srcObject = stream;
      const playing = this.audio.play();
      if (playing) playing.catch((err) => note(`audio play refused: ${err.name}`));
      if (this.onRemoteStream) this.onRemoteStream(stream);
    };
    pc.onconnectionstatechange = () => this.changed(pc);
    this.changed(pc);
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc);
    if (this.closed || pc !== this.pc) return;
    const answer = await api(`/api/calls/${encodeURIComponent(this.callId)}/offer`, {
      method: "POST",
      token: this.token,
      body: { role: this.role, type: "offer", sdp: pc.localDescription.sdp },
    });
    if (this.closed || pc !== this.pc) return;
    await pc.setRemoteDescription(answer);
  }

  changed(pc) {
    if (pc !== this.pc) return; // an old connection winding down
    this.state = pc.connectionState;
    note(`${this.role} peer ${this.state}`);
    if (this.state === "connected") this.failures = 0;
    if (this.onChange) this.onChange(this.state);
    clearTimeout(this.lostTimer);
    if (this.closed) return;
    if (this.state === "failed") this.retry();
    // "disconnected" often heals by itself; give it a few seconds.
    if (this.state === "disconnected") this.lostTimer = setTimeout(() => this.retry(), 4000);
  }

  async retry() {
    if (this.closed || this.retrying) return;
    this.retrying = true;
    try {
      // Offline (a phone between networks): wait for the network rather than spend attempts.
      if (!navigator.onLine) await new Promise((resolve) => window.addEventListener("online", resolve, { once: true }));
      if (this.closed) return;
      this.failures += 1;
      if (this.failures > 3) {
        this.fail(new ApiError(0, "no_connection", t("error.no_connection")));
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 500 * this.failures));
      if (this.closed) return;
      await this.connect();
    } catch (err) {
      this.retrying = false;
      // The network went away again while offering: wait for it once more.
      if (err.code === "network") return this.retry();
      this.fail(err);
    } finally {
      this.retrying = false;
    }
  }

  fail(err) {
    if (this.closed) return;
    this.close();
    if (this.onEnded) this.onEnded(err);
  }

  close() {
    this.closed = true;
    clearTimeout(this.lostTimer);
    if (this.pc) this.pc.close();
    this.state = "closed";
  }
}

/** Plays the remote audio, or shows `button` when the browser wants a click first. */
export function ensurePlayback(audio, button) {
  const tryPlay = () => audio.play().then(() => { button.hidden = true; }, () => { button.hidden = false; });
  button.addEventListener("click", tryPlay);
  audio.addEventListener("loadedmetadata", tryPlay);
}

/** Loads the measurement helpers when ?measure=1 is set. */
export async function startMeasuring() {
  if (!measuring) return null;
  const { Meters } = await import("./measure.js");
  const meters = new Meters();
  await meters.ready;
  debug.meters = meters;
  return meters;
}
