// AudioWorklet for measurement (?measure=1): finds onsets (the first loud sample after
// a quiet stretch) and the level of a few tone frequencies in one audio stream.
class Meter extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions || {};
    this.threshold = o.threshold ?? 0.08;
    this.quietNeeded = Math.round((o.quietS ?? 0.1) * sampleRate);
    this.quiet = 0; // no onset until a quiet stretch has been seen
    this.freqs = o.freqs || [];
    // Goertzel over windows of 2048 samples: about 23 Hz resolution at 48 kHz.
    this.window = 2048;
    this.coeffs = this.freqs.map((f) => 2 * Math.cos((2 * Math.PI * f) / sampleRate));
    this.s1 = this.freqs.map(() => 0);
    this.s2 = this.freqs.map(() => 0);
    this.energy = 0;
    this.n = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const x = channel[i];
      if (Math.abs(x) >= this.threshold) {
        if (this.quiet >= this.quietNeeded) {
          this.port.postMessage({ type: "onset", t: currentTime + i / sampleRate, now: currentTime });
        }
        this.quiet = 0;
      } else {
        this.quiet += 1;
      }
      this.energy += x * x;
      for (let k = 0; k < this.coeffs.length; k++) {
        const s0 = x + this.coeffs[k] * this.s1[k] - this.s2[k];
        this.s2[k] = this.s1[k];
        this.s1[k] = s0;
      }
      if (++this.n === this.window) this.flush();
    }
    return true;
  }

  flush() {
    const n = this.n;
    // Amplitude of each tone (a full-scale sine reads 1.0) and the window's RMS.
    const tones = this.coeffs.map((c, k) => {
      const power = this.s1[k] ** 2 + this.s2[k] ** 2 - c * this.s1[k] * this.s2[k];
      return (2 * Math.sqrt(Math.max(power, 0))) / n;
    });
    this.port.postMessage({ type: "level", t: currentTime, rms: Math.sqrt(this.energy / n), tones });
    this.s1.fill(0);
    this.s2.fill(0);
    this.energy = 0;
    this.n = 0;
  }
}

registerProcessor("callguard-meter", Meter);
