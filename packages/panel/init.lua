--- panel: several personas answer in one batch, then one synthesis.
---
--- Knobs (ctx):
---   task        string          the question (required)
---   roles       array of string personas (default: domain expert, skeptic, practitioner)
---   view_tokens integer         token cap per view (default 500)
---   synth_tokens integer        token cap of the synthesis (default 800)
--- Result: ctx.result = { answer, synthesis, views = [{role, view}] }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "panel",
  version = "0.1.0",
  description = "Panel of personas answering in one batch, merged by a moderator's synthesis",
  category = "synthesis",
}

M.default_roles = {
  "a domain expert who knows the standard results",
  "a skeptic who looks for hidden assumptions and failure cases",
  "a practitioner who cares about what works in practice",
}

function M.run(ctx)
  local task = ctx.task or error("panel: ctx.task is required")
  local roles = ctx.roles or M.default_roles
  if #roles == 0 then error("panel: ctx.roles must not be empty") end
  local items = {}
  for i, role in ipairs(roles) do
    items[i] = {
      prompt = string.format("Question:\n%s\n\nGive your view in one short paragraph, from your own angle.", task),
      system = "You are " .. role .. ".",
      max_tokens = ctx.view_tokens or 500,
    }
  end
  local replies = alc.llm_batch(items)
  local views, blocks = {}, {}
  for i, role in ipairs(roles) do
    views[i] = { role = role, view = replies[i] }
    blocks[i] = string.format("[%d] %s:\n%s", i, role, replies[i])
  end
  local synthesis = alc.llm(string.format(
    "Question:\n%s\n\nPanel views:\n%s\n\nAs the moderator, keep what the views agree on, settle "
      .. "their disagreements with reasons, and end with a last line\nANSWER: <consolidated answer>",
    task, table.concat(blocks, "\n\n")), { max_tokens = ctx.synth_tokens or 800 })
  U.record("panel.size", #roles)
  ctx.result = { answer = U.answer_of(synthesis), synthesis = synthesis, views = views }
  return ctx
end

return M
