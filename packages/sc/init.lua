--- sc: self-consistency.
---
--- Samples `n` independent reasoning paths in one batch, reads each path's final
--- answer and returns the majority answer (ties go to the answer seen first).
---
--- Knobs (ctx):
---   task         string   the question (required)
---   n            integer  number of samples (default 5)
---   temperature  number   sampling temperature (default 0.8)
---   gen_tokens   integer  token cap per sample (default 600)
--- Result: ctx.result = { answer, votes, n, agreement, tally = [{answer, count}], answers }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "sc",
  version = "0.1.0",
  description = "Self-consistency: n sampled reasoning paths in one batch, majority vote on the answers",
  category = "aggregation",
}

M.vote = U.vote

function M.run(ctx)
  local task = ctx.task or error("sc: ctx.task is required")
  local n = ctx.n or 5
  if n < 1 then error("sc: ctx.n must be at least 1") end
  local prompt = string.format(
    "Question:\n%s\n\nReason about it independently and briefly, then give your final answer "
      .. "on a last line of the form\nANSWER: <answer>", task)
  local items = {}
  for i = 1, n do
    items[i] = { prompt = prompt, temperature = ctx.temperature or 0.8, max_tokens = ctx.gen_tokens or 600 }
  end
  local samples = alc.llm_batch(items)
  local answers = {}
  for i, s in ipairs(samples) do answers[i] = U.answer_of(s) end
  local winner, count, tally = U.vote(answers)
  U.record("sc.n", n)
  U.record("sc.agreement", count / n)
  ctx.result = {
    answer = winner, votes = count, n = n, agreement = count / n, tally = U.arr(tally), answers = answers,
  }
  return ctx
end

return M
