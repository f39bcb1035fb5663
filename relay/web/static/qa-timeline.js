// The call timeline: both waveforms on one media clock, mute spans shaded over them, the
// words placed under them at their times, then the marks and one lane per replay.
//
// Layout: a label column, and a horizontally scrolling track as wide as the call at the
// current zoom. The ruler and waveform canvases are only as wide as the viewport and stick
// to its left edge (redrawn on scroll, see qa-waveform.js); spans, words, marks and the
// playhead are plain elements placed at time * pixels-per-second in the full-width track.

import { drawRuler, drawWave } from "/static/qa-waveform.js";
import { categoryName, el, formatMedia, formatSpan } from "/static/qa-util.js";
import { t } from "/static/i18n.js";

export const STREAMS = [
  { stream: "customer", key: "A", label: t("qa.stream.customer"), hint: t("qa.stream.customer_hint") },
  { stream: "delivered", key: "B", label: t("qa.stream.delivered"), hint: t("qa.stream.delivered_hint") },
  { stream: "counselor", key: "C", label: t("qa.stream.counselor"), hint: t("qa.stream.counselor_hint") },
];
const WAVE_COLORS = { customer: "#1f5f8b", delivered: "#2e7d5b", counselor: "#8a4f9e" };
const WORD_ROW_PX = 22;
const MAX_WORD_ROWS = 4;
const DRAG_PX = 4; // a press that moves less than this is a click (seek), not a selection

export class Timeline {
  /** start, end: the media seconds the timeline spans (start < 0 when a side joined before the customer's audio). */
  constructor(root, { start = 0, end, onSeek, onSelect }) {
    this.start = Math.min(0, start);
    this.end = Math.max(end, this.start + 1);
    this.onSeek = onSeek;
    this.onSelect = onSelect;
    this.pps = 100; // pixels per second
    this.fit = true;
    this.peaks = {};
    this.spans = [];
    this.stretches = []; // where playout ran slowed (the elastic delay waiting for a decision)
    this.words = [];
    this.marks = [];
    this.replays = [];
    this.selection = null;
    this.playhead = 0;
    this.build(root);
  }

  build(root) {
    this.labels = el("div", { class: "qa-labels" });
    this.track = el("div", { class: "qa-track" });
    this.scroller = el("div", { class: "qa-scroll", tabindex: "0", "aria-label": t("qa.timeline") }, this.track);
    root.replaceChildren(this.labels, this.scroller);

    // The sticky viewport: ruler and the two waveforms.
    this.ruler = el("canvas", { class: "qa-ruler" });
    this.view = el("div", { class: "qa-view" }, this.ruler);
    this.labels.append(el("div", { class: "qa-label qa-label-ruler" }, t("qa.col.time")));
    this.rows = {};
    for (const { stream, key, label, hint } of STREAMS) {
      const canvas = el("canvas");
      const row = el("div", { class: "qa-wave", dataset: { stream } }, canvas);
      const status = el("span", { class: "qa-wave-status" }, t("qa.loading_audio"));
      const tag = el("div", { class: "qa-label qa-label-wave", dataset: { stream } },
        el("strong", {}, `${key} · ${label}`), el("span", { class: "hint" }, hint), status);
      this.rows[stream] = { row, canvas, tag, status };
      this.view.append(row);
      this.labels.append(tag);
    }
    this.spanLayer = el("div", { class: "qa-span-layer" });
    this.selectionBox = el("div", { class: "qa-selection", hidden: true });
    this.playheadLine = el("div", { class: "qa-playhead" });
    this.wordLane = el("div", { class: "qa-lane qa-word-lane" });
    this.markLane = el("div", { class: "qa-lane qa-mark-lane" });
    this.replayLanes = el("div", { class: "qa-replay-lanes" });
    this.wordLabel = el("div", { class: "qa-label" }, t("qa.col.words"));
    this.markLabel = el("div", { class: "qa-label qa-label-lane" }, t("qa.marks"));
    this.replayLabels = el("div");
    this.labels.append(this.wordLabel, this.markLabel, this.replayLabels);
    this.track.append(this.view, this.spanLayer, this.selectionBox, this.wordLane, this.markLane, this.replayLanes,
      this.playheadLine);

    this.scroller.addEventListener("scroll", () => this.redrawSoon());
    new ResizeObserver(() => this.layout()).observe(this.scroller);
    this.listenForPointer();
  }

  // --- data --------------------------------------------------------------------------

  setWave(stream, peaks, status = "") {
    const r = this.rows[stream];
    this.peaks[stream] = peaks;
    r.status.textContent = status;
    r.status.hidden = !status;
    r.row.dataset.state = peaks ? "ready" : "missing";
    if (peaks) r.row.dataset.decodedS = peaks.duration.toFixed(3); // for people and tests
    this.redrawSoon();
  }

  /** streams: the ones being heard (one, or one with the counselor mixed in). */
  setActive(streams) {
    for (const [name, r] of Object.entries(this.rows)) {
      r.tag.classList.toggle("active", streams.includes(name));
      r.row.classList.toggle("active", streams.includes(name));
    }
  }

  setData({ spans, stretches, words, marks, replays }) {
    if (spans) this.spans = spans;
    if (stretches) this.stretches = stretches;
    if (words) this.words = words;
    if (marks) this.marks = marks;
    if (replays) this.replays = replays;
    this.layout();
  }

  setSelection(selection) {
    this.selection = selection;
    this.placeSelection();
  }

  // --- zoom and scroll ---------------------------------------------------------------

  get viewWidth() {
    return this.scroller.clientWidth || 800;
  }

  /** pps: pixels per second, or "fit" for the whole call in view. Keeps the playhead (or the middle) in place. */
  zoom(pps) {
    const width = this.viewWidth;
    const anchorT = this.playheadVisible() ? this.playhead : this.start + (this.scroller.scrollLeft + width / 2) / this.pps;
    const anchorX = this.x(anchorT) - this.scroller.scrollLeft;
    this.fit = pps === "fit";
    this.pps = this.fit ? width / (this.end - this.start) : pps;
    this.layout();
    this.scroller.scrollLeft = Math.max(0, this.x(anchorT) - anchorX);
  }

  playheadVisible() {
    const x = this.x(this.playhead) - this.scroller.scrollLeft;
    return x >= 0 && x <= this.viewWidth;
  }

  x(t) {
    return (t - this.start) * this.pps;
  }

  /** Every position follows the zoom: recomputed here, then the canvases redrawn. */
  layout() {
    const width = this.viewWidth;
    if (this.fit) this.pps = width / (this.end - this.start);
    this.track.style.width = `${Math.ceil(this.x(this.end))}px`;
    this.view.style.width = `${width}px`;
    this.placeSpans();
    this.placeWords();
    this.placeMarks();
    this.placeReplays();
    this.placeSelection();
    this.setPlayhead(this.playhead);
    this.redraw();
  }

  redrawSoon() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.redraw();
    });
  }

  redraw() {
    const t0 = this.start + this.scroller.scrollLeft / this.pps;
    drawRuler(this.ruler, t0, this.pps, formatMedia);
    for (const { stream } of STREAMS) {
      const r = this.rows[stream];
      drawWave(r.canvas, this.peaks[stream], t0, this.pps, { color: WAVE_COLORS[stream] });
    }
  }

  // --- placed elements ---------------------------------------------------------------

  box(start, end, cls, attrs = {}, ...children) {
    const left = this.x(start);
    const width = Math.max(2, this.x(end) - left);
    return el("div", { class: cls, style: { left: `${left}px`, width: `${width}px` }, ...attrs }, ...children);
  }

  placeSpans() {
    // A band along the top of the waveforms where the counselor heard playout slowed.
    const stretches = this.stretches.map((s) => this.box(s.start, s.end, "qa-stretch",
      { title: `${formatSpan(s.start, s.end)}: playout slowed while a decision was pending (delay up to ${s.delay_s.toFixed(2)} s)` }));
    this.spanLayer.replaceChildren(...stretches, ...this.spans.map((d) => {
      const state = d.lifted_at != null ? "lifted" : d.provisional ? "provisional" : "stood";
      const late = d.late_s > 0
        ? el("div", { class: "qa-late", style: { width: `${Math.min(d.late_s, d.end - d.start) * this.pps}px` } })
        : null;
      // Zoomed far out, spans are a few pixels wide: no number, no edges, just the shade.
      const px = this.x(d.end) - this.x(d.start);
      return this.box(d.start, d.end, `qa-span ${state}${px < 6 ? " thin" : ""}`, { dataset: { spanId: d.span_id, state } },
        late, px >= 24 ? el("span", { class: "qa-span-id" }, `#${d.span_id}`) : null);
    }));
  }

  placeWords() {
    // Words that would overlap go to the next row down (up to MAX_WORD_ROWS), so a zoomed-out
    // view stays readable; the first row that has room takes the word.
    const measure = (this.measure ||= document.createElement("canvas").getContext("2d"));
    measure.font = getComputedStyle(this.wordLane).font || "13px system-ui";
    const rowsEnd = [];
    const chips = this.words.map((w, i) => {
      const left = this.x(w.start);
      const width = Math.max(this.x(w.end) - left, measure.measureText(w.text).width + 8);
      let row = rowsEnd.findIndex((endX) => endX + 3 <= left);
      if (row < 0) row = rowsEnd.length < MAX_WORD_ROWS ? rowsEnd.length : rowsEnd.indexOf(Math.min(...rowsEnd));
      rowsEnd[row] = left + width;
      const state = this.wordState(w);
      return el("button", {
        type: "button", class: `qa-word ${state}`, dataset: { index: i, state },
        title: `${w.text}  ${formatSpan(w.start, w.end)}  p=${(w.probability ?? 0).toFixed(2)}${
          state === "muted" ? "  (muted)" : state === "lifted" ? "  (muted briefly, lifted)" : ""}`,
        style: { left: `${left}px`, minWidth: `${Math.max(2, this.x(w.end) - left)}px`, top: `${row * WORD_ROW_PX}px` },
        onclick: () => this.onSeek(w.start),
      }, w.text);
    });
    const height = `${Math.max(1, rowsEnd.length) * WORD_ROW_PX + 4}px`;
    this.wordLane.style.height = height;
    this.wordLabel.style.height = height;
    this.wordLane.replaceChildren(...chips);
  }

  /** muted: inside a mute that stood; lifted: only inside lifted provisional spans. */
  wordState(w) {
    const mid = (w.start + w.end) / 2;
    const under = this.spans.filter((d) => d.start <= mid && mid < d.end);
    if (under.some((d) => d.lifted_at == null)) return "muted";
    return under.length ? "lifted" : "clean";
  }

  placeMarks() {
    this.markLane.replaceChildren(...this.marks.map((m) => {
      const fp = m.kind === "false_positive";
      const name = t(fp ? "qa.kind.false_positive" : "qa.kind.missed_abuse");
      const by = t("qa.mark_by", { user: m.by_user, at: formatSpan(m.start, m.end) });
      return this.box(m.start, m.end, `qa-mark ${m.kind}`, {
        dataset: { markId: m.mark_id }, title: `${name}: ${by}${m.note ? ` — ${m.note}` : ""}`,
        onclick: () => this.onSeek(m.start),
      }, t(fp ? "qa.chip.false_positive" : "qa.chip.missed_abuse"));
    }));
  }

  placeReplays() {
    const lanes = [];
    const labels = [];
    for (const replay of this.replays) {
      const diff = replay.diff || {};
      const items = ["added", "removed", "changed"].flatMap((kind) => (diff[kind] || []).map((item) => ({ ...item, kind })));
      // The replay's own spans that no diff item covers mute the same as the call did.
      const same = (replay.spans || []).filter((s) => !items.some((i) => i.kind !== "removed" && i.start < s.end && s.start < i.end));
      const chips = [
        ...same.map((s) => this.box(s.start, s.end, "qa-replay-span same",
          { title: `same as the call: ${(s.categories || []).map(categoryName).join(", ")}` })),
        ...items.map((i) => this.box(i.start, i.end, `qa-replay-span ${i.kind}`,
          { title: `${i.kind} ${formatSpan(i.start, i.end)}: ${(i.words || []).join(" ")} (${(i.categories || []).map(categoryName).join(", ")})`,
            onclick: () => this.onSeek(i.start) },
          { added: "+", removed: "−", changed: "~" }[i.kind])),
      ];
      lanes.push(el("div", { class: "qa-lane qa-replay-lane", dataset: { replayId: replay.replay_id } }, ...chips));
      labels.push(el("div", { class: "qa-label qa-label-lane", title: `replay #${replay.replay_id}` },
        t("qa.replay_n", { n: replay.replay_id })));
    }
    this.replayLanes.replaceChildren(...lanes);
    this.replayLabels.replaceChildren(...labels);
  }

  placeSelection() {
    const s = this.selection;
    this.selectionBox.hidden = !s;
    if (!s) return;
    this.selectionBox.style.left = `${this.x(s.start)}px`;
    this.selectionBox.style.width = `${Math.max(1, this.x(s.end) - this.x(s.start))}px`;
  }

  /** Moves the playhead; `follow` pages the view along while playing. */
  setPlayhead(t, follow = false) {
    this.playhead = t;
    const x = this.x(t);
    this.playheadLine.style.transform = `translateX(${x}px)`;
    if (follow) {
      const left = this.scroller.scrollLeft, width = this.viewWidth;
      if (x > left + width - 20 || x < left) this.scroller.scrollLeft = Math.max(0, x - width * 0.1);
    }
  }

  /** Brings media time t into view (a span picked in the table). */
  reveal(start, end = start) {
    const left = this.scroller.scrollLeft, width = this.viewWidth;
    if (this.x(start) < left || this.x(end) > left + width) {
      this.scroller.scrollLeft = Math.max(0, this.x((start + end) / 2) - width / 2);
    }
  }

  // --- pointer: click to seek, drag to select -------------------------------------------

  listenForPointer() {
    const timeAt = (event) => {
      const rect = this.track.getBoundingClientRect();
      return Math.max(this.start, Math.min(this.end, this.start + (event.clientX - rect.left) / this.pps));
    };
    let press = null;
    this.view.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      this.view.setPointerCapture(event.pointerId);
      press = { x: event.clientX, t: timeAt(event), dragging: false };
    });
    this.view.addEventListener("pointermove", (event) => {
      if (!press) return;
      if (!press.dragging && Math.abs(event.clientX - press.x) < DRAG_PX) return;
      press.dragging = true;
      const t = timeAt(event);
      this.setSelection({ start: Math.min(press.t, t), end: Math.max(press.t, t) });
    });
    const release = (event) => {
      if (!press) return;
      const { dragging, t } = press;
      press = null;
      if (dragging) this.onSelect(this.selection);
      else if (event.type === "pointerup") this.onSeek(t);
    };
    this.view.addEventListener("pointerup", release);
    this.view.addEventListener("pointercancel", release);
  }
}
