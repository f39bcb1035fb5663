// Measurement for tests (?measure=1): records onsets and tone levels of the local
// microphone and of the received audio, stamped in wall-clock milliseconds
// (performance.timeOrigin + performance.now(), comparable across pages on one machine).
export const FREQS = [600, 900];

export class Meters {
  constructor() {
    this.ctx = new AudioContext({ sampleRate: 48000 });
    this.streams = {};
    this.ready = this.ctx.audioWorklet.addModule("/static/meter-worklet.js");
    // Nodes must reach the destination to be processed; a zero gain keeps them silent.
    this.sink = new GainNode(this.ctx, { gain: 0 });
    this.sink.connect(this.ctx.destination);
  }

  /** The wall-clock time (ms) at which the audio of context time `t` was processed. */
  wallTime(t) {
    const stamp = this.ctx.getOutputTimestamp();
    if (stamp.performanceTime > 0) {
      return performance.timeOrigin + stamp.performanceTime + (t - stamp.contextTime) * 1000;
    }
    return performance.timeOrigin + performance.now() - (this.ctx.currentTime - t) * 1000;
  }

  async attach(name, stream) {
    await this.ready;
    if (this.ctx.state !== "running") await this.ctx.resume();
    const old = this.streams[name];
    if (old) old.source.disconnect();
    const record = old ? old.record : { onsets: [], levels: [] };
    const source = this.ctx.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(this.ctx, "callguard-meter", { processorOptions: { freqs: FREQS } });
    node.port.onmessage = ({ data }) => {
      const at = this.wallTime(data.t);
      if (data.type === "onset") {
        record.onsets.push(at);
        if (record.onsets.length > 2000) record.onsets.shift();
      } else {
        record.levels.push({ at, rms: data.rms, tones: data.tones });
        if (record.levels.length > 2000) record.levels.shift();
      }
    };
    source.connect(node).connect(this.sink);
    this.streams[name] = { source, node, record };
  }

  /** What the test reads: {name: {onsets: [ms...], levels: [{at, rms, tones}...]}}. */
  snapshot() {
    const out = { freqs: FREQS, state: this.ctx.state };
    for (const [name, { record }] of Object.entries(this.streams)) out[name] = record;
    return out;
  }
}
