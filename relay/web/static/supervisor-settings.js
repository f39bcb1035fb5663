// The console's delay and policy controls: the server's default for calls created from now
// on, and a live call's own, heard at once (a rise slows playout, pitch kept, until the
// new delay is reached; a fall shortens the customer's pauses, never speech).

import { api, sentence, setStatus } from "/static/app.js";
import { t } from "/static/i18n.js";
import { el } from "/static/qa-util.js";

const NUMBERS = ["delay_s", "max_s"];
const CHOICES = { undecided_policy: ["play", "mute"], mute_sound: ["silence", "beep"] };

function changesOf(form, current) {
  const changes = {};
  for (const name of NUMBERS) {
    const value = form.elements[name].valueAsNumber;
    if (value !== current[name]) changes[name] = Number.isNaN(value) ? form.elements[name].value : value;
  }
  for (const name of Object.keys(CHOICES)) {
    if (form.elements[name].value !== current[name]) changes[name] = form.elements[name].value;
  }
  return changes;
}

/** The four settings as a form filled with `current`; Apply PATCHes what changed to `path`. */
export function settingsForm(id, path, current, onApplied = () => {}) {
  const control = (name) => {
    if (NUMBERS.includes(name)) {
      return el("input", { id: `${id}-${name}`, name, type: "number", min: "0", max: "30", step: "0.1",
        value: String(current[name]) });
    }
    const select = el("select", { id: `${id}-${name}`, name },
      ...CHOICES[name].map((v) => el("option", { value: v }, t(`settings.${name}.${v}`))));
    select.value = current[name];
    return select;
  };
  const fields = [...NUMBERS, ...Object.keys(CHOICES)].map((name) => el("div", { class: "field" },
    el("label", { for: `${id}-${name}` }, t(`settings.${name}`)), control(name)));
  const status = el("p", { class: "status", role: "status", "aria-live": "polite" });
  const form = el("form", { id, class: "settings-form" }, ...fields,
    el("div", { class: "row" }, el("button", { type: "submit", dataset: { action: "apply" } }, t("settings.apply"))),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = changesOf(form, current);
    if (!Object.keys(changes).length) {
      setStatus(status, t("settings.unchanged"), "warn");
      return;
    }
    try {
      const answer = await api(path, { method: "PATCH", body: changes });
      Object.assign(current, answer.settings);
      setStatus(status, t("settings.applied", { delay: current.delay_s.toFixed(1) }), "ok");
      onApplied(current);
    } catch (err) {
      setStatus(status, sentence(err.message), "bad");
    }
  });
  return form;
}

/** The default's card: its form, and the word that the config file stays the source. */
export async function loadDefaults(card) {
  const { settings } = await api("/api/settings");
  card.querySelector(".settings-slot").replaceChildren(settingsForm("default-settings", "/api/settings", settings));
  card.hidden = false;
}
