--- mcts_lite: Monte Carlo tree search over reasoning steps, without randomness.
---
--- Each iteration selects a node by UCB1 (unvisited children first; ties go to the
--- older child), expands it with one model-proposed step, has the model score the
--- resulting partial solution (1-10, scaled to 0-1) and backs the value up. Nodes at
--- `max_depth` are not expanded; selecting one re-uses its mean value (no call).
--- The answer follows the most visited path.
---
--- Knobs (ctx):
---   task          string   the problem (required)
---   iterations    integer  search iterations (default 4)
---   max_children  integer  children per node before it counts as fully expanded (default 2)
---   max_depth     integer  maximum path length (default 3)
---   c             number   exploration constant (default 1.4)
--- Result: ctx.result = { answer, path, iterations, nodes, root_visits }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "mcts_lite",
  version = "0.1.0",
  description = "Deterministic MCTS over reasoning steps: UCB1 selection, LLM expansion and scoring",
  category = "search",
}

local function path_of(node)
  local steps = {}
  while node and node.step do
    table.insert(steps, 1, node.step)
    node = node.parent
  end
  return steps
end

local function ucb(child, parent_visits, c)
  if child.visits == 0 then return math.huge end
  return child.value / child.visits + c * math.sqrt(math.log(parent_visits) / child.visits)
end

function M.run(ctx)
  local task = ctx.task or error("mcts_lite: ctx.task is required")
  local iterations = ctx.iterations or 4
  local max_children, max_depth, c = ctx.max_children or 2, ctx.max_depth or 3, ctx.c or 1.4
  local root = { children = {}, visits = 0, value = 0, depth = 0 }
  local nodes = 1
  for _ = 1, iterations do
    local node = root
    while #node.children >= max_children and node.depth < max_depth do
      local best, best_u = nil, -math.huge
      for _, child in ipairs(node.children) do
        local u = ucb(child, node.visits, c)
        if u > best_u then best, best_u = child, u end
      end
      node = best
    end
    local value
    if node.depth >= max_depth then
      value = node.visits > 0 and node.value / node.visits or 0
    else
      local steps = path_of(node)
      local step = U.trim(alc.llm(string.format(
        "Problem:\n%s\n\nSteps so far:\n%s\n\nWrite one new next step that differs from earlier "
          .. "attempts. Reply with the step only.",
        task, #steps > 0 and U.numbered(steps) or "(none yet)"), { max_tokens = 200 }))
      local child = { step = step, parent = node, children = {}, visits = 0, value = 0, depth = node.depth + 1 }
      node.children[#node.children + 1] = child
      nodes = nodes + 1
      local scored = alc.llm(string.format(
        "Problem:\n%s\n\nPartial solution:\n%s\n\nRate how promising it is. Reply with a line SCORE: <1-10>.",
        task, U.numbered(path_of(child))), { max_tokens = 60 })
      value = U.score_of(scored, 1, 10, 1) / 10
      node = child
    end
    while node do
      node.visits = node.visits + 1
      node.value = node.value + value
      node = node.parent
    end
  end
  local node = root
  while #node.children > 0 do
    local best
    for _, child in ipairs(node.children) do
      if best == nil or child.visits > best.visits
        or (child.visits == best.visits and child.value / child.visits > best.value / best.visits) then
        best = child
      end
    end
    node = best
  end
  local path = path_of(node)
  local final = alc.llm(string.format(
    "Problem:\n%s\n\nReasoning steps:\n%s\n\nComplete the solution and end with\nANSWER: <final answer>",
    task, #path > 0 and U.numbered(path) or "(none)"), { max_tokens = 500 })
  U.record("mcts_lite.nodes", nodes)
  ctx.result = { answer = U.answer_of(final), path = path, iterations = iterations, nodes = nodes, root_visits = root.visits }
  return ctx
end

return M
