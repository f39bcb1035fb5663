// The QA page: who may see it, the list of logged calls, and routing to one call (/qa#<call_id>).
// The call view itself is qa-call.js; the API is docs/API.md, "QA: logged calls".

import { $, api, debug, sentence, setStatus, signedIn } from "/static/app.js";
import { languageSwitch, t, translatePage } from "/static/i18n.js";
import { CallView } from "/static/qa-call.js";
import { el, formatDuration, formatWhen, localMidnight, moderationShort } from "/static/qa-util.js";

translatePage();
languageSwitch($("languages"));

const QA_ROLES = ["qa", "supervisor"];
const LIST_LIMIT = 200;
const status = $("page-status");
debug.qa = {};

function showError(message) {
  $("page-error").textContent = message;
  $("page-error").hidden = !message;
}

/** The API, but a lapsed session goes back to sign-in (and comes back here after). */
async function qaApi(path, options) {
  try {
    return await api(path, options);
  } catch (err) {
    if (err.status === 401) toLogin();
    throw err;
  }
}

function toLogin() {
  location.replace(`/login?next=${encodeURIComponent(`/qa${location.hash}`)}`);
}

// --- the list ------------------------------------------------------------------------

function filterParams() {
  const params = new URLSearchParams();
  const since = localMidnight($("f-from").value);
  const until = localMidnight($("f-to").value, 1); // "to" includes that whole day
  if (since != null) params.set("since", String(since));
  if (until != null) params.set("until", String(until));
  return params;
}

let listRequest = 0;

async function loadList() {
  const params = filterParams();
  // The TSV follows the dates (marks made in them); counselor and mutes filter calls only.
  $("tsv-link").href = `/api/qa/marks.tsv${params.toString() ? `?${params}` : ""}`;
  if ($("f-counselor").value) params.set("counselor", $("f-counselor").value);
  if ($("f-muted").value) params.set("muted", $("f-muted").value);
  if ($("f-moderation").value) params.set("moderation", $("f-moderation").value);
  params.set("limit", String(LIST_LIMIT));
  const mine = ++listRequest;
  $("list-status").textContent = t("qa.loading_calls");
  let data;
  try {
    data = await qaApi(`/api/qa/calls?${params}`);
  } catch (err) {
    if (mine === listRequest) $("list-status").textContent = sentence(err.message);
    return;
  }
  if (mine !== listRequest) return; // a newer filter change won
  fillCounselors(data.counselors);
  const rows = data.calls.map(callRow);
  $("calls").tBodies[0].replaceChildren(...rows);
  $("list-status").textContent = !rows.length ? t("qa.no_match")
    : rows.length >= LIST_LIMIT ? t("qa.newest", { n: LIST_LIMIT })
      : t(rows.length === 1 ? "qa.count_one" : "qa.count", { n: rows.length });
  debug.qa.calls = data.calls;
}

function fillCounselors(names) {
  const select = $("f-counselor");
  const keep = select.value;
  select.replaceChildren(el("option", { value: "" }, t("qa.everyone")), ...names.map((n) => el("option", { value: n }, n)));
  select.value = names.includes(keep) ? keep : "";
}

function callRow(c) {
  const href = `#${encodeURIComponent(c.call_id)}`;
  const mutes = c.lifted ? t("qa.mutes_lifted", { n: c.mutes, lifted: c.lifted }) : String(c.mutes);
  // The whole row opens the call; the link in it is there for the keyboard and "open in new tab".
  return el("tr", { dataset: { callId: c.call_id }, class: c.mutes ? "has-mutes" : "", onclick: (event) => {
    if (event.target.closest("a")) return;
    location.hash = href;
  } },
  el("td", {}, el("a", { href, title: c.call_id }, formatWhen(c.created_at))),
  el("td", {}, c.counselor),
  el("td", { class: "num" }, formatDuration(c.duration_s)),
  el("td", { class: `qa-moderation ${c.moderation || "unknown"}` }, moderationShort(c)),
  el("td", { class: "num" }, c.moderation === "unchecked" && !c.mutes ? "–" : mutes),
  el("td", { class: "num" }, String(c.marks)),
  el("td", { class: "num" }, String(c.replays)));
}

// --- routing -------------------------------------------------------------------------

let view = null;

function route() {
  showError("");
  const callId = decodeURIComponent(location.hash.slice(1));
  if (callId) {
    $("list-view").hidden = true;
    $("call-view").hidden = false;
    view.open(callId);
  } else {
    view.close();
    $("call-view").hidden = true;
    $("list-view").hidden = false;
    loadList();
  }
}

async function main() {
  const me = await signedIn(status, { signedOut: toLogin, beforeSignOut: async () => { if (view) view.close(); } });
  if (!me) return;
  if (!QA_ROLES.includes(me.role)) {
    // Nothing else is asked of the server: the refusal is all this page shows.
    setStatus(status, t("qa.not_qa"), "warn");
    return;
  }
  $("counselor-link").hidden = me.role !== "supervisor";
  status.hidden = true;
  for (const id of ["f-from", "f-to", "f-counselor", "f-muted", "f-moderation"]) $(id).addEventListener("change", loadList);
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  view = new CallView({ api: qaApi, showError });
  debug.qa.view = view;
  window.addEventListener("hashchange", route);
  route();
}

main();
