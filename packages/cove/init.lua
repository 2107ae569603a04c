--- cove: chain-of-verification.
---
--- Drafts an answer, plans short fact-checking questions about the draft, answers
--- every question independently in one batch (the draft is not shown, so its errors
--- are not copied), then revises the draft in the light of those checks.
---
--- Knobs (ctx):
---   task         string   the question (required)
---   n_questions  integer  number of verification questions (default 3)
---   gen_tokens   integer  token cap of the draft and the revision (default 600)
--- Result: ctx.result = { answer, draft, draft_answer, checks = [{question, answer}], revised }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "cove",
  version = "0.1.0",
  description = "Chain-of-verification: draft, plan checking questions, answer them independently in one batch, revise",
  category = "verification",
  paper = "Chain-of-Verification Reduces Hallucination in Large Language Models, Dhuliawala et al., 2023",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", n_questions = "integer?", gen_tokens = "integer?" },
      result = { answer = "string", draft = "string", draft_answer = "string", checks = "array", revised = "boolean" },
    },
  },
}

function M.run(ctx)
  local task = ctx.task or error("cove: ctx.task is required")
  local nq = ctx.n_questions or 3
  if nq < 1 then error("cove: ctx.n_questions must be at least 1") end
  local tokens = ctx.gen_tokens or 600

  local draft = alc.llm(string.format(
    "Question:\n%s\n\nGive a concise answer with brief justification. End with a line\nANSWER: <answer>", task),
    { max_tokens = tokens })
  local draft_answer = U.answer_of(draft)

  local plan = alc.llm(string.format(
    "Question:\n%s\n\nProposed answer:\n%s\n\nList %d short, self-contained questions whose answers would "
      .. "confirm or refute the facts this answer relies on. One per line, numbered 1., 2., ...",
    task, draft, nq), { max_tokens = 300 })
  local questions = U.list_items(plan, nq)

  local checks = {}
  if #questions > 0 then
    local items = {}
    for i, q in ipairs(questions) do
      items[i] = { prompt = "Answer this question briefly and factually:\n" .. q, max_tokens = 200 }
    end
    local replies = alc.llm_batch(items)
    for i, q in ipairs(questions) do checks[i] = { question = q, answer = U.trim(replies[i]) } end
  end

  local answer, revised = draft_answer, false
  if #checks > 0 then
    local lines = {}
    for i, c in ipairs(checks) do lines[i] = string.format("%d. Q: %s\n   A: %s", i, c.question, c.answer) end
    local final = alc.llm(string.format(
      "Question:\n%s\n\nDraft answer:\n%s\n\nIndependent verification results:\n%s\n\nCorrect anything in the "
        .. "draft that the verification contradicts and give the final answer on a last line\nANSWER: <answer>",
      task, draft, table.concat(lines, "\n")), { max_tokens = tokens })
    answer, revised = U.answer_of(final), true
  end

  U.record("cove.questions", #checks)
  ctx.result = {
    answer = answer, draft = draft, draft_answer = draft_answer, checks = U.arr(checks), revised = revised,
  }
  return ctx
end

return M
