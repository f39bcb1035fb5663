import {
  $, api, CallLink, debug, ensurePlayback, formatSeconds, measuring, note, openEvents, openMicrophone, sentence,
  setStatus, setText, signedIn, startMeasuring,
} from "/static/app.js";
import { languageSwitch, t, translatePage } from "/static/i18n.js";
import { protection } from "/static/protection.js";

translatePage();
languageSwitch($("languages"));

const audio = $("remote");
audio.muted = measuring; // measurement listens through WebAudio instead
ensurePlayback(audio, $("sound"));

const status = $("call-status");
const ENDED_REASONS = [
  "hangup", "idle", "expired", "shutdown", "abuse", "abuse_reported", "customer_lost", "counselor_lost", "node_lost",
];
const endedWords = (reason) => t(ENDED_REASONS.includes(reason) ? `counselor.ended.${reason}` : "counselor.ended.hangup");
// Dump, hold to mute, and escalation: the page's words for them.
const PROTECT_WORDS = {
  dumped: (s) => t("counselor.dumped", { s: s.toFixed(1) }),
  nothing: () => t("counselor.nothing_to_dump"),
  holding: () => t("counselor.holding"),
  held: (s) => t("counselor.held", { s: s.toFixed(1) }),
  warning: (n) => t("counselor.escalation.warning", { n }),
  limitEnd: (n) => t("counselor.escalation.limit_end", { n }),
  limitOffer: (n) => t("counselor.escalation.limit_offer", { n }),
};
const STATE_WORDS = {
  waiting: ["counselor.state.waiting", "busy"],
  active: ["counselor.state.active", "ok"],
};

let call = null; // {id, link, events, mic, spans, mutes}
debug.role = "counselor";

function showError(message) {
  $("page-error").textContent = message;
  $("page-error").hidden = !message;
}

// --- one state per side --------------------------------------------------------------

const sides = { you: "new", customer: "none", lost: {} };
let lostTimer = 0;
let lostEndsAt = {}; // side -> performance.now() when the server ends the call

function secondsLeft(side) {
  return Math.max(0, Math.round((lostEndsAt[side] - performance.now()) / 1000));
}

/** connecting / connected / lost, waiting N s / left: what each side's pill says. */
function sideWord(side, state) {
  if (sides.lost[side]) return [t("counselor.peer.lost_waiting", { s: secondsLeft(side) }), "lost"];
  const key = {
    none: side === "customer" ? "not_joined" : "connecting", new: "connecting", connecting: "connecting",
    connected: "connected", disconnected: "reconnecting", failed: "reconnecting", closed: "left", lost: "lost",
  }[state] || "connecting";
  const tone = { connected: "connected", left: "closed", reconnecting: "disconnected", lost: "lost" }[key] || "connecting";
  return [t(`counselor.peer.${key}`), tone];
}

function showSides() {
  for (const [side, id] of [["you", "peer-you"], ["customer", "peer-customer"]]) {
    const [text, tone] = sideWord(side, sides[side]);
    setText($(id), text);
    $(id).dataset.state = tone;
  }
}

function showCallState(state, peers, lost = {}) {
  debug.callState = state;
  debug.lost = lost;
  document.body.dataset.callState = state;
  document.body.dataset.customer = lost.customer ? "lost" : "";
  clearInterval(lostTimer);
  lostTimer = 0;
  // The server names the sides customer and counselor; the page says "you" for the latter.
  sides.lost = { customer: lost.customer, you: lost.counselor };
  lostEndsAt = {};
  for (const side of ["customer", "you"]) {
    if (sides.lost[side]) lostEndsAt[side] = performance.now() + sides.lost[side].ends_in_s * 1000;
  }
  const gone = lost.customer ? "customer" : lost.counselor ? "you" : null;
  if (gone) {
    const tell = () => {
      setStatus(status, t(gone === "customer" ? "counselor.customer_lost" : "counselor.you_lost", { s: secondsLeft(gone) }), "bad");
      showSides();
    };
    tell();
    lostTimer = setInterval(tell, 1000);
  } else {
    const [key, tone] = STATE_WORDS[state] || [null, ""];
    setStatus(status, key ? t(key) : state, tone);
  }
  if (state !== "waiting") $("invite").hidden = true; // the customer has joined: the link did its job
  if (peers) {
    debug.peers = peers;
    sides.customer = peers.customer;
  }
  showSides();
}

function onLocalPeer(state) {
  sides.you = state;
  debug.peer = state;
  document.body.dataset.peer = state;
  showSides();
}

// --- the call timer ------------------------------------------------------------------

let timer = 0;

function startTimer(createdAt) {
  clearInterval(timer);
  // From the server's record of the call's start (a clock ahead of ours counts from now).
  const start = Math.min(createdAt, Date.now() / 1000);
  const tick = () => {
    const s = Math.max(0, Math.floor(Date.now() / 1000 - start));
    const h = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, "0");
    setText($("call-timer"), `${h ? `${h}:` : ""}${mm}:${String(s % 60).padStart(2, "0")}`);
  };
  tick();
  timer = setInterval(tick, 1000);
}

// --- the protection light ------------------------------------------------------------

let moderation = null;
let uncheckedAt = -Infinity; // performance.now() when unchecked audio last played
let lastUndecided = null;

const LIGHT_ICONS = { protected: "✓", degraded: "!", off: "✕" };

function showProtection() {
  const p = protection(moderation, debug.stats, (performance.now() - uncheckedAt) / 1000);
  const level = p.level;
  const reason = t(`counselor.moderation.${p.reason}`, {
    lag: (p.lag_s || 0).toFixed(1), s: (p.unchecked_s || 0).toFixed(1),
  });
  const light = $("protection");
  light.dataset.level = level;
  setText($("protection-icon"), LIGHT_ICONS[level]);
  setText($("protection-word"), t(`counselor.protection.${level}`));
  setText($("moderation"), reason);
  $("moderation").title = (moderation && moderation.detail) || "";
  debug.protection = level;
}

function showModeration(m) {
  if (!m) return;
  moderation = m;
  debug.moderation = m;
  $("transcript-card").hidden = m.state !== "ready";
  showProtection();
}

// --- muted moments -------------------------------------------------------------------

const CATEGORIES = ["profanity", "insult", "threat", "sexual_harassment", "manual"];

// "keyword:profanity,classifier:악플/욕설" -> ["profanity", "악플/욕설"]: what kind, never the words.
function categoryNames(reason) {
  // "source:category" parts; a hand-made span is "manual" or "manual:<who>".
  const names = (reason || "").split(",")
    .map((part) => (part.startsWith("manual") ? "manual" : part.split(":").pop())).filter(Boolean);
  return [...new Set(names)];
}

function categoryWord(name) {
  return CATEGORIES.includes(name) ? t(`category.${name}`) : name;
}

function categories(reason) {
  return categoryNames(reason).map(categoryWord).join(", ") || t("category.abuse");
}

function showMuteCount() {
  const counts = new Map();
  for (const names of call.mutes.values()) {
    const first = names[0] || "abuse";
    counts.set(first, (counts.get(first) || 0) + 1);
  }
  const parts = [...counts].map(([name, n]) => t("counselor.muted_by", {
    category: name === "abuse" ? t("category.abuse") : categoryWord(name), n,
  }));
  setText($("mute-count"), call.mutes.size ? `${call.mutes.size} (${parts.join(", ")})` : "0");
  debug.muteCounts = Object.fromEntries(counts);
}

function wordElement(w) {
  const el = document.createElement("span");
  if (w.text == null) {
    el.className = "muted-word";
    el.textContent = t("counselor.muted_word", { categories: categories(w.muted) });
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
  const current = call;
  current.mutes.set(event.span_id, categoryNames(event.reason));
  $("stat-spans").textContent = String(++current.spans);
  const s = debug.stats;
  const playing = s ? s.playout_media_s + (performance.now() - debug.statsAt) / 1000 : event.start;
  setTimeout(() => {
    if (call !== current) return;
    showMuteCount();
    const notice = $("mute-notice");
    notice.textContent = t("counselor.muted_notice", { categories: categories(event.reason) });
    notice.hidden = false;
    clearTimeout(debug.noticeTimer);
    debug.noticeTimer = setTimeout(() => { notice.hidden = true; }, Math.max(4000, (event.end - event.start) * 1000 + 3000));
  }, Math.max(0, (event.start - playing) * 1000));
}

function showUnmute(event) {
  // A provisional span lifted before playout: nothing was muted after all.
  if (call.mutes.delete(event.span_id)) showMuteCount();
}

function showStats(s) {
  if (lastUndecided !== null && s.undecided_s > lastUndecided + 0.01) uncheckedAt = performance.now();
  lastUndecided = s.undecided_s;
  debug.stats = s;
  debug.statsAt = performance.now();
  // The elastic delay: above the base delay only while a decision is pending (playout
  // slowed), back to it in the customer's pauses.
  const slowed = s.stretched_s ? t("counselor.stat.slowed", { s: formatSeconds(s.stretched_s, 1) }) : "";
  $("stat-delay").textContent = `${formatSeconds(s.delay_now_s, 2)}${slowed}`;
  $("stat-buffered").textContent = formatSeconds(s.buffered_s, 2);
  const lag = s.cleared_until_s == null ? null : Math.max(0, s.received_media_s - s.cleared_until_s);
  const checking = moderation && moderation.state === "ready";
  $("stat-lag").textContent = lag == null ? t("counselor.stat.all_checked")
    : checking ? formatSeconds(lag, 2) : t("counselor.stat.not_checked");
  $("stat-undecided").textContent = formatSeconds(s.undecided_s, 1);
  $("stat-muted").textContent = `${formatSeconds(s.muted_s, 1)}${s.late_mutes ? ` ${t("counselor.stat.late", { n: s.late_mutes })}` : ""}`;
  $("stat-lost").textContent = formatSeconds(s.lost_s, 2);
  showProtection();
}

function showDelay(seconds) {
  $("delay").textContent = t("counselor.delay", { s: seconds });
  debug.delayS = seconds;
}

function onEvent(event) {
  if (!call) return;
  if (event.type === "state") showCallState(event.state, event.peers, event.lost);
  else if (event.type === "stats") {
    showModeration(event.moderation);
    showStats(event.stats);
  }
  else if (event.type === "moderation") showModeration({ ...(moderation || {}), state: event.state, detail: event.detail });
  else if (event.type === "mute") showMuteNotice(event);
  else if (event.type === "unmute") showUnmute(event);
  else if (event.type === "transcript") showTranscript(event);
  else if (event.type === "escalation") showEscalation(event);
  else if (event.type === "settings") showDelay(event.settings.delay_s); // a supervisor changed it live
  else if (event.type === "ended") finish(endedWords(event.reason));
}

// --- dump, hold, escalation ----------------------------------------------------------

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
    if (err.code === "nothing_to_dump") protectNotice(PROTECT_WORDS.nothing());
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
  protectNotice(PROTECT_WORDS.holding());
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
  if (ended) finish(endedWords("abuse_reported"));
}

function bindProtection() {
  $("dump").addEventListener("click", dump);
  const hold = $("hold");
  hold.addEventListener("pointerdown", holdStart);
  for (const name of ["pointerup", "pointerleave", "pointercancel"]) hold.addEventListener(name, holdStop);
  // Focused, the hold button holds while Space or Enter is down, as the M key does.
  hold.addEventListener("keydown", (e) => {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) { e.preventDefault(); holdStart(); }
  });
  hold.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") { e.preventDefault(); holdStop(); } });
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

// --- joining and leaving -------------------------------------------------------------

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
  showDelay(info.delay_s);
  $("stat-spans").textContent = "0";
  protectNotice("");
  $("mute-notice").hidden = true;
  $("report").hidden = !(info.escalation && info.escalation.stage !== "none");
  $("transcript-final").replaceChildren();
  $("transcript-provisional").replaceChildren();
  debug.callId = info.call_id;
  moderation = null;
  debug.stats = null; // a previous call's figures say nothing about this one
  lastUndecided = null;
  uncheckedAt = -Infinity;
  sides.you = "new";
  const current = { id: info.call_id, spans: 0, mutes: new Map(), link: null, events: null, mic: null };
  call = current;
  showMuteCount();
  startTimer(info.created_at || Date.now() / 1000);
  showCallState(info.state, info.peers, info.lost);
  if (info.stats) showStats(info.stats);
  showModeration(info.moderation);
  showProtection();

  current.events = openEvents(info.call_id, {
    onEvent,
    onLost: async () => {
      try {
        await api(`/api/calls/${encodeURIComponent(current.id)}`);
        return false;
      } catch (err) {
        if ([404, 409].includes(err.status)) { if (call === current) finish(endedWords("hangup")); return true; }
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
      onChange: onLocalPeer,
      onEnded: (err) => finish(err.code === "call_ended" ? endedWords("hangup") : sentence(err.message)),
      onRemoteStream: (stream) => meters && meters.attach("remote", stream),
    });
    if (call !== current) return;
    await current.link.start();
  } catch (err) {
    note(`join failed: ${err.message}`);
    if (call === current) finish(err.code === "call_ended" ? endedWords("hangup") : sentence(err.message), true);
  }
}

function finish(message, failed = false) {
  if (!call) return;
  clearInterval(lostTimer);
  clearInterval(timer);
  lostTimer = 0;
  const ending = call;
  call = null;
  if (ending.link) ending.link.close();
  if (ending.events) ending.events.close();
  if (ending.mic) ending.mic.getTracks().forEach((track) => track.stop());
  audio.srcObject = null;
  debug.callState = "ended";
  document.body.dataset.callState = "ended";
  setStatus(status, message, failed ? "bad" : "warn");
  $("live").hidden = true;
  $("invite").hidden = true;
  $("invite-note").hidden = true;
  $("start").textContent = t("counselor.start_new");
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
    finish(endedWords("hangup"));
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
  $("copied").textContent = t("counselor.copied");
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
    setStatus(status, t("counselor.not_counselor"), "warn");
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
    setStatus(status, t("counselor.no_call"), "");
    $("start").hidden = false;
  }
}

main();
