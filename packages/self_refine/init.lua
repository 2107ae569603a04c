--- self_refine: generate, get scored feedback, refine until good enough.
---
--- Knobs (ctx):
---   task       string   the task (required)
---   max_iters  integer  maximum feedback rounds (default 3)
---   threshold  number   stop once the feedback score (1-10) reaches it (default 8)
--- Result: ctx.result = { answer, score, iterations, scores }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "self_refine",
  version = "0.1.0",
  description = "Self-refine: scored self-feedback and refinement until a score threshold is met",
  category = "refinement",
}

function M.run(ctx)
  local task = ctx.task or error("self_refine: ctx.task is required")
  local max_iters, threshold = ctx.max_iters or 3, ctx.threshold or 8
  local output = alc.llm(string.format("Task:\n%s\n\nProduce your answer.", task), { max_tokens = 800 })
  local scores, score = {}, nil
  for i = 1, max_iters do
    local feedback = alc.llm(string.format(
      "Task:\n%s\n\nAnswer under review:\n%s\n\nGive specific, actionable feedback, then rate the answer "
        .. "on a last line SCORE: <1-10>.", task, output), { max_tokens = 400 })
    score = U.score_of(feedback, 1, 10, 1)
    scores[i] = score
    if score >= threshold or i == max_iters then break end
    output = alc.llm(string.format(
      "Task:\n%s\n\nCurrent answer:\n%s\n\nFeedback:\n%s\n\nProduce an improved answer that applies the "
        .. "feedback. Reply with the answer only.", task, output, feedback), { max_tokens = 800 })
  end
  U.record("self_refine.iterations", #scores)
  U.record("self_refine.final_score", score)
  ctx.result = { answer = output, score = score, iterations = #scores, scores = scores }
  return ctx
end

return M
