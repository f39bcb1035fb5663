import { $, api, sentence } from "/static/app.js";

const form = $("login");
const error = $("error");

function showError(message) {
  error.textContent = message;
  error.hidden = false;
}

// Already signed in: go straight on.
api("/api/me").then(() => location.replace(`/counselor${location.search}`), () => {});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const username = $("username").value.trim();
  const password = $("password").value;
  if (!username || !password) {
    showError("Enter your user name and password.");
    return;
  }
  $("submit").disabled = true;
  try {
    await api("/api/login", { method: "POST", body: { username, password } });
    location.replace(`/counselor${location.search}`);
  } catch (err) {
    showError(sentence(err.message));
    $("password").select();
  } finally {
    $("submit").disabled = false;
  }
});
