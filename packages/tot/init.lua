--- tot: tree of thoughts, breadth-first with a beam.
---
--- A thought is one reasoning step; a beam is a path of thoughts from the root. At each
--- of `depth` levels every surviving beam proposes `breadth` distinct next thoughts in
--- one call (the calls of a level form one batch), every new path is rated 1-10 by the
--- model (a second batch), and the `beam_width` best paths survive (ties keep proposal
--- order; an unreadable rating counts as 1). The best path is then followed to a
--- conclusion with a tagged answer line. A level whose calls plus the conclusion do
--- not fit in the session budget (ctx.budget) is not searched, and `budget_limited`
--- is true.
--- Calls per level: beams + beams * breadth, in two batches; plus one at the end.
---
--- Knobs (ctx):
---   task        string   the problem (required)
---   breadth     integer  thoughts proposed per beam and level (default 3)
---   depth       integer  levels searched (default 3)
---   beam_width  integer  paths kept after each level (default 2)
--- Result: ctx.result = { answer, conclusion, best_path = [thought], best_score,
---                         explored_paths = [{rank, path, score}], tree_stats = {depth, breadth, beam_width},
---                         explored, depth_reached, total_llm_calls, budget_limited }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "tot",
  version = "0.1.0",
  description = "Tree of thoughts: batched proposals, model-rated, beam search over reasoning steps",
  category = "search",
  paper = "Tree of Thoughts: Deliberate Problem Solving with Large Language Models, Yao et al., 2023 "
    .. "(arXiv:2305.10601; NeurIPS 2023)",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", breadth = "integer?", depth = "integer?", beam_width = "integer?" },
      result = { answer = "string", conclusion = "string", best_path = "string[]", best_score = "number",
                 explored_paths = "{rank, path, score}[]", tree_stats = "{depth, breadth, beam_width}",
                 explored = "integer", depth_reached = "integer", total_llm_calls = "integer",
                 budget_limited = "boolean" },
    },
  },
}

local function path_text(path)
  if #path == 0 then return "(no steps yet)" end
  local lines = {}
  for i, s in ipairs(path) do lines[i] = string.format("Step %d: %s", i, s) end
  return table.concat(lines, "\n")
end

--- The thoughts of a proposal reply: its list items, at most `max`; a reply without a
--- list is one thought.
function M.thoughts_of(reply, max)
  local items = U.list_items(reply, max)
  if #items == 0 and U.trim(reply) ~= "" then items = { U.trim(reply) } end
  return items
end

function M.run(ctx)
  local task = U.text_knob("tot", ctx)
  local breadth = U.int_knob("tot", ctx, "breadth", 3, 1)
  local depth = U.int_knob("tot", ctx, "depth", 3, 0)
  local beam_width = U.int_knob("tot", ctx, "beam_width", 2, 1)

  local beams = { { path = {}, score = 0 } }
  local explored, calls, reached, limited = 0, 0, 0, false
  for level = 1, depth do
    if U.fit(#beams * (1 + breadth), 1) < #beams * (1 + breadth) then
      limited = true
      break
    end
    local items = {}
    for i, beam in ipairs(beams) do
      items[i] = {
        prompt = string.format(
          "Problem:\n%s\n\nReasoning so far:\n%s\n\nPropose %d different possible next steps toward a "
            .. "solution, each concrete and specific, one to three sentences each. Make them genuinely "
            .. "different from each other. Reply with a numbered list only.", task, path_text(beam.path), breadth),
        system = "You are a creative problem solver who explores distinct lines of attack.",
        max_tokens = 120 * breadth,
      }
    end
    local replies = alc.llm_batch(items)
    calls = calls + #items

    local candidates, scoring = {}, {}
    for i, beam in ipairs(beams) do
      for _, thought in ipairs(M.thoughts_of(replies[i], breadth)) do
        local path = table.move(beam.path, 1, #beam.path, 1, {})
        path[#path + 1] = thought
        candidates[#candidates + 1] = { path = path, order = #candidates + 1 }
        scoring[#scoring + 1] = {
          prompt = string.format(
            "Problem:\n%s\n\nPartial solution:\n%s\n\nRate this line of reasoning from 1 to 10: is it "
              .. "logically sound, does it make progress toward solving the problem, or is it a dead end? "
              .. "Reply with a line\nSCORE: <1-10>", task, path_text(path)),
          system = "You judge the quality of reasoning strictly.",
          max_tokens = 20,
        }
      end
    end
    if #candidates == 0 then break end
    local ratings = alc.llm_batch(scoring)
    calls = calls + #scoring
    for i, c in ipairs(candidates) do c.score = U.score_of(ratings[i], 1, 10, 1) end
    explored = explored + #candidates
    table.sort(candidates, function(a, b)
      if a.score ~= b.score then return a.score > b.score end
      return a.order < b.order
    end)
    beams = {}
    for i = 1, math.min(beam_width, #candidates) do beams[i] = candidates[i] end
    reached = level
    alc.log("info", string.format("tot: level %d/%d, %d candidates, best score %s",
      level, depth, #candidates, tostring(beams[1].score)))
  end

  local best = beams[1]
  local conclusion = alc.llm(string.format(
    "Problem:\n%s\n\nBest line of reasoning found (rated %s/10):\n%s\n\nFollow this reasoning to its "
      .. "conclusion and write a clear, complete answer. Finish with a last line of the form\n"
      .. "ANSWER: <final answer>", task, tostring(best.score), path_text(best.path)),
    { system = "You turn a line of reasoning into a correct, well-structured answer.", max_tokens = 600 })
  calls = calls + 1

  local explored_paths = {}
  for i, beam in ipairs(beams) do
    explored_paths[i] = { rank = i, path = U.arr(beam.path), score = beam.score }
  end
  U.record("tot.explored", explored)
  U.record("tot.best_score", best.score)
  ctx.result = {
    answer = U.answer_of(conclusion), conclusion = U.trim(conclusion), best_path = U.arr(best.path),
    best_score = best.score, explored_paths = U.arr(explored_paths),
    tree_stats = { depth = depth, breadth = breadth, beam_width = beam_width },
    explored = explored, depth_reached = reached, total_llm_calls = calls, budget_limited = limited,
  }
  return ctx
end

return M
