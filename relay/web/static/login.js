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

// Already signed in: go straight on.
api("/api/me").then((me) => location.replace(destination(me.role)), () => {});

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
    const { user } = await api("/api/login", { method: "POST", body: { username, password } });
    location.replace(destination(user.role));
  } catch (err) {
    showError(err.code === "bad_credentials" ? t("login.wrong") : sentence(err.message));
    $("password").select();
  } finally {
    $("submit").disabled = false;
  }
});
