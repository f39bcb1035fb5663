// A/B playback of a logged call: the customer's original (A) and what the counselor heard
// (B), switched at the same media time so the reviewer hears exactly what a mute took out;
// the counselor's own voice (C) alone, or mixed under A or B to hear the conversation.

// Decoded audio is kept as mono at 24 kHz: plenty for speech, and a quarter of the memory
// of the browser's default 48 kHz stereo (a 30-minute call is ~170 MB per stream at 48 kHz
// stereo float, ~43 MB this way).
export const DECODE_RATE = 24000;
const FADE_S = 0.012; // a short crossfade on A/B switches and stops: no click

/** Ogg/Opus bytes -> a mono AudioBuffer. Decoded offline: no audio device needed, no autoplay prompt. */
export async function decodeMono(bytes) {
  const offline = new OfflineAudioContext(1, 1, DECODE_RATE);
  const decoded = await offline.decodeAudioData(bytes);
  if (decoded.numberOfChannels === 1) return decoded;
  const mono = new Float32Array(decoded.length);
  for (let c = 0; c < decoded.numberOfChannels; c++) {
    const data = decoded.getChannelData(c);
    for (let i = 0; i < data.length; i++) mono[i] += data[i];
  }
  const scale = 1 / decoded.numberOfChannels;
  for (let i = 0; i < mono.length; i++) mono[i] *= scale;
  const buffer = new AudioBuffer({ length: decoded.length, numberOfChannels: 1, sampleRate: decoded.sampleRate });
  buffer.copyToChannel(mono, 0);
  return buffer;
}

export class ABPlayer {
  /**
   * start, end: the timeline's first and last media seconds (start <= 0: a side may have
   * joined before the customer's first audio); onChange(): play state or stream changed.
   * It always starts on A, the customer's original, whichever recording decodes first.
   */
  constructor({ start = 0, end, onChange }) {
    this.start = Math.min(0, start);
    this.end = end;
    this.onChange = onChange || (() => {});
    this.ctx = null; // made on the first Play (a user gesture), not at page load
    this.tracks = {}; // stream -> {buffer, clock}: clock places the file on media time (recordingClock)
    this.stream = "customer";
    this.mix = false; // the counselor's voice mixed under A or B
    this.position = 0; // media time while paused
    this.voice = null; // {parts: [{source, gain}], origin}: origin = ctx time at media time 0
  }

  add(stream, buffer, clock) {
    this.tracks[stream] = { buffer, clock };
  }

  get playing() {
    return this.voice !== null;
  }

  /** The streams heard now: the chosen one, and the counselor's voice when mixed in. */
  get heard() {
    const streams = [this.stream];
    if (this.mix && this.stream !== "counselor" && this.tracks.counselor) streams.push("counselor");
    return streams.filter((s) => this.tracks[s]);
  }

  /** Media time now. */
  now() {
    if (!this.voice) return this.position;
    return Math.min(this.end, this.ctx.currentTime - this.voice.origin);
  }

  async play() {
    if (this.voice || this.starting || !this.tracks[this.stream]) return;
    this.starting = true; // a double click must not start two voices while the context wakes up
    try {
      if (!this.ctx) this.ctx = new AudioContext({ latencyHint: "playback" });
      if (this.ctx.state !== "running") await this.ctx.resume();
    } finally {
      this.starting = false;
    }
    if (this.voice || this.closed) return;
    if (this.position >= this.end - 0.05) this.position = this.start; // Play at the end starts over
    this.voice = this.begin(this.position, false);
    this.onChange();
  }

  pause() {
    if (!this.voice) return;
    this.position = this.now();
    this.stop(this.voice);
    this.voice = null;
    this.onChange();
  }

  toggle() {
    return this.playing ? this.pause() : this.play();
  }

  seek(t) {
    const to = Math.max(this.start, Math.min(this.end, t));
    if (!this.voice) {
      this.position = to;
      return;
    }
    this.restart(to);
  }

  /** A <-> B (or C) without losing the place: the other stream goes on from the same media time. */
  use(stream) {
    if (stream === this.stream || !this.tracks[stream]) return;
    this.stream = stream;
    if (this.voice) this.restart(this.now());
    this.onChange();
  }

  /** The counselor's voice under the customer's (A or B), or not. */
  setMix(on) {
    if (on === this.mix) return;
    this.mix = on;
    if (this.voice) this.restart(this.now());
    this.onChange();
  }

  restart(at) {
    this.stop(this.voice);
    this.voice = this.begin(at, true);
  }

  begin(at, fadeIn) {
    const ctx = this.ctx;
    const now = ctx.currentTime;
    const voice = { parts: [], origin: now - at };
    let playing = 0;
    for (const stream of this.heard) {
      const { buffer, clock } = this.tracks[stream];
      const source = new AudioBufferSourceNode(ctx, { buffer });
      const gain = new GainNode(ctx, { gain: fadeIn ? 0 : 1 });
      source.connect(gain).connect(ctx.destination);
      if (fadeIn) gain.gain.linearRampToValueAtTime(1, now + FADE_S);
      // Each recording sits at its own place: wait for one that starts later, skip into one that started earlier.
      const offset = clock.toFile(at);
      source.start(now + Math.max(0, -offset), Math.max(0, offset));
      playing += 1;
      source.onended = () => {
        // Every part ran off its recording's end (not stopped by us): playback is over.
        if (this.voice !== voice || --playing > 0) return;
        this.voice = null;
        this.position = Math.min(this.end, ctx.currentTime - voice.origin);
        this.onChange();
      };
      voice.parts.push({ stream, source, gain });
    }
    return voice;
  }

  stop(voice) {
    const t = this.ctx.currentTime;
    for (const { source, gain } of voice.parts) {
      source.onended = null;
      gain.gain.cancelScheduledValues(t);
      gain.gain.setValueAtTime(gain.gain.value, t);
      gain.gain.linearRampToValueAtTime(0, t + FADE_S);
      source.stop(t + FADE_S);
    }
  }

  close() {
    this.closed = true;
    if (this.voice) this.stop(this.voice);
    this.voice = null;
    if (this.ctx) this.ctx.close();
  }
}
