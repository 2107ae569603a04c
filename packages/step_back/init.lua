--- step_back: step back to the governing principle, then solve from it.
---
--- For each of `abstraction_levels` levels the model first asks a more general
--- "step-back" question about the principle behind the question (at level 1 the
--- task, later the previous step-back question), then answers that question. The
--- task is solved with the principles as context, a verifier checks that the
--- solution applies them correctly (replying VERIFIED when it does), and a solution
--- that is not verified is revised once with the verifier's feedback. Every call
--- depends on the one before, so they run in order. When the session budget
--- (ctx.budget) is short, fewer levels are taken, then the verification and the
--- revision are left out, in that order (`budget_limited` is then true).
--- Calls: 2 * abstraction_levels + 2, plus 1 when the solution is revised.
---
--- Knobs (ctx):
---   task                string   the question (required)
---   abstraction_levels  integer  step-back levels (default 1)
---   domain_hint         string   field to abstract into, e.g. "physics" (optional)
--- Result: ctx.result = { answer, abstractions = [{level, question, principle}], verification, verified,
---                         revised, solution, total_llm_calls, budget_limited }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "step_back",
  version = "0.1.0",
  description = "Step-back prompting: abstract to the governing principle, solve from it, verify, revise once",
  category = "reasoning",
  paper = "Take a Step Back: Evoking Reasoning via Abstraction in Large Language Models, Zheng et al., 2023 "
    .. "(arXiv:2310.06117; ICLR 2024)",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", abstraction_levels = "integer?", domain_hint = "string?" },
      result = { answer = "string", abstractions = "{level, question, principle}[]", verification = "string",
                 verified = "boolean", revised = "boolean", solution = "string", total_llm_calls = "integer",
                 budget_limited = "boolean" },
    },
  },
}

--- Whether a verifier's reply accepts the solution: it says VERIFIED, and not as
--- "NOT VERIFIED" or "UNVERIFIED".
function M.is_verified(reply)
  local up = tostring(reply or ""):upper()
  if up:find("NOT VERIFIED", 1, true) or up:find("UNVERIFIED", 1, true) then return false end
  return up:find("%f[%w]VERIFIED%f[%W]") ~= nil
end

local function principles_text(abstractions)
  local parts = {}
  for i = #abstractions, 1, -1 do
    local a = abstractions[i]
    parts[#parts + 1] = string.format("Principle (level %d)\nQ: %s\nA: %s", a.level, a.question, a.principle)
  end
  return table.concat(parts, "\n\n")
end

function M.run(ctx)
  local task = U.text_knob("step_back", ctx)
  local want = U.int_knob("step_back", ctx, "abstraction_levels", 1, 0)
  local hint = ctx.domain_hint
  if hint ~= nil and (type(hint) ~= "string" or U.trim(hint) == "") then
    error("step_back: ctx.domain_hint must be a non-empty string when given")
  end

  -- the solution and its verification come first; levels get what is left, two calls each
  local levels = math.min(want, math.max(0, math.floor(U.fit(2 * want, 2) / 2)))
  local abstractions, calls = {}, 0
  for i = 1, levels do
    local target = i == 1 and task or abstractions[i - 1].question
    local domain = (hint and i == 1) and string.format("\nDomain: %s", hint) or ""
    local question = U.trim(alc.llm(string.format(
      "Question:\n%s%s\n\nDo not answer it. Step back and ask a more general question about the principle, "
        .. "concept or mechanism behind it: the question that should be answered first to solve this one. "
        .. "Reply with that step-back question only.", target, domain),
      { system = "You find the general principle behind a specific question.", max_tokens = 150 }))
    local principle = U.trim(alc.llm(string.format(
      "Question:\n%s\n\nAnswer accurately and thoroughly, focusing on the principles, mechanisms and general "
        .. "rules involved.", question),
      { system = "You are a domain expert who explains principles precisely.", max_tokens = 400 }))
    abstractions[i] = { level = i, question = question, principle = principle }
    calls = calls + 2
  end

  local principles = #abstractions > 0 and principles_text(abstractions) or "(none)"
  local solution = alc.llm(string.format(
    "Task:\n%s\n\nUnderlying principles:\n%s\n\nSolve the task by applying these principles explicitly; ground "
      .. "each step of your reasoning in them.", task, principles),
    { system = "You solve problems from first principles.", max_tokens = 600 })
  calls = calls + 1

  local verification, verified, revised, answer = "", false, false, solution
  local limited = levels < want
  if U.fit(1, 0) >= 1 then
    verification = alc.llm(string.format(
      "Task:\n%s\n\nPrinciples:\n%s\n\nProposed solution:\n%s\n\nCheck whether the solution applies the "
        .. "principles correctly. If it does, reply VERIFIED. If not, explain the gaps or misapplications and "
        .. "what needs correcting.", task, principles, solution),
      { system = "You are a rigorous verifier of reasoning.", max_tokens = 300 })
    calls = calls + 1
    verified = M.is_verified(verification)
    if not verified then
      if U.fit(1, 0) >= 1 then
        answer = alc.llm(string.format(
          "Task:\n%s\n\nPrinciples:\n%s\n\nPrevious solution:\n%s\n\nVerifier's feedback:\n%s\n\nRevise the "
            .. "solution so that it addresses the feedback and stays faithful to the principles.",
          task, principles, solution, verification),
          { system = "You revise solutions carefully.", max_tokens = 600 })
        calls, revised = calls + 1, true
      else
        limited = true
      end
    end
  else
    limited = true
  end

  U.record("step_back.levels", #abstractions)
  ctx.result = {
    answer = U.trim(answer), abstractions = U.arr(abstractions), verification = U.trim(verification),
    verified = verified, revised = revised, solution = U.trim(solution), total_llm_calls = calls,
    budget_limited = limited,
  }
  return ctx
end

return M
