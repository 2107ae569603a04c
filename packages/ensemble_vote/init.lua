--- ensemble_vote: different problem-solving approaches, one batch, vote, tie-break.
---
--- Every approach answers in one batch (its own system prompt). When the winning answer
--- does not have more than `threshold` of the votes, one extra call picks among the
--- distinct answers.
---
--- Knobs (ctx):
---   task        string          the problem (required)
---   approaches  array of string approach instructions (default: four built-in ones)
---   threshold   number          required vote share, exclusive (default 0.5)
--- Result: ctx.result = { answer, share, tie_break, tally, answers }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "ensemble_vote",
  version = "0.1.0",
  description = "Ensemble of distinct solving approaches in one batch, majority vote with a tie-break call",
  category = "aggregation",
}

M.default_approaches = {
  "Work backwards from what the question asks for.",
  "Reason from first principles, defining every quantity.",
  "Estimate roughly first, then compute exactly and compare.",
  "Test your reasoning on a small concrete example before answering.",
}

function M.run(ctx)
  local task = ctx.task or error("ensemble_vote: ctx.task is required")
  local approaches = ctx.approaches or M.default_approaches
  local threshold = ctx.threshold or 0.5
  local items = {}
  for i, a in ipairs(approaches) do
    items[i] = {
      prompt = string.format("Problem:\n%s\n\nEnd with\nANSWER: <final answer>", task),
      system = "Solve problems with this approach: " .. a,
      max_tokens = 600,
    }
  end
  local replies = alc.llm_batch(items)
  local answers = {}
  for i, r in ipairs(replies) do answers[i] = U.answer_of(r) end
  local winner, count, tally = U.vote(answers)
  local share = count / #answers
  local tie_break = false
  if share <= threshold and #tally > 1 then
    local options = {}
    for i, t in ipairs(tally) do options[i] = string.format("%s (%d votes)", t.answer, t.count) end
    local pick = alc.llm(string.format(
      "Problem:\n%s\n\nIndependent solvers disagree. Their answers:\n%s\n\nDecide which answer is correct. "
        .. "End with\nANSWER: <one of the answers>", task, U.numbered(options)), { max_tokens = 500 })
    winner, tie_break = U.answer_of(pick), true
  end
  U.record("ensemble_vote.share", share)
  ctx.result = { answer = winner, share = share, tie_break = tie_break, tally = U.arr(tally), answers = answers }
  return ctx
end

return M
