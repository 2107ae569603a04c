--- reflect: draft, critique, revise.
---
--- Writes a draft, then for up to `rounds` rounds asks for a critique and a revision
--- that addresses it. A critique containing `stop_phrase` ends the loop early.
---
--- Knobs (ctx):
---   task         string   the task (required)
---   rounds       integer  maximum critique/revision rounds (default 2)
---   stop_phrase  string   critique text meaning "nothing to fix" (default "NO ISSUES")
---   gen_tokens   integer  token cap of drafts and revisions (default 800)
---   critique_tokens integer token cap of critiques (default 400)
--- Result: ctx.result = { answer, rounds_used, stopped_early, history = [{critique, revision?}] }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "reflect",
  version = "0.1.0",
  description = "Draft, critique and revise for N rounds, stopping when the critic finds nothing",
  category = "refinement",
}

function M.run(ctx)
  local task = ctx.task or error("reflect: ctx.task is required")
  local rounds = ctx.rounds or 2
  local stop = (ctx.stop_phrase or "NO ISSUES"):lower()
  local gen_tokens, crit_tokens = ctx.gen_tokens or 800, ctx.critique_tokens or 400

  local draft = alc.llm(string.format("Task:\n%s\n\nWrite your best answer.", task),
    { max_tokens = gen_tokens })
  local history, stopped = {}, false
  for r = 1, rounds do
    local critique = alc.llm(string.format(
      "Task:\n%s\n\nCandidate answer:\n%s\n\nList the concrete errors, gaps or unclear parts of the "
        .. "candidate. If there is nothing worth changing, reply exactly: %s",
      task, draft, ctx.stop_phrase or "NO ISSUES"), { max_tokens = crit_tokens })
    if critique:lower():find(stop, 1, true) then
      history[r] = { critique = critique }
      stopped = true
      break
    end
    draft = alc.llm(string.format(
      "Task:\n%s\n\nPrevious answer:\n%s\n\nCritique:\n%s\n\nRewrite the answer so that every point "
        .. "of the critique is addressed. Reply with the new answer only.",
      task, draft, critique), { max_tokens = gen_tokens })
    history[r] = { critique = critique, revision = draft }
  end
  U.record("reflect.rounds", #history)
  ctx.result = { answer = draft, rounds_used = #history, stopped_early = stopped, history = history }
  return ctx
end

return M
