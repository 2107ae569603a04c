--- rephrase_respond: restate and expand the question, then answer the restatement.
---
--- Knobs (ctx):
---   task  string  the question (required)
--- Result: ctx.result = { answer, rephrased, response }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "rephrase_respond",
  version = "0.1.0",
  description = "Rephrase-and-respond: make the question explicit and unambiguous, then answer it",
  category = "reasoning",
}

function M.run(ctx)
  local task = ctx.task or error("rephrase_respond: ctx.task is required")
  local rephrased = U.trim(alc.llm(string.format(
    "Question:\n%s\n\nRestate this question so that it is explicit and unambiguous: spell out implied "
      .. "assumptions, units and what form the answer should take. Reply with the restated question only.", task),
    { max_tokens = 300 }))
  local response = alc.llm(string.format(
    "Original question:\n%s\n\nRestated question:\n%s\n\nAnswer the restated question. End with\n"
      .. "ANSWER: <final answer>", task, rephrased), { max_tokens = 800 })
  ctx.result = { answer = U.answer_of(response), rephrased = rephrased, response = response }
  return ctx
end

return M
