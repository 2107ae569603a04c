--- tot: tree of thoughts with a beam.
---
--- At each level every frontier node proposes `breadth` next steps (one batch for the
--- whole level), every proposal is scored 1-10 by the model (a second batch), and the
--- `beam` best partial solutions survive (ties keep proposal order). After `depth`
--- levels the best path is turned into a final answer.
---
--- Knobs (ctx):
---   task     string   the problem (required)
---   breadth  integer  proposals per node (default 3)
---   depth    integer  levels (default 2)
---   beam     integer  survivors per level (default 2)
--- Result: ctx.result = { answer, best_path, best_score, explored }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "tot",
  version = "0.1.0",
  description = "Tree of thoughts: batched proposals, model-scored, beam search over reasoning steps",
  category = "search",
}

local function path_text(path)
  if #path == 0 then return "(none yet)" end
  return U.numbered(path)
end

function M.run(ctx)
  local task = ctx.task or error("tot: ctx.task is required")
  local breadth, depth, beam = ctx.breadth or 3, ctx.depth or 2, ctx.beam or 2
  local frontier = { { path = {}, score = 0 } }
  local explored = 0
  for level = 1, depth do
    local items, parents = {}, {}
    for _, node in ipairs(frontier) do
      for j = 1, breadth do
        items[#items + 1] = {
          prompt = string.format(
            "Problem:\n%s\n\nSteps so far:\n%s\n\nPropose candidate %d of %d for the next step. "
              .. "Reply with that single step only.", task, path_text(node.path), j, breadth),
          max_tokens = 200,
        }
        parents[#items] = node
      end
    end
    local proposals = alc.llm_batch(items)
    local children, score_items = {}, {}
    for i, step in ipairs(proposals) do
      local path = {}
      for k, s in ipairs(parents[i].path) do path[k] = s end
      path[#path + 1] = U.trim(step)
      children[i] = { path = path, index = i }
      score_items[i] = {
        prompt = string.format(
          "Problem:\n%s\n\nPartial solution:\n%s\n\nHow likely is this partial solution to lead to a "
            .. "correct answer? Reply with a line SCORE: <1-10>.", task, path_text(path)),
        max_tokens = 60,
      }
    end
    local scores = alc.llm_batch(score_items)
    for i, child in ipairs(children) do child.score = U.score_of(scores[i], 1, 10, 1) end
    explored = explored + #children
    table.sort(children, function(x, y)
      if x.score ~= y.score then return x.score > y.score end
      return x.index < y.index
    end)
    frontier = {}
    for i = 1, math.min(beam, #children) do frontier[i] = children[i] end
  end
  local best = frontier[1]
  local final = alc.llm(string.format(
    "Problem:\n%s\n\nReasoning steps:\n%s\n\nFollow these steps to their conclusion and end with\n"
      .. "ANSWER: <final answer>", task, path_text(best.path)), { max_tokens = 500 })
  U.record("tot.explored", explored)
  U.record("tot.best_score", best.score)
  ctx.result = { answer = U.answer_of(final), best_path = best.path, best_score = best.score, explored = explored }
  return ctx
end

return M
