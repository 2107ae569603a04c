--- ucb: UCB1 bandit over candidate answers.
---
--- Generates `n` candidate answers (arms) in one batch and scores them all in one
--- batch (each arm pulled once). Then, for `rounds` rounds, the arm with the highest
--- UCB1 value  mean + sqrt(2 ln N / n_i)  is pulled: its answer is refined and the
--- refinement is scored; the score joins the arm's statistics and the refinement
--- becomes the arm's answer when it scores at least as well as the arm's best
--- version so far. The arm with the best mean score wins.
---
--- Knobs (ctx):
---   task    string   the problem (required)
---   n       integer  number of candidate arms (default 3)
---   rounds  integer  refine-and-score pulls after the initial ones (default 2)
--- Result: ctx.result = { answer, best, best_index, arms = [{text, pulls, mean}], pulls = [arm index] }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "ucb",
  version = "0.1.0",
  description = "UCB1 bandit: n candidates scored in batches, UCB1 picks which to refine each round, best mean wins",
  category = "search",
  paper = "Finite-time Analysis of the Multiarmed Bandit Problem, Auer, Cesa-Bianchi and Fischer, 2002",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", n = "integer?", rounds = "integer?" },
      result = { answer = "string", best = "string", best_index = "integer", arms = "array", pulls = "array" },
    },
  },
}

--- UCB1 value of an arm with `sum` over `pulls` pulls, `total` pulls overall.
function M.ucb1(sum, pulls, total)
  if pulls == 0 then return math.huge end
  return sum / pulls + math.sqrt(2 * math.log(total) / pulls)
end

local function score_prompt(task, text)
  return string.format(
    "Problem:\n%s\n\nCandidate answer:\n%s\n\nRate the candidate's correctness and quality from 0 to 10. "
      .. "Reply with a line\nSCORE: <0-10>", task, text)
end

function M.run(ctx)
  local task = ctx.task or error("ucb: ctx.task is required")
  local n = ctx.n or 3
  local rounds = ctx.rounds or 2
  if n < 1 then error("ucb: ctx.n must be at least 1") end

  local gen = string.format(
    "Problem:\n%s\n\nPropose a solution, taking your own angle on it. End with a line\nANSWER: <answer>", task)
  local items = {}
  for i = 1, n do items[i] = { prompt = gen, temperature = 0.9, max_tokens = 500 } end
  local texts = alc.llm_batch(items)

  local sitems = {}
  for i = 1, n do sitems[i] = { prompt = score_prompt(task, texts[i]), max_tokens = 100 } end
  local scores = alc.llm_batch(sitems)
  local arms, total = {}, n
  for i = 1, n do
    local s = U.score_of(scores[i], 0, 10, 0)
    arms[i] = { text = texts[i], top = s, sum = s, pulls = 1 }
  end

  local pulls = {}
  for r = 1, rounds do
    local pick, best = 1, -math.huge
    for i, a in ipairs(arms) do
      local v = M.ucb1(a.sum, a.pulls, total)
      if v > best then pick, best = i, v end
    end
    local arm = arms[pick]
    local refined = alc.llm(string.format(
      "Problem:\n%s\n\nCurrent solution:\n%s\n\nImprove this solution: fix errors and fill gaps. End with a line\n"
        .. "ANSWER: <answer>", task, arm.text), { max_tokens = 500 })
    local s = U.score_of(alc.llm(score_prompt(task, refined), { max_tokens = 100 }), 0, 10, 0)
    if s >= arm.top then arm.text, arm.top = refined, s end
    arm.sum, arm.pulls = arm.sum + s, arm.pulls + 1
    total = total + 1
    pulls[r] = pick
  end

  local bi = 1
  for i, a in ipairs(arms) do
    if a.sum / a.pulls > arms[bi].sum / arms[bi].pulls then bi = i end
  end
  local view = {}
  for i, a in ipairs(arms) do view[i] = { text = a.text, pulls = a.pulls, mean = a.sum / a.pulls } end
  U.record("ucb.best_mean", view[bi].mean)
  ctx.result = {
    answer = U.answer_of(arms[bi].text), best = arms[bi].text, best_index = bi,
    arms = U.arr(view), pulls = U.arr(pulls),
  }
  return ctx
end

return M
