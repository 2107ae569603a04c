--- critic_loop: a separate critic checks named criteria; the writer fixes failures.
---
--- Knobs (ctx):
---   task        string          the task (required)
---   criteria    array of string criteria the critic marks PASS or FAIL
---                               (default {"correct", "complete", "clear"})
---   max_rounds  integer         maximum critic rounds (default 3)
--- Result: ctx.result = { answer, passed, rounds, failures = [[criterion...] per round] }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "critic_loop",
  version = "0.1.0",
  description = "Writer and checklist critic loop: revise until every named criterion passes",
  category = "refinement",
}

--- Criteria whose line is missing or does not start with PASS.
function M.failed_criteria(review, criteria)
  local failed = {}
  for _, c in ipairs(criteria) do
    local v = (U.tagged(review, c) or ""):upper()
    if v:sub(1, 4) ~= "PASS" then failed[#failed + 1] = c end
  end
  return failed
end

function M.run(ctx)
  local task = ctx.task or error("critic_loop: ctx.task is required")
  local criteria = ctx.criteria or { "correct", "complete", "clear" }
  local max_rounds = ctx.max_rounds or 3
  local lines = {}
  for i, c in ipairs(criteria) do lines[i] = c .. ": PASS or FAIL - <reason>" end
  local draft = alc.llm(string.format("Task:\n%s\n\nWrite your answer.", task), { max_tokens = 800 })
  local failures, passed, rounds = {}, false, 0
  for r = 1, max_rounds do
    rounds = r
    local review = alc.llm(string.format(
      "Task:\n%s\n\nAnswer to review:\n%s\n\nReview the answer against each criterion, one line each:\n%s",
      task, draft, table.concat(lines, "\n")), { max_tokens = 400, system = "You are a strict reviewer." })
    local failed = M.failed_criteria(review, criteria)
    failures[r] = U.arr(failed)
    if #failed == 0 then passed = true; break end
    if r == max_rounds then break end
    draft = alc.llm(string.format(
      "Task:\n%s\n\nYour answer:\n%s\n\nThe reviewer marked these criteria as failing: %s\nReview:\n%s\n\n"
        .. "Revise the answer so every criterion passes. Reply with the answer only.",
      task, draft, table.concat(failed, ", "), review), { max_tokens = 800 })
  end
  U.record("critic_loop.rounds", rounds)
  ctx.result = { answer = draft, passed = passed, rounds = rounds, failures = failures }
  return ctx
end

return M
