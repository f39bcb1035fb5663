// Small helpers for the QA page: building DOM and writing times the way reviewers read them.
import { t } from "/static/i18n.js";

/** el("td", {class: "num", title: "…"}, "text", child…): one element, children appended. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c != null && c !== false));
  return node;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** Unix seconds -> "2025-11-21 14:03" in the reviewer's local time. */
export function formatWhen(unix) {
  if (typeof unix !== "number") return "–";
  const d = new Date(unix * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A call's length: "0:42", "12:05", "1:02:05". */
export function formatDuration(seconds) {
  if (typeof seconds !== "number" || !isFinite(seconds)) return "–";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** A point on the call's media clock: "0:04.32" (minutes so long calls stay readable). */
export function formatMedia(seconds, digits = 2) {
  if (typeof seconds !== "number" || !isFinite(seconds)) return "–";
  const sign = seconds < 0 ? "-" : "";
  const abs = Math.abs(seconds);
  const m = Math.floor(abs / 60);
  const rest = (abs - m * 60).toFixed(digits);
  return `${sign}${m}:${rest.padStart(digits ? 3 + digits : 2, "0")}`;
}

export function formatSpan(start, end) {
  return `${formatMedia(start)}–${formatMedia(end)}`;
}

/** A date input's "2025-11-21" -> Unix seconds at that local midnight (plus `days`). */
export function localMidnight(dateValue, days = 0) {
  if (!dateValue) return null;
  const [y, m, d] = dateValue.split("-").map(Number);
  return new Date(y, m - 1, d + days).getTime() / 1000;
}

// The keyword lists' categories have words in the catalogue; a classifier's labels are its own.
const CATEGORIES = ["profanity", "insult", "threat", "sexual_harassment"];

export function categoryName(category) {
  return CATEGORIES.includes(category) ? t(`category.${category}`) : category;
}

/**
 * One line naming what judged a call: {stt: {state, detail}, keywords: {state, detail: "kw-…"}, …}
 * -> "stt: base@5f3b2c1a · keywords: kw-197d6245 · classifier: left out (off)". Any object with a
 * version, model, detail, source or state names one component (replays store the checks' info:
 * {checks: {keywords: {version}, classifier: {available, reason}}}); a state other than "ready" is shown.
 */
export function versionLine(versions) {
  const parts = [];
  (function walk(value, name) {
    if (!value || typeof value !== "object") return;
    const id = [value.version, value.model_version, value.model, value.detail, value.source, value.reason]
      .find((v) => v != null && typeof v !== "object");
    const state = typeof value.state === "string" ? value.state : value.available === false ? "unavailable" : "";
    if (id != null || state) {
      parts.push(`${name || "version"}: ${[id, state && state !== "ready" ? `(${state})` : ""].filter(Boolean).join(" ")}`);
      return;
    }
    for (const [key, child] of Object.entries(value)) walk(child, key);
  })(versions, "");
  return parts.join(" · ");
}

const CHECK_NAMES = { stt: "qa.check.stt", keywords: "qa.check.keywords", classifier: "qa.check.classifier" };
const SHORT_ID = 40; // a version id (base@5f3b2c1a, kw-197d6245); anything longer is detail

/**
 * The checks that judged a call, as one short sentence, and the detail folded away:
 * {stt: {state, detail}, keywords: …, classifier: …} -> {text: "Judged by speech recognition
 * base@5f3b, keyword lists kw-197d; classifier off.", details: [[name, long detail], …]}.
 */
export function checksSentence(versions) {
  const details = [];
  const part = (key) => {
    const v = (versions || {})[key];
    if (!v || typeof v !== "object") return null;
    const name = CHECK_NAMES[key] ? t(CHECK_NAMES[key]) : key;
    const detail = typeof v.detail === "string" ? v.detail.trim() : "";
    const short = detail && detail.length <= SHORT_ID && !/\s/.test(detail);
    if (detail && !(v.state === "ready" && short)) details.push([name, detail]);
    return { name, state: v.state, text: v.state === "ready" ? `${name}${short ? ` ${detail}` : ""}` : `${name} ${v.state}` };
  };
  const stt = part("stt");
  const others = ["keywords", "classifier"].map(part).filter(Boolean);
  const list = (parts) => parts.map((p) => p.text).join(", ");
  let text;
  if (!stt) text = t("qa.checks.none");
  else if (stt.state !== "ready") {
    text = t("qa.checks.not_checked", { name: stt.name, state: stt.state, others: others.length ? ` (${list(others)})` : "" });
  } else {
    const on = others.filter((p) => p.state === "ready"), off = others.filter((p) => p.state !== "ready");
    text = t("qa.checks.judged", { list: list([stt, ...on]), off: off.length ? `; ${list(off)}` : "" });
  }
  return { text: text.charAt(0).toUpperCase() + text.slice(1), details };
}

/** Seconds played undecided: a tenth is enough, but never "0.0 s" for a little. */
function undecidedText(seconds) {
  return `${seconds.toFixed(seconds < 0.1 ? 2 : 1)} s`;
}

/** A call's moderation state (the QA summary's moderation and undecided_s) in a sentence. */
export function moderationSentence(s) {
  const undecided = typeof s.undecided_s === "number" ? undecidedText(s.undecided_s) : null;
  if (s.moderation === "checked") return t("qa.moderation.checked");
  if (s.moderation === "partly") return t("qa.moderation.partly", { s: undecided });
  if (s.moderation === "unchecked") {
    return undecided ? t("qa.moderation.unchecked_played", { s: undecided }) : t("qa.moderation.unchecked");
  }
  return t("qa.moderation.not_recorded");
}

/** The list's short form: "Checked", "Partly (3.2 s)", "Unchecked". */
export function moderationShort(s) {
  if (s.moderation === "partly") return t("qa.partly_short", { s: undecidedText(s.undecided_s || 0) });
  return ["checked", "unchecked"].includes(s.moderation) ? t(`qa.${s.moderation}`) : "–";
}

/**
 * A recording's place on the call's media clock: from media_s, then from each sync point
 * [file_s, media_s] on (where the delivered file's media time steps). The same rule as
 * Recording.media_at / file_at in relay/records/logged_call.py.
 */
export function recordingClock(recording) {
  const runs = [[0, recording.media_s || 0], ...(recording.sync || [])];
  return {
    /** Seconds into the file at media time t (negative before the file starts). */
    toFile(t) {
      for (let k = runs.length - 1; k > 0; k--) {
        const [f, m] = runs[k];
        if (f + (t - m) >= f) return f + (t - m);
      }
      return t - runs[0][1];
    },
    /** Media time of the file's sample at `file` seconds. */
    toMedia(file) {
      let [f, m] = runs[0];
      for (const run of runs) {
        if (run[0] > file) break;
        [f, m] = run;
      }
      return m + (file - f);
    },
  };
}
