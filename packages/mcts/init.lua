--- mcts: Monte Carlo tree search over reasoning steps.
---
--- Nodes are partial chains of reasoning steps. Each iteration descends from the
--- root by UCB1 (mean + C * sqrt(ln N_parent / n_child)) through fully expanded
--- nodes; a leaf below `max_depth` that is not finished is expanded with `branching`
--- candidate next steps (one batch), the new paths are scored 0-10 (one batch) and
--- each score is back-propagated to the root. A step containing an `ANSWER:` line
--- finishes its path; a finished or maximal-depth leaf is not expanded again and
--- just back-propagates its mean. With `reflection`, a freshly scored path below
--- `reflection_threshold` gets one call naming its mistake; the lessons (at most
--- `max_reflections`) are shown to later expansions. Finally the most visited path
--- is followed and one call states its answer.
---
--- Knobs (ctx):
---   task                  string   the problem (required)
---   iterations            integer  search iterations (default 6)
---   max_depth             integer  most steps per path (default 3)
---   exploration           number   UCB1 constant C (default 1.41)
---   branching             integer  children per expansion (default 2)
---   reflection            boolean  reflect on low-scoring paths (default false)
---   reflection_threshold  number   score below which reflection runs (default 4)
---   max_reflections       integer  most stored lessons (default 5)
--- Result: ctx.result = { answer, path = [step], conclusion, nodes, reflections = [lesson] }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "mcts",
  version = "0.1.0",
  description = "MCTS over reasoning steps: UCB1 descent, batched step expansion and scoring, back-propagation",
  category = "search",
  paper = "Reasoning with Language Model is Planning with World Model (RAP), Hao et al., 2023",
}

M.spec = {
  entries = {
    run = {
      input = {
        task = "string", iterations = "integer?", max_depth = "integer?", exploration = "number?",
        branching = "integer?", reflection = "boolean?", reflection_threshold = "number?", max_reflections = "integer?",
      },
      result = { answer = "string", path = "array", conclusion = "string", nodes = "integer", reflections = "array" },
    },
  },
}

--- UCB1 value of a child; unvisited children come first.
function M.ucb1(child, parent_visits, c)
  if child.visits == 0 then return math.huge end
  return child.value / child.visits + c * math.sqrt(math.log(parent_visits) / child.visits)
end

local function steps_of(node)
  local out = {}
  while node.parent do
    table.insert(out, 1, node.step)
    node = node.parent
  end
  return out
end

local function backprop(node, score)
  while node do
    node.visits = node.visits + 1
    node.value = node.value + score
    node = node.parent
  end
end

function M.run(ctx)
  local task = ctx.task or error("mcts: ctx.task is required")
  local iterations = ctx.iterations or 6
  local max_depth = ctx.max_depth or 3
  local c = ctx.exploration or 1.41
  local branching = ctx.branching or 2
  local reflect = ctx.reflection == true
  local threshold = ctx.reflection_threshold or 4
  local max_refl = ctx.max_reflections or 5
  if branching < 1 then error("mcts: ctx.branching must be at least 1") end

  local root = { depth = 0, visits = 0, value = 0, children = {} }
  local nodes, lessons = 1, {}

  for _ = 1, iterations do
    local node = root
    while #node.children > 0 do
      local best, bv = node.children[1], -math.huge
      for _, ch in ipairs(node.children) do
        local v = M.ucb1(ch, math.max(node.visits, 1), c)
        if v > bv then best, bv = ch, v end
      end
      node = best
    end

    if node.done or node.depth >= max_depth then
      backprop(node, node.visits > 0 and node.value / node.visits or 0)
    else
      local so_far = steps_of(node)
      local hint = ""
      if #lessons > 0 then hint = "\n\nLessons from earlier attempts:\n" .. U.numbered(lessons) end
      local prompt = string.format(
        "Problem:\n%s\n\nReasoning so far:\n%s%s\n\nWrite only the next single reasoning step. If the "
          .. "problem is now solved, add a line\nANSWER: <answer>",
        task, #so_far > 0 and U.numbered(so_far) or "(none yet)", hint)
      local items = {}
      for i = 1, branching do items[i] = { prompt = prompt, temperature = 0.8, max_tokens = 300 } end
      local steps = alc.llm_batch(items)

      local kids, sitems = {}, {}
      for i, s in ipairs(steps) do
        local kid = { parent = node, step = U.trim(s), depth = node.depth + 1, visits = 0, value = 0, children = {} }
        kid.done = U.tagged(s, "ANSWER") ~= nil
        kids[i] = kid
        node.children[#node.children + 1] = kid
        sitems[i] = {
          prompt = string.format(
            "Problem:\n%s\n\nPartial reasoning:\n%s\n\nHow likely is this reasoning to lead to a correct "
              .. "answer? Reply with a line\nSCORE: <0-10>", task, U.numbered(steps_of(kid))),
          max_tokens = 60,
        }
      end
      nodes = nodes + #kids
      local scores = alc.llm_batch(sitems)
      local worst, ws
      for i, kid in ipairs(kids) do
        local s = U.score_of(scores[i], 0, 10, 0)
        backprop(kid, s)
        if ws == nil or s < ws then worst, ws = kid, s end
      end
      if reflect and ws < threshold and #lessons < max_refl then
        local lesson = alc.llm(string.format(
          "Problem:\n%s\n\nThis reasoning was judged unpromising (score %s/10):\n%s\n\nIn one sentence, state "
            .. "the mistake to avoid.", task, tostring(ws), U.numbered(steps_of(worst))), { max_tokens = 100 })
        lessons[#lessons + 1] = U.trim(lesson)
      end
    end
  end

  local node = root
  while #node.children > 0 do
    local best = node.children[1]
    for _, ch in ipairs(node.children) do
      if ch.visits > best.visits or (ch.visits == best.visits and ch.value > best.value) then best = ch end
    end
    node = best
  end
  local path = steps_of(node)
  local conclusion = alc.llm(string.format(
    "Problem:\n%s\n\nReasoning:\n%s\n\nFinish the solution from this reasoning. End with a line\nANSWER: <answer>",
    task, #path > 0 and U.numbered(path) or "(none)"), { max_tokens = 400 })

  U.record("mcts.nodes", nodes)
  U.record("mcts.reflections", #lessons)
  ctx.result = {
    answer = U.answer_of(conclusion), path = U.arr(path), conclusion = conclusion,
    nodes = nodes, reflections = U.arr(lessons),
  }
  return ctx
end

return M
