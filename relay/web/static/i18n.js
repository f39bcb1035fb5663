// The pages' words in Korean (the default) and English, from one catalogue (messages.js).
//
// The language is the one asked for in ?lang=, else the one chosen before on this browser,
// else the first of the browser's languages that the catalogue has, else Korean. A key
// missing in a language falls back to English, then to the key itself (and is noted, so a
// test can see it).
import { MESSAGES } from "/static/messages.js";

export const LANGUAGES = { ko: "한국어", en: "English" };
const STORE_KEY = "callguard-lang";

function choose() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked && asked in MESSAGES) {
    localStorage.setItem(STORE_KEY, asked);
    return asked;
  }
  const stored = localStorage.getItem(STORE_KEY);
  if (stored && stored in MESSAGES) return stored;
  for (const tag of navigator.languages || [navigator.language || ""]) {
    const base = tag.toLowerCase().split("-")[0];
    if (base in MESSAGES) return base;
  }
  return "ko";
}

export const lang = choose();
const missing = (window.callguardMissingMessages = window.callguardMissingMessages || []);

/** The message `key` in the page's language, with {name} filled from `vars`. */
export function t(key, vars = {}) {
  let text = MESSAGES[lang][key] ?? MESSAGES.en[key];
  if (text === undefined) {
    missing.push(key);
    text = key;
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/**
 * Fills the page's fixed words: data-i18n="key" sets the text, and data-i18n-attr=
 * "aria-label:key; placeholder:key" sets attributes. The HTML carries the English as a
 * fallback for a browser without modules.
 */
export function translatePage(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":").map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
  const title = document.querySelector("title[data-i18n]");
  if (title) document.title = t(title.dataset.i18n);
}

/** Links to the page in the other languages, kept for next time on this browser. */
export function languageSwitch(container) {
  if (!container) return;
  container.replaceChildren();
  for (const [code, name] of Object.entries(LANGUAGES)) {
    if (code === lang) continue;
    const link = document.createElement("a");
    const url = new URL(location.href);
    url.searchParams.set("lang", code);
    link.href = url.pathname + url.search + url.hash;
    link.lang = code;
    link.hreflang = code;
    link.textContent = name;
    container.append(link);
  }
}
