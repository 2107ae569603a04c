--- rank: generate candidates, then a pairwise knockout tournament picks one.
---
--- Samples `candidates` answers in one batch, then a judge compares them in pairs;
--- every round's matches are independent and go out as one batch. An odd survivor
--- gets a bye. The last survivor's final answer is the result.
---
--- Knobs (ctx):
---   task        string   the question (required)
---   candidates  integer  number of candidates (default 4)
---   criteria    string   what the judge compares on (default "quality, accuracy, completeness")
---   gen_tokens  integer  token cap per candidate (default 500)
--- Result: ctx.result = { answer, best, best_index, candidates, matches = [{a, b, winner}] }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "rank",
  version = "0.1.0",
  description = "Rank: k candidates in one batch, pairwise judge knockout (one batch per round) picks the winner",
  category = "selection",
  paper = "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena, Zheng et al., 2023",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", candidates = "integer?", criteria = "string?", gen_tokens = "integer?" },
      result = { answer = "string", best = "string", best_index = "integer", candidates = "array", matches = "array" },
    },
  },
}

--- "A" or "B" from a judge reply: its WINNER line, else the first standalone A/B; A by default.
function M.pick(reply)
  local w = U.tagged(reply, "WINNER") or tostring(reply or "")
  local l = U.trim(w):upper()
  if l:match("^B%f[%W]") or l == "B" then return "B" end
  if l:match("^A%f[%W]") or l == "A" then return "A" end
  if l:match("%f[%w]B%f[%W]") and not l:match("%f[%w]A%f[%W]") then return "B" end
  return "A"
end

function M.run(ctx)
  local task = ctx.task or error("rank: ctx.task is required")
  local n = ctx.candidates or 4
  if n < 1 then error("rank: ctx.candidates must be at least 1") end
  local criteria = ctx.criteria or "quality, accuracy, completeness"

  local gen = string.format(
    "Question:\n%s\n\nWrite a careful, self-contained answer. End with a line\nANSWER: <answer>", task)
  local items = {}
  for i = 1, n do items[i] = { prompt = gen, temperature = 0.9, max_tokens = ctx.gen_tokens or 500 } end
  local cands = alc.llm_batch(items)

  local alive = {}
  for i = 1, n do alive[i] = i end
  local matches = {}
  while #alive > 1 do
    local pairs_, jobs = {}, {}
    for i = 1, #alive - 1, 2 do
      local a, b = alive[i], alive[i + 1]
      pairs_[#pairs_ + 1] = { a, b }
      jobs[#jobs + 1] = {
        prompt = string.format(
          "Question:\n%s\n\nResponse A:\n%s\n\nResponse B:\n%s\n\nCompare the two responses on: %s. "
            .. "Explain briefly, then end with a line\nWINNER: A or B", task, cands[a], cands[b], criteria),
        max_tokens = 300,
      }
    end
    local verdicts = alc.llm_batch(jobs)
    local next_ = {}
    for j, p in ipairs(pairs_) do
      local w = M.pick(verdicts[j]) == "B" and p[2] or p[1]
      matches[#matches + 1] = { a = p[1], b = p[2], winner = w }
      next_[#next_ + 1] = w
    end
    if #alive % 2 == 1 then next_[#next_ + 1] = alive[#alive] end
    alive = next_
  end

  local best = alive[1]
  U.record("rank.candidates", n)
  U.record("rank.matches", #matches)
  ctx.result = {
    answer = U.answer_of(cands[best]), best = cands[best], best_index = best,
    candidates = U.arr(cands), matches = U.arr(matches),
  }
  return ctx
end

return M
