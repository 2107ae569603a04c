--- verify: answer, check the answer, retry with the checker's objections.
---
--- Knobs (ctx):
---   task         string   the problem (required)
---   max_retries  integer  re-attempts after a failed check (default 2)
--- Result: ctx.result = { answer, verified, attempts, checks = [text] }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "verify",
  version = "0.1.0",
  description = "Solve, verify independently, and retry with the verifier's objections until it passes",
  category = "verification",
}

--- True when a check's `VERDICT:` line says CORRECT (and not INCORRECT).
function M.passed(check)
  local v = (U.tagged(check, "VERDICT") or ""):upper()
  return v:find("CORRECT", 1, true) ~= nil and v:find("INCORRECT", 1, true) == nil
end

function M.run(ctx)
  local task = ctx.task or error("verify: ctx.task is required")
  local max_retries = ctx.max_retries or 2
  local reply = alc.llm(string.format(
    "Problem:\n%s\n\nSolve it. End with\nANSWER: <final answer>", task), { max_tokens = 800 })
  local checks, verified, attempts = {}, false, 1
  for i = 0, max_retries do
    local check = alc.llm(string.format(
      "Problem:\n%s\n\nProposed solution:\n%s\n\nCheck the solution independently: recompute key steps "
        .. "and test the answer against the problem's conditions. Then write\nVERDICT: CORRECT or VERDICT: INCORRECT",
      task, reply), { max_tokens = 500 })
    checks[#checks + 1] = check
    if M.passed(check) then verified = true; break end
    if i == max_retries then break end
    reply = alc.llm(string.format(
      "Problem:\n%s\n\nA previous solution was rejected:\n%s\n\nReviewer's objections:\n%s\n\n"
        .. "Solve the problem again, avoiding those mistakes. End with\nANSWER: <final answer>",
      task, reply, check), { max_tokens = 800 })
    attempts = attempts + 1
  end
  U.record("verify.attempts", attempts)
  U.record("verify.verified", verified)
  ctx.result = { answer = U.answer_of(reply), verified = verified, attempts = attempts, checks = checks }
  return ctx
end

return M
