import {
  $, api, CallLink, debug, ensurePlayback, formatSeconds, measuring, note, openEvents, openMicrophone, sentence,
  setStatus, signedIn, startMeasuring,
} from "/static/app.js";

const audio = $("remote");
audio.muted = measuring; // measurement listens through WebAudio instead
ensurePlayback(audio, $("sound"));

const status = $("call-status");
const PEER_WORDS = {
  none: "not connected", new: "starting", connecting: "connecting", connected: "connected",
  disconnected: "connection lost", failed: "connection failed", closed: "left", lost: "lost",
};
const ENDED_WORDS = {
  hangup: "Call ended.",
  idle: "Call ended: no one was connected for a while.",
  expired: "Call ended: the customer did not join before the invite expired.",
  shutdown: "Call ended: the server was stopped.",
  abuse: "Call ended: the customer went on with abuse after the warning.",
  abuse_reported: "Call ended and reported for abuse.",
  customer_lost: "Call ended: the customer was gone and did not come back.",
  counselor_lost: "Call ended: your audio stopped reaching the server.",
};
// Dump, hold to mute, and escalation: the page's words for them.
const PROTECT_WORDS = {
  dumped: (s) => `Dumped ${s.toFixed(1)} s you had not heard yet.`,
  nothing: "Nothing to dump: you have heard everything received.",
  holding: "Muting the customer while you hold…",
  held: (s) => `Muted ${s.toFixed(1)} s while you held.`,
  warning: (n) => `The customer heard the warning after ${n} abusive remarks. If it goes on, the call ends.`,
  limitEnd: (n) => `${n} abusive remarks after the warning: the call is being ended.`,
  limitOffer: (n) => `${n} abusive remarks: you may end the call and report it.`,
};
const STATE_WORDS = {
  waiting: ["Waiting for the customer to join", "busy"],
  active: ["Call in progress", "ok"],
};

let call = null; // {id, link, events, mic, spans}
debug.role = "counselor";

function showError(message) {
  $("page-error").textContent = message;
  $("page-error").hidden = !message;
}

function setPill(id, state) {
  const el = $(id);
  el.textContent = PEER_WORDS[state] || state;
  el.dataset.state = state;
}

// A lost side: the server ends the call when its grace runs out; the page counts it down.
let lostTimer = 0;

function showCallState(state, peers, lost = {}) {
  debug.callState = state;
  debug.lost = lost;
  document.body.dataset.callState = state;
  document.body.dataset.customer = lost.customer ? "lost" : "";
  clearInterval(lostTimer);
  lostTimer = 0;
  const gone = lost.customer ? "customer" : lost.counselor ? "counselor" : null;
  if (gone) {
    const endsAt = performance.now() + lost[gone].ends_in_s * 1000;
    const tell = () => {
      const left = Math.max(0, Math.round((endsAt - performance.now()) / 1000));
      setStatus(status, gone === "customer"
        ? `Customer lost: no audio from them. Waiting ${left} s for them to reconnect, then the call ends.`
        : `Your audio is not reaching the server. Reconnecting; the call ends in ${left} s otherwise.`, "bad");
    };
    tell();
    lostTimer = setInterval(tell, 1000);
  } else {
    const [text, tone] = STATE_WORDS[state] || [state, ""];
    setStatus(status, text, tone);
  }
  if (state !== "waiting") $("invite").hidden = true; // the customer has joined: the link did its job
  if (peers) {
    debug.peers = peers;
    setPill("peer-customer", peers.customer);
    setPill("peer-counselor", peers.counselor);
  }
}

const MODERATION_WORDS = {
  ready: ["Moderation on: the customer's words are checked before you hear them.", "ok"],
  loading: ["Moderation is starting.", "busy"],
  fetching: ["Moderation is starting: the speech model is being fetched. You hear the customer unchecked.", "bad"],
  off: ["Moderation is switched off: you hear the customer unchecked.", "busy"],
  unavailable: ["Moderation unavailable: you hear the customer unchecked.", "bad"],
};

function showModeration(m) {
  if (!m) return;
  debug.moderation = m;
  const [text, tone] = MODERATION_WORDS[m.state] || [`Moderation: ${m.state}`, ""];
  setStatus($("moderation"), text, tone);
  $("moderation").title = m.detail || "";
  $("transcript-card").hidden = m.state !== "ready";
}

const CATEGORY_WORDS = {
  profanity: "profanity", insult: "insult", threat: "threat", sexual_harassment: "sexual harassment",
  manual: "by hand",
};

// "keyword:profanity,classifier:악플/욕설" -> "profanity, 악플/욕설": what kind, never the words.
function categories(reason) {
  // "source:category" parts; a hand-made span is "manual:<who>".
  const names = (reason || "").split(",")
    .map((part) => (part.startsWith("manual") ? "manual" : part.split(":").pop())).filter(Boolean);
  return [...new Set(names.map((n) => CATEGORY_WORDS[n] || n))].join(", ") || "abuse";
}

function wordElement(w) {
  const el = document.createElement("span");
  if (w.text == null) {
    el.className = "muted-word";
    el.textContent = `[muted: ${categories(w.muted)}]`;
  } else {
    el.textContent = w.text;
  }
  return el;
}

function showTranscript(event) {
  const final = $("transcript-final");
  for (const w of event.confirmed) final.append(wordElement(w), " ");
  $("transcript-provisional").replaceChildren(...event.provisional.flatMap((w) => [wordElement(w), " "]));
  $("transcript").scrollTop = $("transcript").scrollHeight;
  debug.words = (debug.words || 0) + event.confirmed.length;
}

// The notice shows when the muted audio is about to play, not when it was decided.
function showMuteNotice(event) {
  $("stat-spans").textContent = String(++call.spans);
  const s = debug.stats;
  const playing = s ? s.playout_media_s + (performance.now() - debug.statsAt) / 1000 : event.start;
  setTimeout(() => {
    const notice = $("mute-notice");
    notice.textContent = `Muted: ${categories(event.reason)}`;
    notice.hidden = false;
    clearTimeout(debug.noticeTimer);
    debug.noticeTimer = setTimeout(() => { notice.hidden = true; }, Math.max(2000, (event.end - event.start) * 1000 + 1500));
  }, Math.max(0, (event.start - playing) * 1000));
}

function showStats(s) {
  debug.stats = s;
  debug.statsAt = performance.now();
  // The elastic delay: above the base delay only while a decision is pending (playout
  // slowed), back to it in the customer's pauses.
  const slowed = s.stretched_s ? `, slowed ${formatSeconds(s.stretched_s, 1)} so far` : "";
  $("stat-delay").textContent = `${formatSeconds(s.delay_now_s, 2)}${slowed}`;
  $("stat-buffered").textContent = formatSeconds(s.buffered_s, 2);
  const lag = s.cleared_until_s == null ? null : Math.max(0, s.received_media_s - s.cleared_until_s);
  const checking = debug.moderation && debug.moderation.state === "ready";
  $("stat-lag").textContent = lag == null ? "none, all checked" : checking ? formatSeconds(lag, 2) : "not checked";
  $("stat-undecided").textContent = formatSeconds(s.undecided_s, 1);
  $("stat-muted").textContent = `${formatSeconds(s.muted_s, 1)}${s.late_mutes ? ` (${s.late_mutes} late)` : ""}`;
  $("stat-lost").textContent = formatSeconds(s.lost_s, 2);
}

function onEvent(event) {
  if (!call) return;
  if (event.type === "state") showCallState(event.state, event.peers, event.lost);
  else if (event.type === "stats") {
    showModeration(event.moderation);
    showStats(event.stats);
  }
  else if (event.type === "mute") showMuteNotice(event);
  else if (event.type === "transcript") showTranscript(event);
  else if (event.type === "escalation") showEscalation(event);
  else if (event.type === "ended") finish(ENDED_WORDS[event.reason] || "Call ended.");
}

function protectNotice(text) {
  const el = $("protect-notice");
  el.textContent = text;
  el.hidden = !text;
}

function showEscalation(event) {
  debug.escalation = event;
  if (event.stage === "warning") protectNotice(PROTECT_WORDS.warning(event.abuse_spans));
  else if (event.action === "end") protectNotice(PROTECT_WORDS.limitEnd(event.abuse_spans));
  else protectNotice(PROTECT_WORDS.limitOffer(event.abuse_spans));
  $("report").hidden = false;
}

async function callAction(path, method = "POST") {
  if (!call) return null;
  try {
    return await api(`/api/calls/${encodeURIComponent(call.id)}/${path}`, { method, body: {} });
  } catch (err) {
    if (err.code === "nothing_to_dump") protectNotice(PROTECT_WORDS.nothing);
    else showError(sentence(err.message));
    return null;
  }
}

async function dump() {
  const span = await callAction("dump");
  if (span) protectNotice(PROTECT_WORDS.dumped(span.end - span.start));
}

let holding = null; // the start request while a hold lasts: the stop waits for it
function holdStart() {
  if (holding || !call) return;
  $("hold").setAttribute("aria-pressed", "true");
  protectNotice(PROTECT_WORDS.holding);
  holding = callAction("hold");
}

async function holdStop() {
  if (!holding) return;
  const started = holding;
  holding = null;
  $("hold").setAttribute("aria-pressed", "false");
  if (!(await started)) return;
  const span = await callAction("hold", "DELETE");
  if (span) protectNotice(PROTECT_WORDS.held(span.end - span.start));
}

async function endAndReport() {
  const ended = await callAction("report");
  if (ended) finish(ENDED_WORDS.abuse_reported);
}

function bindProtection() {
  $("dump").addEventListener("click", dump);
  const hold = $("hold");
  hold.addEventListener("pointerdown", holdStart);
  for (const name of ["pointerup", "pointerleave", "pointercancel"]) hold.addEventListener(name, holdStop);
  $("report").addEventListener("click", endAndReport);
  const typing = (e) => e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement;
  document.addEventListener("keydown", (e) => {
    if (!call || typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.code === "KeyD" && !e.repeat) dump();
    else if (e.code === "KeyM") { e.preventDefault(); holdStart(); }
  });
  document.addEventListener("keyup", (e) => { if (e.code === "KeyM") holdStop(); });
  window.addEventListener("blur", holdStop); // a key released in another window
}

async function join(info) {
  showError("");
  $("start").hidden = true;
  $("live").hidden = false;
  $("stats-card").hidden = false;
  // The server hands the invite back to its counselor until the customer has joined.
  // Without server.public_url it may give a path: the origin is the one in use here.
  $("invite").hidden = !info.invite;
  $("invite-note").hidden = !!info.invite;
  if (info.invite) $("invite-url").value = new URL(info.invite.url, location.origin).href;
  $("delay").textContent = `Customer audio reaches you ${info.delay_s} s late, so that abusive words can be silenced first.`;
  $("stat-spans").textContent = "0";
  protectNotice("");
  $("report").hidden = !(info.escalation && info.escalation.stage !== "none");
  $("transcript-final").replaceChildren();
  $("transcript-provisional").replaceChildren();
  debug.callId = info.call_id;
  debug.delayS = info.delay_s;
  showCallState(info.state, info.peers, info.lost);
  if (info.stats) showStats(info.stats);
  showModeration(info.moderation);

  const current = { id: info.call_id, spans: 0, link: null, events: null, mic: null };
  call = current;
  current.events = openEvents(info.call_id, {
    onEvent,
    onLost: async () => {
      try {
        await api(`/api/calls/${encodeURIComponent(current.id)}`);
        return false;
      } catch (err) {
        if ([404, 409].includes(err.status)) { if (call === current) finish("Call ended."); return true; }
        return false;
      }
    },
  });
  try {
    const meters = await startMeasuring();
    current.mic = await openMicrophone();
    if (meters) await meters.attach("local", current.mic);
    current.link = new CallLink({
      callId: info.call_id, role: "counselor", audio, mic: current.mic,
      onChange: (state) => { setPill("peer-local", state); debug.peer = state; document.body.dataset.peer = state; },
      onEnded: (err) => finish(err.code === "call_ended" ? "Call ended." : sentence(err.message)),
      onRemoteStream: (stream) => meters && meters.attach("remote", stream),
    });
    if (call !== current) return;
    await current.link.start();
  } catch (err) {
    note(`join failed: ${err.message}`);
    if (call === current) finish(err.code === "call_ended" ? "Call ended." : sentence(err.message), true);
  }
}

function finish(message, failed = false) {
  if (!call) return;
  clearInterval(lostTimer);
  lostTimer = 0;
  const ending = call;
  call = null;
  if (ending.link) ending.link.close();
  if (ending.events) ending.events.close();
  if (ending.mic) ending.mic.getTracks().forEach((t) => t.stop());
  audio.srcObject = null;
  debug.callState = "ended";
  document.body.dataset.callState = "ended";
  setStatus(status, message, failed ? "bad" : "warn");
  $("live").hidden = true;
  $("invite").hidden = true;
  $("invite-note").hidden = true;
  $("start").textContent = "Start a new call";
  $("start").hidden = false;
}

async function startCall() {
  $("start").disabled = true;
  showError("");
  try {
    const created = await api("/api/calls", { method: "POST", body: {} });
    await join(created);
  } catch (err) {
    showError(sentence(err.message));
  } finally {
    $("start").disabled = false;
  }
}

async function hangUp() {
  if (!call) return;
  const id = call.id;
  $("hangup").disabled = true;
  try {
    await api(`/api/calls/${encodeURIComponent(id)}/hangup`, { method: "POST", body: {} });
    finish("Call ended.");
  } catch (err) {
    showError(sentence(err.message));
  } finally {
    $("hangup").disabled = false;
  }
}

async function copyInvite() {
  const input = $("invite-url");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand("copy");
  }
  $("copied").textContent = "Link copied.";
  setTimeout(() => { $("copied").textContent = ""; }, 3000);
}

async function main() {
  const me = await signedIn(status, {
    signedOut: () => location.replace("/login"),
    beforeSignOut: async () => { if (call) await hangUp(); },
  });
  if (!me) return;
  $("qa-link").hidden = !["supervisor", "qa"].includes(me.role);
  if (!["counselor", "supervisor"].includes(me.role)) {
    setStatus(status, "This page is for counselors. Your account cannot take calls.", "warn");
    return;
  }
  $("start").addEventListener("click", startCall);
  $("hangup").addEventListener("click", hangUp);
  $("copy").addEventListener("click", copyInvite);
  bindProtection();

  // After a reload, rejoin this counselor's running call instead of starting another.
  let running = [];
  try {
    ({ calls: running } = await api("/api/calls"));
  } catch (err) {
    showError(sentence(err.message));
  }
  const mine = running.filter((c) => c.counselor === me.name && c.state !== "ended")
    .sort((a, b) => b.created_at - a.created_at);
  if (mine.length) {
    await join(mine[0]);
  } else {
    setStatus(status, "No call yet. Start one, then send the invite link to the customer.", "");
    $("start").hidden = false;
  }
}

main();
