// The console's Accounts section: every account with its role and state, and the
// supervisor's actions on it (disable/enable, unlock, end sessions, reset the password).

import { $, api, sentence, setStatus } from "/static/app.js";
import { t } from "/static/i18n.js";
import { el } from "/static/qa-util.js";

const VERB_KEYS = {
  disable: "accounts.disable", enable: "accounts.enable", unlock: "accounts.unlock", revoke: "accounts.revoke",
  "reset-password": "accounts.reset",
};
const WORDS = {
  state: (u) => [u.disabled && t("accounts.state.disabled"), u.locked && t("accounts.state.locked"),
    u.must_change_password && t("accounts.state.must_change")].filter(Boolean).join(", ") || t("accounts.state.active"),
  sessions: (n) => t(n === 1 ? "accounts.session" : "accounts.sessions", { n }),
  action: (verb) => t(VERB_KEYS[verb]),
  confirm: {
    disable: (n) => t("accounts.confirm_disable", { name: n }),
    "reset-password": (n) => t("accounts.confirm_reset", { name: n }),
  },
  done: (verb, n) => t("accounts.done", { action: t(VERB_KEYS[verb]), name: n }),
  password: (n, p) => t("accounts.new_password", { name: n, password: p }),
};

function actionsFor(u, me) {
  const verbs = [u.disabled ? "enable" : "disable", "revoke", "reset-password"];
  if (u.locked) verbs.unshift("unlock");
  return verbs.filter((verb) => !(verb === "disable" && u.name === me.name));
}

async function act(verb, user, me) {
  const ask = WORDS.confirm[verb];
  if (ask && !window.confirm(ask(user.name))) return;
  const status = $("accounts-status");
  try {
    const answer = await api(`/api/users/${encodeURIComponent(user.name)}/${verb}`, { method: "POST", body: {} });
    $("account-password").hidden = !answer.password;
    $("account-password").textContent = answer.password ? WORDS.password(user.name, answer.password) : "";
    setStatus(status, WORDS.done(verb, user.name), "ok");
  } catch (err) {
    setStatus(status, sentence(err.message), "bad");
  }
  await loadAccounts(me);
}

export async function loadAccounts(me) {
  const { users } = await api("/api/users");
  $("accounts-card").hidden = false;
  $("accounts").tBodies[0].replaceChildren(...users.map((u) => el("tr", { dataset: { user: u.name } },
    el("td", {}, u.name),
    el("td", {}, u.role),
    el("td", { class: "account-state" }, WORDS.state(u)),
    el("td", {}, WORDS.sessions(u.sessions)),
    el("td", {}, ...actionsFor(u, me).map((verb) => el("button", {
      type: "button", class: "secondary", dataset: { action: verb }, onclick: () => act(verb, u, me),
    }, WORDS.action(verb)))))));
}
