--- calibrate: confidence-gated answering.
---
--- One call answers the task and states a confidence in [0, 1]. At or above the
--- threshold that answer is returned; below it the strategy escalates to a heavier
--- fallback:
---   "ensemble"  n fresh samples in one batch, majority vote over them (default)
---   "panel"     n personas in one batch, then one synthesis call
---   "retry"     one more careful call
---
--- Knobs (ctx):
---   task           string  the question (required)
---   threshold      number  confidence needed to accept the first answer (default 0.7)
---   fallback       string  "ensemble" | "panel" | "retry" (default "ensemble")
---   fallback_opts  table   { n = samples/personas (default 3), temperature (default 0.8),
---                            personas = {string...} }
---   gen_tokens     integer token cap per call (default 400)
--- Result: ctx.result = { answer, confidence, escalated, strategy, total_llm_calls,
---                        initial_answer, fallback_detail? }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "calibrate",
  version = "0.1.0",
  description = "Confidence-gated answering: accept a confident answer, escalate to a fallback when not",
  category = "meta",
  paper = "Confidence Improves Self-Consistency in LLMs (CISC), Taubenfeld et al., 2025",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", threshold = "number?", fallback = "string?", fallback_opts = "table?",
                gen_tokens = "integer?" },
      result = { answer = "string", confidence = "number", escalated = "boolean", strategy = "string",
                 total_llm_calls = "integer", initial_answer = "string", fallback_detail = "table?" },
    },
  },
}

local DEFAULT_PERSONAS = {
  "a meticulous mathematician who checks every step",
  "a pragmatic engineer who sanity-checks against known facts",
  "a sceptical reviewer who looks for the trap in the question",
}

--- Confidence in [0, 1] from a `CONFIDENCE:` line; percentages (e.g. 85 or 85%) are
--- scaled down. 0 when the line is missing or unreadable.
function M.confidence_of(text)
  local v = U.tagged(text, "CONFIDENCE")
  local n = v and tonumber(v:match("%d+%.?%d*"))
  if n == nil then return 0 end
  if n > 1 then n = n / 100 end
  if n < 0 then n = 0 elseif n > 1 then n = 1 end
  return n
end

local function answer_prompt(task)
  return string.format(
    "Question:\n%s\n\nAnswer the question briefly, then judge how likely your answer is to be "
      .. "correct. End with exactly two lines:\nANSWER: <answer>\nCONFIDENCE: <a number from 0 to 1>",
    task)
end

function M.run(ctx)
  local task = ctx.task or error("calibrate: ctx.task is required")
  local threshold = ctx.threshold or 0.7
  local fallback = ctx.fallback or "ensemble"
  local fopts = ctx.fallback_opts or {}
  local tokens = ctx.gen_tokens or 400
  local first = alc.llm(answer_prompt(task), { max_tokens = tokens,
    system = "You answer carefully and report an honest, calibrated confidence." })
  local answer, confidence = U.answer_of(first), M.confidence_of(first)
  local calls = 1
  U.record("calibrate.confidence", confidence)
  local res = { answer = answer, initial_answer = answer, confidence = confidence, escalated = false,
                strategy = "direct" }
  if confidence < threshold then
    res.escalated = true
    res.strategy = fallback
    local n = fopts.n or 3
    if fallback == "retry" then
      local reply = alc.llm(string.format(
        "Question:\n%s\n\nA first attempt answered %q but was unsure. Re-derive the answer from scratch, "
          .. "check edge cases, and end with\nANSWER: <answer>", task, answer), { max_tokens = tokens })
      calls = calls + 1
      res.answer = U.answer_of(reply)
      res.fallback_detail = { raw = reply }
    elseif fallback == "ensemble" then
      local items = {}
      for i = 1, n do
        items[i] = { prompt = answer_prompt(task), temperature = fopts.temperature or 0.8, max_tokens = tokens }
      end
      local replies = alc.llm_batch(items)
      calls = calls + n
      local answers = {}
      for i, r in ipairs(replies) do answers[i] = U.answer_of(r) end
      local winner, votes, tally = U.vote(answers)
      res.answer = winner or answer
      res.fallback_detail = { answers = U.arr(answers), votes = votes, tally = U.arr(tally) }
    elseif fallback == "panel" then
      local personas = fopts.personas or DEFAULT_PERSONAS
      local items = {}
      for i, p in ipairs(personas) do
        items[i] = { prompt = string.format("Question:\n%s\n\nGive your view and end with\nANSWER: <answer>", task),
                     system = "You are " .. p .. ".", temperature = fopts.temperature, max_tokens = tokens }
      end
      local views = alc.llm_batch(items)
      local listed = {}
      for i, v in ipairs(views) do listed[i] = U.trim(v) end
      local synth = alc.llm(string.format(
        "Question:\n%s\n\nIndependent panel answers:\n%s\n\nWeigh them, resolve disagreements, and end with\n"
          .. "ANSWER: <answer>", task, U.numbered(listed)), { max_tokens = tokens })
      calls = calls + #items + 1
      res.answer = U.answer_of(synth)
      res.fallback_detail = { views = U.arr(listed), synthesis = synth }
    else
      error("calibrate: unknown fallback " .. tostring(fallback))
    end
  end
  res.total_llm_calls = calls
  ctx.result = res
  return ctx
end

return M
