// Waveforms: min/max peaks per pixel column, drawn on a canvas for the visible stretch only.
//
// A whole call does not fit one canvas at a useful zoom (30 min at 100 px/s is 180,000 px,
// far past the browser's canvas limit), so the timeline keeps a viewport-wide canvas and
// redraws what is in view. Scanning raw samples for every redraw would be slow when zoomed
// out, so the peaks of fixed blocks are computed once and used whenever a pixel column
// covers more than one block.

const BLOCK = 256; // samples per precomputed min/max pair (~10 ms at 24 kHz)

export class Peaks {
  /** samples: mono Float32Array; sampleRate in Hz; clock: the file on media time (qa-util's recordingClock). */
  constructor(samples, sampleRate, clock) {
    this.samples = samples;
    this.rate = sampleRate;
    this.clock = clock;
    const blocks = Math.ceil(samples.length / BLOCK);
    this.min = new Float32Array(blocks);
    this.max = new Float32Array(blocks);
    for (let b = 0; b < blocks; b++) {
      let lo = 0, hi = 0;
      const end = Math.min(samples.length, (b + 1) * BLOCK);
      for (let i = b * BLOCK; i < end; i++) {
        const v = samples[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      this.min[b] = lo;
      this.max[b] = hi;
    }
  }

  get duration() {
    return this.samples.length / this.rate;
  }

  /** [min, max] of the samples between media times t0 and t1, or null outside the recording. */
  range(t0, t1) {
    let i0 = Math.floor(this.clock.toFile(t0) * this.rate);
    let i1 = Math.ceil(this.clock.toFile(t1) * this.rate);
    i0 = Math.max(0, i0);
    i1 = Math.min(this.samples.length, Math.max(i1, i0 + 1));
    if (i0 >= i1) return null;
    let lo = 0, hi = 0;
    if (i1 - i0 >= 2 * BLOCK) {
      // Whole blocks from the table, the ragged ends from the samples.
      const b0 = Math.ceil(i0 / BLOCK), b1 = Math.floor(i1 / BLOCK);
      for (let b = b0; b < b1; b++) {
        if (this.min[b] < lo) lo = this.min[b];
        if (this.max[b] > hi) hi = this.max[b];
      }
      [lo, hi] = this.scan(i0, b0 * BLOCK, lo, hi);
      [lo, hi] = this.scan(b1 * BLOCK, i1, lo, hi);
    } else {
      [lo, hi] = this.scan(i0, i1, lo, hi);
    }
    return [lo, hi];
  }

  scan(i0, i1, lo, hi) {
    for (let i = i0; i < i1; i++) {
      const v = this.samples[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    return [lo, hi];
  }
}

/**
 * Draws `peaks` on `canvas` for media times [t0, t0 + width / pps). The canvas has the CSS
 * size of the viewport; its backing store is scaled for sharp lines on high-DPI screens.
 */
export function drawWave(canvas, peaks, t0, pps, { color = "#1f5f8b", gain = 1 } = {}) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const mid = height / 2;
  g.fillStyle = "#c9d3dd";
  g.fillRect(0, mid, width, 1); // the zero line, so silence reads as silence, not as missing
  if (!peaks) return;
  g.fillStyle = color;
  const scale = (height / 2 - 2) * gain;
  for (let x = 0; x < width; x++) {
    const r = peaks.range(t0 + x / pps, t0 + (x + 1) / pps);
    if (!r) continue;
    const top = mid - Math.min(1, r[1]) * scale;
    const bottom = mid - Math.max(-1, r[0]) * scale;
    g.fillRect(x, top, 1, Math.max(1, bottom - top));
  }
}

/** Tick spacing (seconds) that keeps labels at least `minPx` apart. */
export function tickStep(pps, minPx = 80) {
  const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  return steps.find((s) => s * pps >= minPx) || steps[steps.length - 1];
}

/** The time ruler for [t0, t0 + width / pps). */
export function drawRuler(canvas, t0, pps, format) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  g.fillStyle = "#5a6878";
  g.font = "12px system-ui, sans-serif";
  g.textBaseline = "top";
  const step = tickStep(pps);
  const minor = step / 5;
  const first = Math.floor(t0 / minor) * minor;
  for (let t = first; (t - t0) * pps < width; t += minor) {
    const x = Math.round((t - t0) * pps) + 0.5;
    const major = Math.abs(t / step - Math.round(t / step)) < 1e-6;
    g.fillRect(x, major ? height - 10 : height - 5, 1, major ? 10 : 5);
    if (major) g.fillText(format(Math.abs(t) < 1e-9 ? 0 : t, step < 1 ? 1 : 0), x + 3, 2);
  }
}
