--- reflect: generate, critique, revise.
---
--- Writes a draft (or starts from `initial_draft`), then for up to `max_rounds` rounds
--- asks for a critique of the current draft. A critique carrying the convergence
--- marker ends the loop; otherwise the draft is rewritten to address it. Critique and
--- revision are separate calls, so the critic sees the whole draft on its own.
--- Markers: with stop_when = "no_major_issues" (default) either NO_MAJOR_ISSUES or
--- NO_ISSUES stops; with "no_issues" only NO_ISSUES does (a space may stand for the
--- underscore). When the session budget (ctx.budget) runs out, the loop stops with the
--- current draft and `budget_limited` is true.
--- Calls: at most 1 + 2 * max_rounds (no first call with initial_draft).
---
--- Knobs (ctx):
---   task             string   the task (required)
---   initial_draft    string   draft to start from, skipping the first generation
---   max_rounds       integer  critique/revision rounds at most (default 3)
---   stop_when        string   "no_major_issues" (default) or "no_issues"
---   gen_tokens       integer  token cap of the draft and the revisions (default 500)
---   critique_tokens  integer  token cap of each critique (default 300)
--- Result: ctx.result = { answer, output, rounds = [{round, critique, converged}], total_rounds,
---                         converged, revisions, budget_limited }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "reflect",
  version = "0.1.0",
  description = "Generate, critique and revise until the critic reports no (major) issues or the rounds run out",
  category = "refinement",
  paper = "Self-Refine: Iterative Refinement with Self-Feedback, Madaan et al., 2023 "
    .. "(arXiv:2303.17651; NeurIPS 2023)",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", initial_draft = "string?", max_rounds = "integer?", stop_when = "string?",
                gen_tokens = "integer?", critique_tokens = "integer?" },
      result = { answer = "string", output = "string", rounds = "{round, critique, converged}[]",
                 total_rounds = "integer", converged = "boolean", revisions = "integer",
                 budget_limited = "boolean" },
    },
  },
}

--- The markers that end the loop for each `stop_when`.
M.STOP_MARKERS = {
  no_major_issues = { "NO[_ ]MAJOR[_ ]ISSUES", "NO[_ ]ISSUES" },
  no_issues = { "NO[_ ]ISSUES" },
}

--- Whether a critique carries one of the markers of `stop_when`.
function M.converged(critique, stop_when)
  for _, pat in ipairs(M.STOP_MARKERS[stop_when]) do
    if tostring(critique):find(pat) then return true end
  end
  return false
end

function M.run(ctx)
  local task = U.text_knob("reflect", ctx)
  local rounds_max = U.int_knob("reflect", ctx, "max_rounds", 3, 0)
  local stop_when = ctx.stop_when or "no_major_issues"
  if M.STOP_MARKERS[stop_when] == nil then
    error("reflect: ctx.stop_when must be \"no_major_issues\" or \"no_issues\", got " .. tostring(stop_when))
  end
  local gen_tokens = U.int_knob("reflect", ctx, "gen_tokens", 500, 1)
  local critique_tokens = U.int_knob("reflect", ctx, "critique_tokens", 300, 1)
  if ctx.initial_draft ~= nil and type(ctx.initial_draft) ~= "string" then
    error("reflect: ctx.initial_draft must be a string")
  end

  local draft = ctx.initial_draft
  if draft == nil then
    draft = alc.llm(string.format("Task:\n%s\n\nWrite a thorough, high-quality response.", task),
      { system = "You are an expert who writes careful, complete responses.", max_tokens = gen_tokens })
  end

  local rounds, revisions, limited = {}, 0, false
  for r = 1, rounds_max do
    if U.fit(1, 0) < 1 then
      limited = true
      break
    end
    local critique = alc.llm(string.format(
      "Task:\n%s\n\nCurrent draft:\n%s\n\nCritique the draft. Point out, specifically:\n- errors or "
        .. "inaccuracies\n- missing information\n- unclear or weak reasoning\n- anything else that should "
        .. "improve\n\nIf the draft has no major issues, reply with the single line NO_MAJOR_ISSUES. If it "
        .. "has no issues at all, reply with the single line NO_ISSUES.", task, draft),
      { system = "You are a demanding critic. Name concrete problems and what would fix them.",
        max_tokens = critique_tokens })
    local done = M.converged(critique, stop_when)
    rounds[r] = { round = r, critique = critique, converged = done }
    if done then break end
    if U.fit(1, 0) < 1 then
      limited = true
      break
    end
    draft = alc.llm(string.format(
      "Task:\n%s\n\nPrevious draft:\n%s\n\nCritique:\n%s\n\nRewrite the draft so that every point of the "
        .. "critique is addressed, keeping what was already good. Reply with the new draft only.",
      task, draft, critique),
      { system = "You revise drafts carefully, fixing each criticised point.", max_tokens = gen_tokens })
    revisions = revisions + 1
  end

  U.record("reflect.rounds", #rounds)
  local converged = #rounds > 0 and rounds[#rounds].converged or false
  ctx.result = {
    answer = U.trim(draft), output = draft, rounds = U.arr(rounds), total_rounds = #rounds,
    converged = converged, revisions = revisions, budget_limited = limited,
  }
  return ctx
end

return M
