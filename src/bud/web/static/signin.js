// Sign-in with an API key: asked for when the server answers 401 (no key, or a revoked one).
// The key is kept in sessionStorage (gone when the tab closes) and sent as X-API-Key.

import { getApiKey, setApiKey } from "./api.js";
import { clear, field, h, replace } from "./dom.js";

/** Show the sign-in form in the banner; `then` runs once a key is entered. */
export function showSignIn(err, then) {
  const banner = document.getElementById("banner");
  if (!banner || (!banner.hidden && banner.querySelector("#api-key"))) return;
  const input = h("input", { type: "password", id: "api-key", autocomplete: "off",
    value: getApiKey() });
  const form = h("form", { class: "inline-form", id: "sign-in" },
    field({ label: "API key", input,
      hint: "This server requires an API key (bud keys create). It is kept for this tab only." }),
    h("button", { type: "submit", class: "btn btn-primary" }, "Sign in"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setApiKey(input.value.trim());
    banner.hidden = true;
    clear(banner);
    if (then) then();
  });
  replace(banner, h("p", { class: "banner-title" }, err.message), form);
  banner.hidden = false;
  input.focus();
}

/** Forget the key of this tab. */
export function signOut() {
  setApiKey("");
}
