--- socratic: a questioner asks probing questions, an answerer replies, then conclude.
---
--- Each turn asks for the single most useful next question (or DONE) and then answers
--- it; the final call answers the task from the whole dialogue.
---
--- Knobs (ctx):
---   task   string   the problem (required)
---   turns  integer  maximum question/answer turns (default 3)
--- Result: ctx.result = { answer, dialogue = [{question, answer}], conclusion }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "socratic",
  version = "0.1.0",
  description = "Socratic questioning: probing question/answer turns, then a reasoned conclusion",
  category = "reasoning",
}

local function dialogue_text(d)
  if #d == 0 then return "(no questions yet)" end
  local out = {}
  for i, t in ipairs(d) do out[i] = string.format("Q%d: %s\nA%d: %s", i, t.question, i, t.answer) end
  return table.concat(out, "\n")
end

--- True when a questioner reply says the inquiry is complete (a line "DONE").
function M.is_done(text)
  for line in (tostring(text) .. "\n"):gmatch("(.-)\r?\n") do
    if U.trim(line):upper() == "DONE" then return true end
  end
  return false
end

function M.run(ctx)
  local task = ctx.task or error("socratic: ctx.task is required")
  local turns = ctx.turns or 3
  local dialogue = {}
  for _ = 1, turns do
    local q = alc.llm(string.format(
      "Problem:\n%s\n\nDialogue so far:\n%s\n\nAs a Socratic tutor, ask the one question that would most "
        .. "clarify or test the reasoning needed. If the dialogue already settles the problem, reply DONE.",
      task, dialogue_text(dialogue)), { max_tokens = 150 })
    if M.is_done(q) then break end
    local a = alc.llm(string.format(
      "Problem:\n%s\n\nDialogue so far:\n%s\n\nAnswer this question carefully and briefly:\n%s",
      task, dialogue_text(dialogue), U.trim(q)), { max_tokens = 300 })
    dialogue[#dialogue + 1] = { question = U.trim(q), answer = U.trim(a) }
  end
  local conclusion = alc.llm(string.format(
    "Problem:\n%s\n\nDialogue:\n%s\n\nDraw the conclusion the dialogue supports. End with\nANSWER: <final answer>",
    task, dialogue_text(dialogue)), { max_tokens = 600 })
  U.record("socratic.turns", #dialogue)
  ctx.result = { answer = U.answer_of(conclusion), dialogue = U.arr(dialogue), conclusion = conclusion }
  return ctx
end

return M
