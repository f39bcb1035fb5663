import {
  $, api, CallLink, debug, ensurePlayback, measuring, note, openEvents, openMicrophone, sentence, setStatus,
  startMeasuring,
} from "/static/app.js";
import { languageSwitch, t, translatePage } from "/static/i18n.js";

translatePage();
languageSwitch($("languages"));

// The invite link is /join/<call_id>#<token>: the token never leaves the browser except
// as our own Authorization header (or ?token= on the events socket).
const callId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const token = decodeURIComponent(location.hash.slice(1));
const joinedKey = `callguard-joined:${callId}`;

const audio = $("remote");
audio.muted = measuring;
ensurePlayback(audio, $("sound"));
const status = $("status");
debug.role = "customer";
debug.callId = callId;

let link = null;
let events = null;
let mic = null;
let ended = false;

function show(text, tone, detail = "") {
  setStatus(status, text, tone);
  $("detail").textContent = detail;
  debug.status = text;
}

/** Plain words for why the link cannot be used. */
function explain(err) {
  if (err.code === "call_ended" || err.status === 409) {
    return [t("customer.ended"), t("customer.ended_again")];
  }
  if (err.status === 401) {
    if (/expired/.test(err.message)) {
      return [t("customer.expired"), t("customer.expired_detail")];
    }
    return [t("customer.invalid"), t("customer.invalid_detail")];
  }
  if (err.status === 403) return [t("customer.invalid"), t("customer.other_call")];
  if (err.status === 404) return [t("customer.not_found"), t("customer.not_found_detail")];
  return [t("customer.failed"), sentence(err.message)];
}

function stop() {
  if (link) link.close();
  if (events) events.close();
  if (mic) mic.getTracks().forEach((t) => t.stop());
  link = events = mic = null;
  audio.srcObject = null;
  $("hangup").hidden = true;
  $("sound").hidden = true;
}

function endCall(text = t("customer.ended"), detail = t("customer.ended_detail")) {
  if (ended) return;
  ended = true;
  sessionStorage.removeItem(joinedKey);
  stop();
  $("join").hidden = true;
  $("intro").hidden = true;
  $("mic-help").hidden = true;
  document.body.dataset.callState = "ended";
  debug.callState = "ended";
  show(text, text === t("customer.ended") ? "warn" : "bad", detail);
}

function onPeer(state) {
  debug.peer = state;
  document.body.dataset.peer = state;
  if (ended) return;
  if (state === "connected") show(t("customer.connected"), "ok", t("customer.talking"));
  else if (state === "connecting" || state === "new") show(t("customer.connecting"), "busy");
  else if (state === "disconnected" || state === "failed") {
    show(t("customer.reconnecting"), "warn", t(navigator.onLine ? "customer.interrupted" : "customer.offline"));
  }
}

function onEvent(event) {
  if (event.type === "state") {
    debug.callState = event.state;
    debug.peers = event.peers;
    document.body.dataset.callState = event.state;
    if (link && link.state === "connected" && event.peers.counselor !== "connected") {
      show(t("customer.connected"), "ok", t("customer.waiting_counselor"));
    } else if (link && link.state === "connected") {
      show(t("customer.connected"), "ok", t("customer.talking"));
    }
  } else if (event.type === "escalation" && event.stage === "warning") {
    // The shipped prompt's words, for a customer who reads rather than hears them.
    $("warning").textContent = t("customer.warning");
    $("warning").hidden = false;
    debug.warned = true;
  } else if (event.type === "ended") {
    endCall();
  }
}

async function join() {
  $("join").hidden = true;
  $("intro").hidden = true;
  $("mic-help").hidden = true;
  show(t("customer.connecting"), "busy", t("customer.allow_mic"));
  sessionStorage.setItem(joinedKey, "1");
  try {
    const meters = await startMeasuring();
    mic = await openMicrophone();
    if (meters) await meters.attach("local", mic);
    events = openEvents(callId, {
      token,
      onEvent,
      onLost: async () => {
        try {
          await api(`/api/calls/${encodeURIComponent(callId)}`, { token });
          return false;
        } catch (err) {
          if ([401, 404, 409].includes(err.status)) { endCall(...explain(err)); return true; }
          return false;
        }
      },
    });
    link = new CallLink({
      callId, role: "customer", token, audio, mic,
      onChange: onPeer,
      onEnded: (err) => endCall(...explain(err)),
      onRemoteStream: (stream) => meters && meters.attach("remote", stream),
    });
    debug.link = link;
    $("hangup").hidden = false;
    await link.start();
  } catch (err) {
    note(`join failed: ${err.message}`);
    if (err.code === "microphone" || err.code === "insecure") {
      // Let them fix the browser setting and try again.
      stop();
      sessionStorage.removeItem(joinedKey);
      show(t("customer.mic_needed"), "bad", err.message);
      $("mic-help").hidden = err.code !== "microphone";
      $("join").textContent = t("customer.retry");
      $("join").hidden = false;
      $("join").focus();
    } else {
      endCall(...explain(err));
    }
  }
}

async function hangUp() {
  $("hangup").disabled = true;
  try {
    await api(`/api/calls/${encodeURIComponent(callId)}/hangup`, { method: "POST", token, body: {} });
  } catch (err) {
    note(`hangup: ${err.message}`);
  }
  endCall(t("customer.ended"), t("customer.hung_up"));
}

// A phone changing networks: say so, and reconnect as soon as the network is back.
window.addEventListener("offline", () => {
  if (link && !ended) show(t("customer.reconnecting"), "warn", t("customer.offline"));
});
window.addEventListener("online", () => {
  if (link && !ended && link.state !== "connected") link.retry();
  else if (link && !ended) onPeer(link.state);
});

async function main() {
  if (!callId || !token) {
    endCall(t("customer.invalid"), t("customer.incomplete"));
    return;
  }
  try {
    const info = await api(`/api/calls/${encodeURIComponent(callId)}`, { token });
    debug.callState = info.state;
  } catch (err) {
    endCall(...explain(err));
    return;
  }
  $("join").addEventListener("click", join);
  $("hangup").addEventListener("click", hangUp);
  // A reload during the call rejoins with the same link.
  if (sessionStorage.getItem(joinedKey)) {
    join();
    return;
  }
  show(t("customer.ready"), "", "");
  $("intro").hidden = false;
  $("join").hidden = false;
}

main();
