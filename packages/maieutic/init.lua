--- maieutic: explain both truth values, test each explanation, keep the consistent side.
---
--- One batch asks for the best explanation that the statement is TRUE and the best that
--- it is FALSE; a second batch asks whether each explanation is itself sound. When
--- exactly one side survives it wins; otherwise a judge weighs both.
---
--- Knobs (ctx):
---   task  string  the statement or yes/no question (required)
--- Result: ctx.result = { answer = "TRUE"|"FALSE"|"UNKNOWN", explanations = {true_side, false_side},
---                        sound = {true_side, false_side}, judged }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "maieutic",
  version = "0.1.0",
  description = "Maieutic prompting: abductive explanations for both truth values, kept if self-consistent",
  category = "reasoning",
}

--- Reads `SOUND: YES|NO` from a check (anything else counts as NO).
function M.is_sound(text)
  local v = (U.tagged(text, "SOUND") or ""):upper()
  return v:match("^%s*YES") ~= nil
end

local function truth(text)
  local v = (U.tagged(text, "VERDICT") or ""):upper()
  if v:find("TRUE", 1, true) then return "TRUE" end
  if v:find("FALSE", 1, true) then return "FALSE" end
  return "UNKNOWN"
end

function M.run(ctx)
  local task = ctx.task or error("maieutic: ctx.task is required")
  local function explain(side)
    return { prompt = string.format(
      "Statement:\n%s\n\nGive the strongest explanation of why the statement is %s.", task, side), max_tokens = 400 }
  end
  local ex = alc.llm_batch({ explain("TRUE"), explain("FALSE") })
  local function check(e)
    return { prompt = string.format(
      "Explanation:\n%s\n\nIs this explanation factually and logically sound on its own? Answer with a line "
        .. "SOUND: YES or SOUND: NO.", e), max_tokens = 200 }
  end
  local checks = alc.llm_batch({ check(ex[1]), check(ex[2]) })
  local sound_true, sound_false = M.is_sound(checks[1]), M.is_sound(checks[2])
  local answer, judged
  if sound_true and not sound_false then
    answer, judged = "TRUE", false
  elseif sound_false and not sound_true then
    answer, judged = "FALSE", false
  else
    local verdict = alc.llm(string.format(
      "Statement:\n%s\n\nCase for TRUE:\n%s\n\nCase for FALSE:\n%s\n\nWeigh both cases. End with\n"
        .. "VERDICT: TRUE or VERDICT: FALSE", task, ex[1], ex[2]), { max_tokens = 500 })
    answer, judged = truth(verdict), true
  end
  U.record("maieutic.judged", judged)
  ctx.result = {
    answer = answer, judged = judged,
    explanations = { true_side = ex[1], false_side = ex[2] },
    sound = { true_side = sound_true, false_side = sound_false },
  }
  return ctx
end

return M
