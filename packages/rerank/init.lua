--- rerank: generate k candidates, then select one by rating or by a pairwise knockout.
---
--- Knobs (ctx):
---   task         string   the task (required)
---   k            integer  candidates (default 4)
---   mode         string   "rating" (each candidate scored 1-10 in one batch; ties go to
---                         the earlier candidate) or "pairwise" (knockout rounds, one batch
---                         of comparisons per round; an odd candidate gets a bye) (default "rating")
---   temperature  number   sampling temperature of the candidates (default 0.9)
--- Result: ctx.result = { answer, best_index, candidates, scores | rounds }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "rerank",
  version = "0.1.0",
  description = "Generate k candidates in one batch, then pick one by ratings or pairwise knockout",
  category = "selection",
}

--- Reads `BETTER: 1|2` from a comparison; anything else keeps the first.
function M.parse_better(text)
  local v = U.tagged(text, "BETTER") or ""
  if v:match("^%s*2") then return 2 end
  return 1
end

function M.run(ctx)
  local task = ctx.task or error("rerank: ctx.task is required")
  local k, mode = ctx.k or 4, ctx.mode or "rating"
  if mode ~= "rating" and mode ~= "pairwise" then error("rerank: ctx.mode must be 'rating' or 'pairwise'") end
  local items = {}
  for i = 1, k do
    items[i] = {
      prompt = string.format("Task:\n%s\n\nWrite a complete answer (attempt %d).", task, i),
      temperature = ctx.temperature or 0.9, max_tokens = 700,
    }
  end
  local candidates = alc.llm_batch(items)
  local result = { candidates = candidates }
  if mode == "rating" then
    local rate = {}
    for i, c in ipairs(candidates) do
      rate[i] = { prompt = string.format(
        "Task:\n%s\n\nCandidate answer:\n%s\n\nJudge correctness and usefulness. Reply with a line SCORE: <1-10>.",
        task, c), max_tokens = 100 }
    end
    local ratings = alc.llm_batch(rate)
    local scores, best = {}, 1
    for i, r in ipairs(ratings) do
      scores[i] = U.score_of(r, 1, 10, 1)
      if scores[i] > scores[best] then best = i end
    end
    result.scores, result.best_index = scores, best
  else
    local alive, rounds = {}, 0
    for i = 1, #candidates do alive[i] = i end
    while #alive > 1 do
      rounds = rounds + 1
      local cmp = {}
      for p = 1, #alive - 1, 2 do
        cmp[#cmp + 1] = { prompt = string.format(
          "Task:\n%s\n\nAnswer 1:\n%s\n\nAnswer 2:\n%s\n\nWhich answer is better? Reply with a line BETTER: 1 or BETTER: 2.",
          task, candidates[alive[p]], candidates[alive[p + 1]]), max_tokens = 100 }
      end
      local verdicts = alc.llm_batch(cmp)
      local next_alive = {}
      for j, v in ipairs(verdicts) do
        local a, b = alive[2 * j - 1], alive[2 * j]
        next_alive[#next_alive + 1] = M.parse_better(v) == 2 and b or a
      end
      if #alive % 2 == 1 then next_alive[#next_alive + 1] = alive[#alive] end
      alive = next_alive
    end
    result.rounds, result.best_index = rounds, alive[1]
  end
  result.answer = candidates[result.best_index]
  U.record("rerank.k", k)
  U.record("rerank.best_index", result.best_index)
  ctx.result = result
  return ctx
end

return M
