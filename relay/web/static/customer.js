import {
  $, api, CallLink, debug, ensurePlayback, measuring, note, openEvents, openMicrophone, sentence, setStatus,
  startMeasuring,
} from "/static/app.js";

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
    return ["Call ended", "This call has ended. If you need to talk again, please ask for a new link."];
  }
  if (err.status === 401) {
    if (/expired/.test(err.message)) {
      return ["Link expired", "This invite link has expired. Please ask your counselor for a new one."];
    }
    return ["Link not valid", "This invite link is not valid. Check that you opened the whole link, or ask for a new one."];
  }
  if (err.status === 403) return ["Link not valid", "This invite link belongs to a different call."];
  if (err.status === 404) return ["Call not found", "This call does not exist any more. Please ask for a new link."];
  return ["Something went wrong", sentence(err.message)];
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

function endCall(text = "Call ended", detail = "Thank you. You can close this page now.") {
  if (ended) return;
  ended = true;
  sessionStorage.removeItem(joinedKey);
  stop();
  $("join").hidden = true;
  $("intro").hidden = true;
  document.body.dataset.callState = "ended";
  debug.callState = "ended";
  show(text, text === "Call ended" ? "warn" : "bad", detail);
}

function onPeer(state) {
  debug.peer = state;
  document.body.dataset.peer = state;
  if (ended) return;
  if (state === "connected") show("Connected", "ok", "You are talking with your counselor.");
  else if (state === "connecting" || state === "new") show("Connecting…", "busy");
  else if (state === "disconnected") show("Reconnecting…", "warn", "The connection was interrupted.");
}

function onEvent(event) {
  if (event.type === "state") {
    debug.callState = event.state;
    debug.peers = event.peers;
    document.body.dataset.callState = event.state;
    if (link && link.state === "connected" && event.peers.counselor !== "connected") {
      show("Connected", "ok", "Waiting for your counselor to connect…");
    } else if (link && link.state === "connected") {
      show("Connected", "ok", "You are talking with your counselor.");
    }
  } else if (event.type === "ended") {
    endCall();
  }
}

async function join() {
  $("join").hidden = true;
  $("intro").hidden = true;
  show("Connecting…", "busy", "Allow the microphone if your browser asks.");
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
    $("hangup").hidden = false;
    await link.start();
  } catch (err) {
    note(`join failed: ${err.message}`);
    if (err.code === "microphone" || err.code === "insecure") {
      // Let them fix the browser setting and try again.
      stop();
      sessionStorage.removeItem(joinedKey);
      show("Microphone needed", "bad", err.message);
      $("join").hidden = false;
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
  endCall("Call ended", "You hung up. Thank you, you can close this page now.");
}

async function main() {
  if (!callId || !token) {
    endCall("Link not valid", "This invite link is incomplete. Open the whole link you were sent.");
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
  show("Ready to join", "", "");
  $("intro").hidden = false;
  $("join").hidden = false;
}

main();
