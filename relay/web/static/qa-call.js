// One logged call for review: facts, the timeline with A/B playback, the mute spans with
// their reasons, the QA marks, and the replays beside the original.

import { $, debug, sentence } from "/static/app.js";
import { t } from "/static/i18n.js";
import { ABPlayer, decodeMono } from "/static/qa-player.js";
import { STREAMS, Timeline } from "/static/qa-timeline.js";
import { Peaks } from "/static/qa-waveform.js";
import {
  categoryName, checksSentence, el, formatDuration, formatMedia, formatSpan, formatWhen, moderationSentence,
  recordingClock, versionLine,
} from "/static/qa-util.js";

const KINDS = ["false_positive", "missed_abuse"];
const kindWord = (kind) => (KINDS.includes(kind) ? t(`qa.kind.${kind}`) : kind);
const END_REASONS = ["hangup", "customer_lost", "counselor_lost", "idle", "expired", "shutdown", "server_restart"];
const endWord = (reason) => (END_REASONS.includes(reason) ? t(`qa.end.${reason}`) : reason || t("qa.end.unknown"));
const LEAD_IN_S = 0.5; // jumping to a span starts a little before it, so the reviewer hears the context
const MIN_SELECTION_S = 0.05;
const FIT_UP_TO_S = 90; // shorter calls open zoomed to fit; longer ones at a readable 50 px/s

const enc = encodeURIComponent;
const categories = (list) => (list || []).map(categoryName).join(", ") || "–";

/** The first media second of any recording: below 0 when a side joined before the customer's audio. */
function timelineStart(record) {
  return Math.min(0, ...record.recordings.map((r) => r.media_s || 0));
}

/** The last media second anything of the call reaches: the timeline's end. */
function timelineEnd(record) {
  const ends = [];
  for (const r of record.recordings) ends.push(recordingClock(r).toMedia(r.duration_s || 0));
  for (const w of record.words) ends.push(w.end);
  for (const d of record.decisions) ends.push(d.end);
  return Math.max(...ends, 1);
}

export class CallView {
  constructor({ api, showError }) {
    this.api = api;
    this.showError = showError;
    this.call = null;
    this.wire();
  }

  // Controls live in qa.html once; they act on whichever call is open.
  wire() {
    $("play").addEventListener("click", () => this.call?.player.toggle());
    for (const { stream } of STREAMS) $(`use-${stream}`).addEventListener("click", () => this.call?.player.use(stream));
    $("mix-counselor").addEventListener("change", (event) => this.call?.player.setMix(event.target.checked));
    $("zoom").addEventListener("change", () => this.call?.timeline.zoom(this.zoomValue()));
    $("play-selection").addEventListener("click", () => this.playSelection());
    $("mark-missed").addEventListener("click", () => this.markMissed());
    $("clear-selection").addEventListener("click", () => this.select(null));
    document.addEventListener("keydown", (event) => this.onKey(event));
  }

  zoomValue() {
    const v = $("zoom").value;
    return v === "fit" ? "fit" : Number(v);
  }

  close() {
    const call = this.call;
    this.call = null;
    if (!call) return;
    cancelAnimationFrame(call.frame);
    if (call.player) call.player.close();
  }

  async open(callId) {
    this.close();
    const call = { id: callId, record: null, marks: [], selection: null, frame: 0, stopAt: null };
    this.call = call;
    debug.qa.call = call;
    this.reset(callId);
    let record;
    try {
      record = await this.api(`/api/qa/calls/${enc(callId)}`);
    } catch (err) {
      if (this.call === call) $("call-facts").replaceChildren(el("dd", { class: "error" }, sentence(err.message)));
      return;
    }
    if (this.call !== call) return; // the reviewer moved on meanwhile
    call.record = record;
    call.marks = [...record.marks];
    const start = timelineStart(record), end = timelineEnd(record);
    call.player = new ABPlayer({ start, end, onChange: () => this.showPlayer() });
    call.timeline = new Timeline($("timeline"), {
      start, end, onSeek: (t) => this.seek(t), onSelect: (s) => this.select(s),
    });
    $("zoom").value = end - start <= FIT_UP_TO_S ? "fit" : "50";
    call.timeline.zoom(this.zoomValue());
    const stretches = record.events.filter((e) => e.kind === "stretch").map((e) => e.detail);
    call.timeline.setData({ spans: record.decisions, stretches, words: record.words, marks: call.marks, replays: record.replays });
    this.renderFacts(record);
    this.renderSpans();
    this.renderMarks();
    this.renderReplays(record);
    this.showPlayer();
    await this.loadAudio(call);
  }

  reset(callId) {
    $("call-title").textContent = t("qa.call_n", { call: callId });
    $("call-facts").replaceChildren(el("dd", {}, t("common.loading")));
    $("call-more").replaceChildren();
    $("timeline").replaceChildren();
    $("spans").tBodies[0].replaceChildren();
    $("marks").replaceChildren();
    $("replays").replaceChildren();
    $("export-link").href = `/api/qa/calls/${enc(callId)}/export`;
    $("mark-note").value = "";
    $("mark-error").hidden = true;
    $("play").disabled = true;
    $("clock").textContent = formatMedia(0);
    this.showSelection(null);
  }

  // --- audio ---------------------------------------------------------------------------

  async loadAudio(call) {
    await Promise.all(STREAMS.map(async ({ stream }) => {
      const recording = call.record.recordings.find((r) => r.stream === stream);
      if (!recording) {
        call.timeline.setWave(stream, null, t("qa.no_recording"));
        return;
      }
      try {
        const response = await fetch(`/api/qa/calls/${enc(call.id)}/audio/${stream}`,
          { credentials: "same-origin", cache: "no-store" });
        if (!response.ok) {
          const body = await response.json().catch(() => ({}));
          throw new Error(body.message || `HTTP ${response.status}`);
        }
        const buffer = await decodeMono(await response.arrayBuffer());
        if (this.call !== call) return;
        const clock = recordingClock(recording);
        call.timeline.setWave(stream, new Peaks(buffer.getChannelData(0), buffer.sampleRate, clock));
        call.player.add(stream, buffer, clock);
        this.showPlayer();
      } catch (err) {
        if (this.call === call) call.timeline.setWave(stream, null, t("qa.cannot_play", { why: sentence(err.message) }));
      }
    }));
    // Playback starts on A, the original, whichever file decoded first; only with no
    // original (a damaged log) does it start on what else there is.
    if (this.call === call && !call.player.tracks[call.player.stream]) {
      const other = STREAMS.find(({ stream }) => call.player.tracks[stream]);
      if (other) call.player.use(other.stream);
    }
    if (this.call === call) call.loaded = true;
    this.showPlayer();
  }

  showPlayer() {
    const call = this.call;
    if (!call || !call.player) return;
    const { player, timeline } = call;
    $("play").disabled = !Object.keys(player.tracks).length;
    $("play").textContent = t(player.playing ? "qa.pause" : "qa.play");
    for (const { stream } of STREAMS) {
      const button = $(`use-${stream}`);
      button.setAttribute("aria-pressed", String(player.stream === stream));
      button.disabled = !player.tracks[stream];
    }
    $("mix-counselor").checked = player.mix;
    $("mix-counselor").disabled = !player.tracks.counselor || player.stream === "counselor";
    timeline.setActive(player.heard.length ? player.heard : [player.stream]);
    this.tick();
    if (player.playing && !call.frame) call.frame = requestAnimationFrame(() => this.frame());
  }

  /** While playing: the playhead follows the sound, and a played selection stops at its end. */
  frame() {
    const call = this.call;
    if (!call) return;
    call.frame = 0;
    if (!call.player.playing) return;
    if (call.stopAt != null && call.player.now() >= call.stopAt) {
      call.stopAt = null;
      call.player.pause();
      return;
    }
    this.tick(true);
    call.frame = requestAnimationFrame(() => this.frame());
  }

  tick(follow = false) {
    const { player, timeline } = this.call;
    const t = player.now();
    timeline.setPlayhead(t, follow);
    $("clock").textContent = `${formatMedia(t)} / ${formatMedia(player.end)}`;
  }

  seek(t) {
    const call = this.call;
    if (!call?.player) return;
    call.stopAt = null;
    call.player.seek(t);
    this.tick();
  }

  onKey(event) {
    if (!this.call?.player || $("call-view").hidden) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, select, textarea")) return;
    if (event.key === " " && !event.target.closest("button, a, summary")) {
      event.preventDefault();
      this.call.player.toggle();
    } else if (event.key === "a" || event.key === "A") {
      this.call.player.use("customer");
    } else if (event.key === "b" || event.key === "B") {
      this.call.player.use("delivered");
    } else if (event.key === "c" || event.key === "C") {
      this.call.player.use("counselor");
    } else if (event.key === "m" || event.key === "M") {
      this.call.player.setMix(!this.call.player.mix);
    }
  }

  // --- selection and marks ---------------------------------------------------------------

  select(selection) {
    const call = this.call;
    if (!call) return;
    const s = selection && selection.end - selection.start >= MIN_SELECTION_S ? selection : null;
    call.selection = s;
    call.timeline?.setSelection(s);
    this.showSelection(s);
  }

  showSelection(s) {
    $("play-selection").disabled = !s;
    $("mark-missed").disabled = !s;
    $("clear-selection").hidden = !s;
    if (!s) {
      $("selection-text").textContent = t("qa.no_selection");
      return;
    }
    const words = (this.call?.record?.words || []).filter((w) => w.end > s.start && w.start < s.end).map((w) => w.text);
    const span = formatSpan(s.start, s.end), length = (s.end - s.start).toFixed(2);
    $("selection-text").textContent = words.length ? t("qa.selected", { span, length, words: words.join(" ") })
      : t("qa.selected_no_words", { span, length });
  }

  async playSelection() {
    const call = this.call;
    if (!call?.selection) return;
    call.player.seek(call.selection.start);
    await call.player.play();
    call.stopAt = call.selection.end;
    this.tick();
  }

  async addMark(body) {
    const call = this.call;
    $("mark-error").hidden = true;
    const note = $("mark-note").value.trim();
    try {
      const mark = await this.api(`/api/qa/calls/${enc(call.id)}/marks`,
        { method: "POST", body: note ? { ...body, note } : body });
      if (this.call !== call) return null;
      $("mark-note").value = "";
      call.marks.push(mark);
      call.marks.sort((a, b) => a.start - b.start || a.mark_id - b.mark_id);
      this.marksChanged();
      return mark;
    } catch (err) {
      $("mark-error").textContent = t("qa.mark_not_saved", { why: sentence(err.message) });
      $("mark-error").hidden = false;
      return null;
    }
  }

  async markMissed() {
    const s = this.call?.selection;
    if (!s) return;
    const mark = await this.addMark({ kind: "missed_abuse", start: s.start, end: s.end });
    if (mark) this.select(null);
  }

  markFalsePositive(span) {
    return this.addMark({ kind: "false_positive", span_id: span.span_id });
  }

  async deleteMark(mark) {
    const call = this.call;
    $("mark-error").hidden = true;
    try {
      await this.api(`/api/qa/calls/${enc(call.id)}/marks/${mark.mark_id}`, { method: "DELETE" });
    } catch (err) {
      if (err.status !== 404) { // 404: already gone (another reviewer), so drop it here too
        $("mark-error").textContent = t("qa.mark_not_deleted", { why: sentence(err.message) });
        $("mark-error").hidden = false;
        return;
      }
    }
    if (this.call !== call) return;
    call.marks = call.marks.filter((m) => m.mark_id !== mark.mark_id);
    this.marksChanged();
  }

  marksChanged() {
    this.call.timeline.setData({ marks: this.call.marks });
    this.renderSpans();
    this.renderMarks();
  }

  // --- rendering -------------------------------------------------------------------------

  renderFacts(record) {
    const s = record.summary;
    const checks = checksSentence(record.versions);
    const facts = [
      [t("qa.counselor"), s.counselor],
      [t("qa.fact.started"), formatWhen(s.created_at)],
      [t("qa.fact.length"), formatDuration(s.duration_s)],
      [t("qa.fact.delay"), `${s.delay_s} s`],
      [t("qa.fact.ended"), s.ended_at ? `${formatWhen(s.ended_at)} (${endWord(s.end_reason)})` : t("qa.fact.not_ended")],
      [t("qa.moderation"), el("span", { class: `qa-moderation ${s.moderation || "unknown"}`, dataset: { moderation: s.moderation || "" } },
        moderationSentence(s))],
      [t("qa.mutes"), s.moderation === "unchecked" && !s.mutes ? t("qa.fact.no_mutes")
        : s.lifted ? t("qa.fact.stood_lifted", { n: s.mutes, lifted: s.lifted }) : t("qa.fact.stood", { n: s.mutes })],
      [t("qa.col.words"), String(s.words)],
      [t("qa.fact.checks"), el("span", { id: "checks" }, checks.text,
        checks.details.length ? el("details", { class: "qa-check-details" }, el("summary", {}, t("qa.fact.details")),
          el("ul", {}, checks.details.map(([name, detail]) => el("li", {}, el("strong", {}, `${name}: `), detail)))) : "")],
    ];
    $("call-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const json = (value) => el("pre", { class: "qa-json" }, JSON.stringify(value, null, 2));
    $("call-more").replaceChildren(
      el("h3", {}, t("qa.versions")), json(record.versions),
      el("h3", {}, t("qa.config")), json(record.config),
      el("h3", {}, t("qa.events_n", { n: record.events.length })),
      el("div", { class: "qa-table-wrap" }, el("table", { class: "qa-table" },
        el("thead", {}, el("tr", {}, el("th", {}, t("qa.event.at")), el("th", {}, t("qa.event.media")), el("th", {}, t("qa.event.kind")),
          el("th", {}, t("qa.fact.details")))),
        el("tbody", {}, record.events.map((e) => el("tr", {},
          el("td", {}, new Date(e.at * 1000).toLocaleTimeString()), el("td", {}, formatMedia(e.media_s)),
          el("td", {}, e.kind), el("td", {}, el("code", {}, JSON.stringify(e.detail)))))))),
    );
  }

  renderSpans() {
    const call = this.call;
    const spans = call.record.decisions;
    $("spans-empty").hidden = spans.length > 0;
    $("spans").hidden = !spans.length;
    $("spans").tBodies[0].replaceChildren(...spans.map((d) => {
      const state = d.lifted_at != null ? "lifted" : d.provisional ? "provisional" : "stood";
      const stateText = t(`qa.span.${state}`);
      const mark = call.marks.find((m) => m.kind === "false_positive" && m.span_id === d.span_id);
      let qa;
      if (state === "lifted") qa = el("span", { class: "hint" }, t("qa.nothing_muted"));
      else if (mark) {
        qa = el("span", { class: "qa-marked" }, `${t("qa.marked_false_positive")} `,
          el("button", { type: "button", class: "link", onclick: () => this.deleteMark(mark) }, t("qa.undo")));
      } else {
        qa = el("button", { type: "button", class: "secondary qa-small", onclick: () => this.markFalsePositive(d) },
          t("qa.kind.false_positive"));
      }
      return el("tr", { dataset: { spanId: d.span_id, state }, class: state },
        el("td", {}, `#${d.span_id}`),
        el("td", {}, el("button", {
          type: "button", class: "link", title: t("qa.seek_span"),
          onclick: () => { call.timeline.reveal(d.start, d.end); this.seek(Math.max(0, d.start - LEAD_IN_S)); },
        }, formatSpan(d.start, d.end))),
        el("td", { class: "qa-words-cell" }, d.words.join(" ") || "–"),
        el("td", {}, categories(d.categories)),
        el("td", {}, el("ul", { class: "qa-hits" }, d.hits.map((h) => el("li", {},
          `${h.source} · ${categoryName(h.category)} · ${num(h.score)} / ${num(h.threshold)}`,
          h.detail ? ` · “${h.detail}”` : "",
          h.version ? el("span", { class: "hint", title: h.version }, ` · ${h.version}`) : "")))),
        el("td", {}, stateText),
        el("td", { class: "num", title: d.late_s > 0 ? t("qa.late_title") : "" },
          d.late_s > 0 ? `${d.late_s.toFixed(2)} s` : "–"),
        el("td", {}, qa));
    }));
  }

  renderMarks() {
    const call = this.call;
    $("marks-empty").hidden = call.marks.length > 0;
    $("marks").replaceChildren(...call.marks.map((m) => el("li", { dataset: { markId: m.mark_id, kind: m.kind } },
      el("strong", {}, kindWord(m.kind)), " ",
      el("button", { type: "button", class: "link", onclick: () => { call.timeline.reveal(m.start, m.end); this.seek(m.start); } },
        formatSpan(m.start, m.end)),
      m.span_id != null ? ` ${t("qa.span_n", { n: m.span_id })}` : "",
      el("span", { class: "qa-mark-text" }, m.text ? ` “${m.text}”` : ` ${t("qa.no_words_there")}`),
      m.note ? el("span", { class: "qa-mark-note" }, ` — ${m.note}`) : "",
      el("span", { class: "hint" }, ` ${t("qa.mark_by", { user: m.by_user, at: formatWhen(m.at) })} `),
      el("button", { type: "button", class: "link", "aria-label": t("qa.delete_mark", { n: m.mark_id }), onclick: () => this.deleteMark(m) },
        t("qa.delete")))));
  }

  renderReplays(record) {
    const box = $("replays");
    if (!record.replays.length) {
      box.replaceChildren(el("p", { class: "hint" },
        `${t("qa.no_replays")} `, el("code", {}, `callguard replay ${record.summary.call_id}`), ` ${t("qa.replay_how")}`));
      return;
    }
    box.replaceChildren(...record.replays.map((r) => {
      const diff = r.diff || {};
      const items = ["added", "removed", "changed"].flatMap((kind) => (diff[kind] || []).map((i) => ({ ...i, kind })))
        .sort((a, b) => a.start - b.start);
      const counts = t(diff.unchanged != null ? "qa.replay.counts_same" : "qa.replay.counts", {
        added: (diff.added || []).length, removed: (diff.removed || []).length, changed: (diff.changed || []).length,
        same: diff.unchanged,
      });
      return el("article", { class: "qa-replay", dataset: { replayId: r.replay_id } },
        el("h3", {}, `${t("qa.replay_n", { n: r.replay_id })} · ${r.mode} · ${r.by_user} · ${formatWhen(r.at)}`),
        el("p", { class: "hint" }, versionLine(r.versions) || t("qa.replay.no_versions")),
        el("p", {}, t("qa.replay.summary", {
          n: (r.spans || []).length, call: record.decisions.filter((d) => d.lifted_at == null).length, counts,
        })),
        items.length ? el("ul", { class: "qa-diff" }, items.map((i) => el("li", { class: i.kind },
          el("strong", {}, t(`qa.replay.${i.kind}`)), " ",
          el("button", { type: "button", class: "link", onclick: () => { this.call.timeline.reveal(i.start, i.end); this.seek(Math.max(0, i.start - LEAD_IN_S)); } },
            formatSpan(i.start, i.end)),
          ` ${(i.words || []).join(" ")} (${categories(i.categories)})`,
          i.kind === "changed" ? el("span", { class: "hint" }, ` ${t("qa.replay.was_now", { before: describe(i.before), after: describe(i.after) })}`) : ""))) : "",
        el("details", { class: "qa-details" }, el("summary", {}, t("qa.replay_config")),
          el("pre", { class: "qa-json" }, JSON.stringify({ versions: r.versions, config: r.config }, null, 2))));
    }));
  }
}

function num(value) {
  return typeof value === "number" ? value.toFixed(2) : "–";
}

/** Spans of one side of a changed diff item, in a few words. */
function describe(spans) {
  if (!spans || !spans.length) return t("qa.replay.nothing");
  return spans.map((s) => `${formatSpan(s.start, s.end)} ${categories(s.categories)}`).join(", ");
}
