// Sign in with a token: who it is decides the page (a patient's own view, or the station).
import { adoptLinkToken, api, signIn, token } from "./session.js";

function destination(kind) {
  const next = new URLSearchParams(location.search).get("next");
  // Only a path of this site, never another site named in the link.
  if (next && next.startsWith("/app/") && !next.startsWith("//")) return next;
  return kind === "patient" ? "/app/mine" : "/app/";
}

async function enter() {
  const me = await api("/access", { redirect: false });
  location.replace(destination(me.kind));
}

adoptLinkToken();
const form = document.getElementById("signin");
const error = document.getElementById("error");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  signIn(document.getElementById("token").value);
  try {
    await enter();
  } catch (problem) {
    sessionStorage.clear();
    error.textContent =
      problem.status === 401 || problem.status === 403
        ? "This token is not valid (it may have expired or been revoked). Ask for a new one."
        : `Vigil could not be reached: ${problem.message}`;
  }
});
if (token()) enter().catch(() => sessionStorage.clear());
