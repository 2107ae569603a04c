--- step_back: name the general principle first, then answer with it.
---
--- Knobs (ctx):
---   task         string   the question (required)
---   domain_hint  string   optional field to abstract into (e.g. "physics")
--- Result: ctx.result = { answer, principles, solution }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "step_back",
  version = "0.1.0",
  description = "Step-back prompting: abstract to the governing principles, then reason from them",
  category = "reasoning",
}

function M.run(ctx)
  local task = ctx.task or error("step_back: ctx.task is required")
  local field = ctx.domain_hint and (" in " .. ctx.domain_hint) or ""
  local principles = alc.llm(string.format(
    "Question:\n%s\n\nStep back from the specifics. Which general concepts, laws or methods%s govern "
      .. "questions of this kind? State them briefly without answering the question.", task, field),
    { max_tokens = 400 })
  local solution = alc.llm(string.format(
    "Question:\n%s\n\nRelevant principles:\n%s\n\nAnswer the question by applying these principles "
      .. "explicitly. End with\nANSWER: <final answer>", task, U.trim(principles)), { max_tokens = 800 })
  ctx.result = { answer = U.answer_of(solution), principles = U.trim(principles), solution = solution }
  return ctx
end

return M
