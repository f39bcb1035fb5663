// The console's Accounts section: every account with its role and state, and the
// supervisor's actions on it (disable/enable, unlock, end sessions, reset the password).
// English words here, in one place, until the message catalogue takes them.

import { $, api, sentence, setStatus } from "/static/app.js";
import { el } from "/static/qa-util.js";

const WORDS = {
  state: (u) => [u.disabled && "disabled", u.locked && "locked", u.must_change_password && "must change password"]
    .filter(Boolean).join(", ") || "active",
  sessions: (n) => `${n} session${n === 1 ? "" : "s"}`,
  actions: { disable: "Disable", enable: "Enable", unlock: "Unlock", revoke: "End sessions", "reset-password": "Reset password" },
  confirm: { disable: (n) => `Disable ${n}? Their sessions end now.`, "reset-password": (n) => `Reset ${n}'s password? Their sessions end now.` },
  done: (verb, n) => `${WORDS.actions[verb]}: done for ${n}.`,
  password: (n, p) => `New password for ${n} (shown only now; it must be changed at the next sign-in): ${p}`,
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
    }, WORDS.actions[verb]))))));
}
