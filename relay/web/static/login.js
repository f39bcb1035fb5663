import { $, api, sentence } from "/static/app.js";
import { languageSwitch, t, translatePage } from "/static/i18n.js";

translatePage();
languageSwitch($("languages"));

const form = $("login");
const error = $("error");

function showError(message) {
  error.textContent = message;
  error.hidden = false;
}

// Where a page sent us back from (?next=/qa#c_...), if it is one of ours: never another site.
const SAFE_NEXT = /^\/(qa|counselor|supervisor)(?=$|[?#])/;

/** The page for this role (QA staff review calls, supervisors watch them, counselors take them), keeping ?measure=1 and the like. */
function destination(role) {
  const params = new URLSearchParams(location.search);
  const next = params.get("next");
  params.delete("next");
  if (next && SAFE_NEXT.test(next)) return next;
  const query = params.toString() ? `?${params}` : "";
  const home = { qa: "/qa", supervisor: "/supervisor" }[role] || "/counselor";
  return `${home}${query}`;
}

// A password set by the server or a reset: the session may do nothing until it is changed.
let changingFor = null;

function askForNewPassword(user, current = "") {
  changingFor = user;
  if (!$("change")) {
    const change = $("change-template").content.firstElementChild.cloneNode(true);
    translatePage(change);
    form.after(change);
    change.addEventListener("submit", submitChange);
  }
  form.hidden = true;
  $("current-password").value = current;
  (current ? $("new-password") : $("current-password")).focus();
}

function showChangeError(message) {
  $("change-error").textContent = message;
  $("change-error").hidden = false;
}

async function submitChange(event) {
  event.preventDefault();
  $("change-error").hidden = true;
  const current = $("current-password").value;
  const next = $("new-password").value;
  if (!current || !next) {
    showChangeError(t("login.empty_password"));
    return;
  }
  if (next !== $("repeat-password").value) {
    showChangeError(t("login.mismatch"));
    return;
  }
  $("change-submit").disabled = true;
  try {
    await api("/api/me/password", { method: "POST", body: { current_password: current, new_password: next } });
    location.replace(destination(changingFor.role));
  } catch (err) {
    showChangeError(err.status === 401 ? t("login.session_ended") : sentence(err.message));
  } finally {
    $("change-submit").disabled = false;
  }
}

// Already signed in: go straight on (or change the password first).
api("/api/me").then((me) => (me.must_change_password ? askForNewPassword(me) : location.replace(destination(me.role))), () => {});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const username = $("username").value.trim();
  const password = $("password").value;
  if (!username || !password) {
    showError(t("login.empty"));
    return;
  }
  $("submit").disabled = true;
  try {
    const signed = await api("/api/login", { method: "POST", body: { username, password } });
    if (signed.must_change_password) askForNewPassword(signed.user, password);
    else location.replace(destination(signed.user.role));
  } catch (err) {
    showError(err.code === "bad_credentials" ? t("login.wrong") : sentence(err.message));
    $("password").select();
  } finally {
    $("submit").disabled = false;
  }
});
