// The supervisor's console: every live call of the cluster (every relay node's) with its
// node and moderation health, updated each second; a call opens into its live stats and
// event stream (any node proxies them to the call's own); ended calls link to QA.

import { $, api, debug, formatSeconds, openEvents, sentence, setStatus, signedIn } from "/static/app.js";
import { languageSwitch, t, translatePage } from "/static/i18n.js";
import { el, formatDuration, formatWhen } from "/static/qa-util.js";
import { loadAccounts } from "/static/supervisor-accounts.js";
import { loadDefaults, settingsForm } from "/static/supervisor-settings.js";

translatePage();
languageSwitch($("languages"));

// The page's words, in one place.
// The state names (active, ready, unavailable...) stay the server's own: they are what the
// operations docs and the metrics call them.
const WORDS = {
  notSupervisor: () => t("supervisor.not_supervisor"),
  watching: (n) => t(n === 1 ? "supervisor.watching_one" : "supervisor.watching", { n }),
  health: (h) => t(h.moderation.ready ? "supervisor.health_ok" : "supervisor.health_bad", {
    stt: h.moderation.stt, keywords: h.moderation.keywords, classifier: h.moderation.classifier,
  }),
  lost: () => t("supervisor.unreachable"),
  nodesLost: (nodes) => t("supervisor.nodes_unreachable", { nodes: nodes.join(", ") }),
  stage: { none: () => "–", warning: () => t("supervisor.stage.warning"), limit: () => t("supervisor.stage.limit") },
  warning: (c) => t("supervisor.notice.warning", { counselor: c.counselor, call: c.call_id, n: c.escalation.abuse_spans }),
  limit: (c) => t("supervisor.notice.limit", { counselor: c.counselor, call: c.call_id, n: c.escalation.abuse_spans }),
  endedFor: (reason) => (["abuse", "abuse_reported"].includes(reason) ? t(`supervisor.ended.${reason}`) : reason || "–"),
  detailTitle: (c) => t("supervisor.detail_title", { call: c.call_id, counselor: c.counselor }),
  event: (e) => `${e.type}: ${JSON.stringify(Object.fromEntries(Object.entries(e).filter(([k]) => k !== "type")))}`,
};
const POLL_MS = 1000;
const ENDED_LIMIT = 20;
const MAX_EVENTS = 200;
const status = $("page-status");
const stages = new Map(); // call id -> last escalation stage seen
let detail = null; // {id, events}
debug.supervisor = { polls: 0 };

function showError(message) {
  $("page-error").textContent = message;
  $("page-error").hidden = !message;
}

function lagOf(c) {
  const m = c.moderation;
  return m.state === "ready" ? formatSeconds(m.lag_s, 2) : t("supervisor.not_checked");
}

function row(c, now, clustered) {
  const m = c.moderation;
  const open = () => openDetail(c);
  return el("tr", { dataset: { callId: c.call_id, stage: c.escalation.stage }, class: "sv-row", onclick: open },
    el("td", {}, el("button", { class: "link", type: "button" }, c.call_id)),
    el("td", { class: "sv-node", hidden: !clustered }, c.node || "–"),
    el("td", {}, c.counselor),
    el("td", { class: "sv-duration" }, formatDuration(now - c.created_at)),
    el("td", { class: "sv-state" }, c.state),
    el("td", { class: "sv-delay" }, formatSeconds(c.delay_s, 1)),
    el("td", { title: m.detail || "" }, `${m.state} · kw ${m.keywords.state} · cls ${m.classifier.state}`),
    el("td", {}, lagOf(c)),
    el("td", {}, formatSeconds(c.stats.undecided_s, 1)),
    el("td", {}, String(c.provisional_spans)),
    el("td", { class: "sv-mutes" }, `${formatSeconds(c.stats.muted_s, 1)}${c.holding ? ` · ${t("supervisor.holding")}` : ""}`),
    el("td", { class: "sv-escalation" }, WORDS.stage[c.escalation.stage] ? WORDS.stage[c.escalation.stage]() : c.escalation.stage));
}

function notify(c) {
  const before = stages.get(c.call_id) || "none";
  const now = c.escalation.stage;
  stages.set(c.call_id, now);
  if (now === before || now === "none") return;
  $("notices-card").hidden = false;
  $("notices").prepend(el("li", { dataset: { callId: c.call_id, stage: now } },
    `${formatWhen(Date.now() / 1000)} ${WORDS[now](c)}`));
  debug.supervisor.notices = (debug.supervisor.notices || 0) + 1;
}

async function poll() {
  try {
    const [{ calls, unreachable_nodes: unreachable = [] }, health] = await Promise.all([api("/api/calls"), api("/healthz")]);
    showError("");
    const now = Date.now() / 1000;
    calls.sort((a, b) => a.created_at - b.created_at);
    calls.forEach(notify);
    const clustered = calls.some((c) => c.node);
    $("col-node").hidden = !clustered;
    $("live-calls").tBodies[0].replaceChildren(...calls.map((c) => row(c, now, clustered)));
    $("nodes-unreachable").hidden = unreachable.length === 0;
    if (unreachable.length) setStatus($("nodes-unreachable"), WORDS.nodesLost(unreachable), "warn");
    $("no-calls").hidden = calls.length > 0;
    setStatus(status, WORDS.watching(calls.length), "ok");
    setStatus($("health"), WORDS.health(health), health.moderation.ready ? "ok" : "warn");
    const ids = new Set(calls.map((c) => c.call_id));
    const gone = [...stages.keys()].some((id) => !ids.has(id));
    for (const id of [...stages.keys()]) if (!ids.has(id)) stages.delete(id);
    if (gone || debug.supervisor.polls % 10 === 0) await loadEnded();
    debug.supervisor.polls += 1;
    debug.supervisor.calls = calls.map((c) => c.call_id);
  } catch (err) {
    if (err.status === 401) location.replace("/login?next=/supervisor");
    else setStatus(status, err.status === 0 ? WORDS.lost() : sentence(err.message), "bad");
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

async function loadEnded() {
  const { calls } = await api(`/api/qa/calls?limit=${ENDED_LIMIT}`);
  const ended = calls.filter((c) => c.ended_at != null);
  $("ended-card").hidden = ended.length === 0;
  $("ended-calls").tBodies[0].replaceChildren(...ended.map((c) => el("tr", { dataset: { callId: c.call_id } },
    el("td", {}, el("a", { href: `/qa#${encodeURIComponent(c.call_id)}` }, c.call_id)),
    el("td", {}, c.counselor),
    el("td", {}, formatWhen(c.ended_at)),
    el("td", {}, formatDuration(c.duration_s)),
    el("td", { class: "sv-reason" }, WORDS.endedFor(c.end_reason)),
    el("td", {}, String(c.mutes)))));
}

// --- one call, live ---------------------------------------------------------------

function showDetailStats(stats, moderation) {
  const facts = {
    [t("supervisor.fact.buffered")]: formatSeconds(stats.buffered_s, 2),
    [t("supervisor.fact.heard")]: formatSeconds(stats.playout_media_s, 1),
    [t("supervisor.fact.unchecked")]: formatSeconds(stats.undecided_s, 1),
    [t("supervisor.fact.muted")]: formatSeconds(stats.muted_s, 1),
    [t("supervisor.fact.late_mutes")]: String(stats.late_mutes),
    [t("supervisor.fact.lost")]: formatSeconds(stats.lost_s, 2),
    [t("supervisor.fact.moderation")]: moderation ? `${moderation.state} ${moderation.detail || ""}` : "–",
    [t("supervisor.fact.transcription_lag")]: moderation && moderation.lag_s != null ? formatSeconds(moderation.lag_s, 2) : "–",
    [t("supervisor.fact.decision_lag")]: moderation && moderation.decision_lag_p50_s != null
      ? formatSeconds(moderation.decision_lag_p50_s, 2) : "–",
    [t("supervisor.fact.delay_now")]: formatSeconds(stats.delay_now_s, 2),
  };
  $("detail-stats").replaceChildren(...Object.entries(facts).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function openDetail(c) {
  closeDetail();
  $("detail-card").hidden = false;
  $("detail-title").textContent = WORDS.detailTitle(c);
  $("detail-events").replaceChildren();
  showDetailStats(c.stats, c.moderation);
  $("call-settings").replaceChildren(
    settingsForm("call-settings-form", `/api/calls/${encodeURIComponent(c.call_id)}/settings`, { ...c.settings }));
  const current = { id: c.call_id, events: null };
  detail = current;
  debug.supervisor.detail = c.call_id;
  current.events = openEvents(c.call_id, {
    onEvent: (event) => {
      if (detail !== current) return;
      if (event.type === "stats") { showDetailStats(event.stats, event.moderation); return; }
      const list = $("detail-events");
      list.append(el("li", { dataset: { type: event.type } }, WORDS.event(event)));
      while (list.children.length > MAX_EVENTS) list.firstChild.remove();
    },
    // A dropped socket (a network blip, a server restart) reconnects while the call lasts:
    // the detail would otherwise freeze on its last figures without a word.
    onLost: async () => {
      try {
        await api(`/api/calls/${encodeURIComponent(c.call_id)}`);
        return detail !== current;
      } catch (err) {
        return [404, 409].includes(err.status) || detail !== current;
      }
    },
  });
}

function closeDetail() {
  if (detail && detail.events) detail.events.close();
  detail = null;
  $("detail-card").hidden = true;
}

async function main() {
  const me = await signedIn(status, { signedOut: () => location.replace("/login?next=/supervisor") });
  if (!me) return;
  if (me.role !== "supervisor") {
    setStatus(status, WORDS.notSupervisor(), "warn");
    return;
  }
  $("live-card").hidden = false;
  $("detail-close").addEventListener("click", closeDetail);
  loadAccounts(me).catch((err) => showError(sentence(err.message)));
  loadDefaults($("defaults-card")).catch((err) => showError(sentence(err.message)));
  await poll();
}

main();
