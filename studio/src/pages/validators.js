// Validators: stake, commission, delegators, rewards by source, slashing; register or delegate.
import { logs, ol, read } from "../chain.js";
import { $, addr, badge, html, num, open, ppm, set, table } from "../html.js";
import { amount, onSubmit } from "../ui.js";
import { UserError, send } from "../wallet.js";

/** An account's rewards split by where they came from: fee splits by role, and block releases (the rest of rewardsOf). */
export async function rewardSources(account) {
  const [total, paid] = await Promise.all([read("Economics", "rewardsOf", [account]), logs("Attribution", "RewardPaid", { account })]);
  const by = { contributor: 0n, "model owner": 0n, "validator work": 0n };
  const names = ["contributor", "model owner", "validator work"];
  for (const p of paid) by[names[p.role]] += p.amount;
  const fees = Object.values(by).reduce((a, b) => a + b, 0n);
  return { total, ...by, "block rewards": total - fees };
}

export async function render(el) {
  set(el, html`<h1>Validators</h1><div id="validator-list"></div>
    <section><h2>Delegators</h2><div id="delegators"></div></section>
    <section><h2>Slashing</h2><div id="slashing"></div></section>
    <div class="two">
    <section><h2>Register as a validator</h2><form id="register-form" class="grid">
      <label>Self stake (OPEN) <input name="stake" value="100" inputmode="decimal"></label>
      <label>Commission (%) <input name="commission" value="5" inputmode="decimal"></label>
      <label class="check"><input type="checkbox" name="gpu" checked> GPU inference</label>
      <button type="submit">Register</button><p class="msg" role="status"></p></form></section>
    <section><h2>Delegate</h2><form id="delegate-form" class="grid">
      <label>Validator <select name="validator" id="delegate-to"></select></label>
      <label>Amount (OPEN) <input name="amount" value="10" inputmode="decimal"></label>
      <button type="submit">Delegate</button><p class="msg" role="status"></p></form></section></div>
    <section><h2>Undelegate, claim, withdraw</h2><form id="manage-form" class="grid">
      <label>Validator <select name="validator" id="manage-validator"></select></label>
      <label>Amount to undelegate (OPEN) <input name="amount" value="0" inputmode="decimal"></label>
      <label>Action <select name="action"><option value="undelegate">undelegate (unbonds, then withdraw)</option>
        <option value="claimRewards">claim delegation rewards</option><option value="withdraw">withdraw what has unbonded</option></select></label>
      <button type="submit">Send</button><p class="msg" role="status"></p></form></section>`);
  onSubmit($("#register-form"), async (f, status) => {
    const stake = amount(f.get("stake"), "Self stake");
    const pct = f.get("commission").trim();
    if (!/^\d+(\.\d{1,4})?$/.test(pct) || Number(pct) > 100) throw new UserError(`Commission: "${pct}" is not a percentage 0..100. Nothing was sent.`);
    const commission = Math.round(Number(pct) * 10_000);
    const r = await send({ module: "Staking", fn: "registerValidator", args: [commission, f.get("gpu") ? 1 : 0], value: stake, status });
    return `Registered in block ${r.blockNumber}.`;
  });
  onSubmit($("#delegate-form"), async (f, status) => {
    const value = amount(f.get("amount"), "Amount");
    const r = await send({ module: "Staking", fn: "delegate", args: [f.get("validator")], value, status });
    return `Delegated in block ${r.blockNumber}.`;
  });
  onSubmit($("#manage-form"), async (f, status) => {
    const action = f.get("action");
    const args = action === "undelegate" ? [f.get("validator"), amount(f.get("amount"), "Amount to undelegate")]
      : action === "claimRewards" ? [f.get("validator")] : [];
    const r = await send({ module: "Staking", fn: action, args, status });
    return `Done in block ${r.blockNumber}.`;
  });
  let known = "";
  return async () => {
    const [validators, delegated, slashed] = await Promise.all([ol("getValidators"), logs("Staking", "Delegated"), logs("Staking", "Slashed")]);
    const sources = await Promise.all(validators.map((v) => rewardSources(v.address)));
    set($("#validator-list"), table(["validator", "self stake", "delegated", "commission", "GPU", "status", "rewards: block", "rewards: work fees", "slashed"],
      validators.map((v, i) => [addr(v.address), open(v.selfStake), open(v.delegatedStake), ppm(v.commissionPpm),
        num(v.capabilities) & 1 ? "yes" : "no", badge(v.active ? "active" : "inactive"), open(sources[i]["block rewards"]),
        open(sources[i]["validator work"]), num(v.slashed) ? html`<b class="error">${open(v.slashed)}</b>` : "—"]),
      "No validator has staked yet."));
    const key = validators.map((v) => v.address).join();
    if (key !== known) {
      known = key;
      for (const id of ["#delegate-to", "#manage-validator"]) {
        set($(id), html`${validators.map((v) => html`<option value="${v.address}">${v.address}</option>`)}`);
      }
    }
    const pairs = [...new Map(delegated.filter((d) => d.delegator.toLowerCase() !== d.validator.toLowerCase())
      .map((d) => [`${d.delegator}/${d.validator}`, d])).values()];
    const rows = await Promise.all(pairs.map(async (d) => [addr(d.delegator), addr(d.validator),
      open(await read("Staking", "delegation", [d.delegator, d.validator])),
      open(await read("Staking", "pendingRewards", [d.delegator, d.validator]))]));
    set($("#delegators"), table(["delegator", "validator", "delegated now", "pending rewards"], rows, "No delegations yet."));
    set($("#slashing"), table(["validator", "amount", "block"], slashed.map((s) => [addr(s.validator), open(s.amount), Number(s.blockNumber)]),
      "Nobody has been slashed."));
  };
}

