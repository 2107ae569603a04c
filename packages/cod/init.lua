--- cod: chain-of-density summarisation.
---
--- Writes a first, deliberately sparse summary of the source text, then rewrites it
--- `rounds - 1` more times: each rewrite names the salient entities the current
--- summary still misses and folds them in without letting the summary grow. The
--- rounds depend on one another, so each is one sequential call.
---
--- Knobs (ctx):
---   text           string   the source text (when absent, ctx.task is summarised)
---   task           string   fallback source text
---   rounds         integer  number of summaries written (default 5)
---   target_length  integer  word budget of every summary (default max(50, words/3))
---   gen_tokens     integer  token cap per call (default 600)
--- Result: ctx.result = { answer, summaries, missing, rounds, input_words, output_words,
---                        compression_ratio }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "cod",
  version = "0.1.0",
  description = "Chain of density: a sparse summary rewritten round by round to pack in missing entities",
  category = "summarization",
  paper = "From Sparse to Dense: GPT-4 Summarization with Chain of Density Prompting, Adams et al., 2023",
}

M.spec = {
  entries = {
    run = {
      input = { text = "string (or task)", task = "string?", rounds = "integer?", target_length = "integer?",
                gen_tokens = "integer?" },
      result = { answer = "string", summaries = "string[]", missing = "string[]", rounds = "integer",
                 input_words = "integer", output_words = "integer", compression_ratio = "number" },
    },
  },
}

function M.words(s)
  local n = 0
  for _ in tostring(s or ""):gmatch("%S+") do n = n + 1 end
  return n
end

--- Reads a reply of the form `MISSING: ...` / `SUMMARY: ...` (the summary may span
--- several lines); without a SUMMARY tag the whole reply is the summary.
function M.parse(reply)
  local text = tostring(reply or "")
  local missing = U.tagged(text, "MISSING") or ""
  local body = text:match("[Ss][Uu][Mm][Mm][Aa][Rr][Yy]:%s*(.*)$")
  if body == nil then
    local kept = {}
    for line in (text .. "\n"):gmatch("(.-)\r?\n") do
      if not U.trim(line):lower():match("^missing:") then kept[#kept + 1] = line end
    end
    body = table.concat(kept, "\n")
  end
  return U.trim(body), missing
end

function M.run(ctx)
  local text = ctx.text or ctx.task or error("cod: ctx.text (or ctx.task) is required")
  local rounds = ctx.rounds or 5
  if rounds < 1 then error("cod: ctx.rounds must be at least 1") end
  local input_words = M.words(text)
  local budget = ctx.target_length or math.max(50, math.floor(input_words / 3))
  local opts = { max_tokens = ctx.gen_tokens or 600,
                 system = "You write faithful, self-contained summaries and never add outside facts." }
  local summaries, missing = {}, {}
  local first = string.format(
    "Source:\n%s\n\nWrite a first summary of the source in about %d words. Keep it general and "
      .. "light on specifics: later rounds will make it denser.\nReply as\nSUMMARY: <summary>",
    text, budget)
  summaries[1], missing[1] = M.parse(alc.llm(first, opts))
  for r = 2, rounds do
    local prompt = string.format(
      "Source:\n%s\n\nCurrent summary (round %d of %d):\n%s\n\nName 1-3 informative entities or facts "
        .. "from the source that the current summary lacks. Then rewrite the summary so that it keeps "
        .. "everything it already says, adds those items, and stays at about %d words (compress, merge "
        .. "and drop filler phrases to make room).\nReply as\nMISSING: <items, separated by ;>\n"
        .. "SUMMARY: <the denser summary>",
      text, r - 1, rounds, summaries[r - 1], budget)
    summaries[r], missing[r] = M.parse(alc.llm(prompt, opts))
    if summaries[r] == "" then summaries[r] = summaries[r - 1] end
  end
  local final = summaries[#summaries]
  local out_words = M.words(final)
  U.record("cod.rounds", rounds)
  ctx.result = {
    answer = final, summaries = U.arr(summaries), missing = U.arr(missing), rounds = rounds,
    input_words = input_words, output_words = out_words,
    compression_ratio = input_words > 0 and out_words / input_words or 0,
  }
  return ctx
end

return M
