--- least_to_most: reduce to simpler sub-questions, answer them in order.
---
--- One call lists sub-questions from easiest to hardest; each is then answered in
--- sequence with the earlier answers in view; a last call answers the original task.
---
--- Knobs (ctx):
---   task             string   the problem (required)
---   max_subproblems  integer  cap on sub-questions (default 5)
--- Result: ctx.result = { answer, subproblems = [{question, answer}] }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "least_to_most",
  version = "0.1.0",
  description = "Least-to-most prompting: simpler sub-questions answered in order, then the original",
  category = "reasoning",
}

function M.run(ctx)
  local task = ctx.task or error("least_to_most: ctx.task is required")
  local max = ctx.max_subproblems or 5
  local plan = alc.llm(string.format(
    "Problem:\n%s\n\nBefore solving it, list the simpler questions whose answers lead to the solution, "
      .. "easiest first, as a numbered list of at most %d items.", task, max), { max_tokens = 400 })
  local questions = U.list_items(plan, max)
  local solved = {}
  for i, q in ipairs(questions) do
    local known = {}
    for j, s in ipairs(solved) do known[j] = string.format("Q%d: %s\nA%d: %s", j, s.question, j, s.answer) end
    local a = alc.llm(string.format(
      "Problem:\n%s\n\nAlready answered:\n%s\n\nNow answer: %s\nReply with a short answer.",
      task, #known > 0 and table.concat(known, "\n") or "(nothing yet)", q), { max_tokens = 300 })
    solved[i] = { question = q, answer = U.trim(a) }
  end
  local known = {}
  for j, s in ipairs(solved) do known[j] = string.format("Q%d: %s\nA%d: %s", j, s.question, j, s.answer) end
  local final = alc.llm(string.format(
    "Problem:\n%s\n\nAnswers to the sub-questions:\n%s\n\nAnswer the problem. End with\nANSWER: <final answer>",
    task, #known > 0 and table.concat(known, "\n") or "(none)"), { max_tokens = 500 })
  U.record("least_to_most.subproblems", #solved)
  ctx.result = { answer = U.answer_of(final), subproblems = U.arr(solved) }
  return ctx
end

return M
