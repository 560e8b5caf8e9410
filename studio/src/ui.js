// Forms: each shows its own outcome in plain words under it (`.msg`), and sends nothing when a
// check fails. Values are checked here before any request leaves the page.
import { isAddress, parseEther } from "viem";
import { UserError } from "./wallet.js";

export function onSubmit(form, handler) {
  const msg = form.querySelector(".msg");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say(msg, "", "");
    try {
      const done = await handler(new FormData(form), (text) => say(msg, text, "info"));
      say(msg, done || "Done.", "ok");
    } catch (e) {
      say(msg, e instanceof UserError ? e.message : `Something went wrong: ${e.shortMessage || e.message}`, "error");
    } finally {
      button.disabled = false;
    }
  });
}

export function say(msg, text, kind) {
  msg.textContent = text;
  msg.className = `msg ${kind}`;
}

/** An amount of OPEN typed by a person ("1.5", "0") as wei; refuses anything else by name. */
export function amount(text, field) {
  const t = String(text || "").trim();
  if (!/^\d+(\.\d{1,18})?$/.test(t)) throw new UserError(`${field}: "${t}" is not an amount of OPEN (e.g. 1.5). Nothing was sent.`);
  return parseEther(t);
}

export function integer(text, field, min, max) {
  const t = String(text || "").trim();
  if (!/^\d+$/.test(t) || BigInt(t) < BigInt(min) || (max !== undefined && BigInt(t) > BigInt(max))) {
    throw new UserError(`${field}: "${t}" is not a whole number in ${min}..${max ?? "∞"}. Nothing was sent.`);
  }
  return BigInt(t);
}

export function address(text, field) {
  const t = String(text || "").trim();
  if (!isAddress(t, { strict: false })) throw new UserError(`${field}: "${t}" is not an address (0x and 40 hex digits). Nothing was sent.`);
  return t;
}
