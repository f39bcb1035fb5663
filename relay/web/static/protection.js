// The counselor's "safe" light, as on a broadcast delay: whether what they hear has been
// checked, from the moderation state and the live stats the page already gets.

// The moderation states the server reports (docs/API.md); any other reads as unavailable.
const STATES = ["ready", "loading", "fetching", "off", "unavailable", "degraded"];
// Unchecked audio played this recently keeps the light at "degraded", so a blip is seen.
export const DEGRADED_HOLD_S = 5;

/**
 * {level: "protected" | "degraded" | "off", reason, lag_s, unchecked_s}; `reason` names the
 * message (counselor.moderation.<reason>). `sinceUnchecked` is the seconds since the
 * played-unchecked figure last grew (Infinity when it has not).
 */
export function protection(moderation, stats, sinceUnchecked = Infinity) {
  if (!moderation) return { level: "off", reason: "checking" };
  if (moderation.state !== "ready") {
    return { level: "off", reason: STATES.includes(moderation.state) ? moderation.state : "unavailable" };
  }
  const lag = stats && stats.cleared_until_s != null ? Math.max(0, stats.received_media_s - stats.cleared_until_s) : 0;
  // Checks further behind than the buffer is deep: what plays now has not been judged.
  const behind = stats != null && lag > stats.buffered_s + 0.05;
  if (behind || sinceUnchecked < DEGRADED_HOLD_S) {
    return { level: "degraded", reason: "degraded_lag", lag_s: lag, unchecked_s: stats ? stats.undecided_s : 0 };
  }
  return { level: "protected", reason: "ready", lag_s: lag };
}
