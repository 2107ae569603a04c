--- plan_solve: make a plan, then carry it out.
---
--- Knobs (ctx):
---   task         string   the problem (required)
---   plan_tokens  integer  token cap of the plan (default 400)
---   solve_tokens integer  token cap of the execution (default 900)
--- Result: ctx.result = { answer, plan = [steps], solution }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "plan_solve",
  version = "0.1.0",
  description = "Plan-and-solve: a numbered plan first, then an execution that follows it",
  category = "planning",
}

function M.run(ctx)
  local task = ctx.task or error("plan_solve: ctx.task is required")
  local plan_text = alc.llm(string.format(
    "Problem:\n%s\n\nDo not solve it yet. First understand it, name the relevant quantities, and write "
      .. "a numbered plan of the steps needed.", task), { max_tokens = ctx.plan_tokens or 400 })
  local plan = U.list_items(plan_text)
  local solution = alc.llm(string.format(
    "Problem:\n%s\n\nPlan:\n%s\n\nCarry out the plan step by step, checking each intermediate result. "
      .. "End with\nANSWER: <final answer>",
    task, #plan > 0 and U.numbered(plan) or plan_text), { max_tokens = ctx.solve_tokens or 900 })
  U.record("plan_solve.plan_steps", #plan)
  ctx.result = { answer = U.answer_of(solution), plan = U.arr(plan), solution = solution }
  return ctx
end

return M
