--- factscore: atomic-fact precision of a text.
---
--- Splits the text into short, self-contained atomic facts (one call), then checks
--- every fact independently in one batch against the optional context (or the
--- model's own knowledge). The score is the supported fraction of the facts.
--- Without ctx.text the strategy first answers ctx.task and scores that answer.
---
--- Knobs (ctx):
---   text            string   the text to check (when absent, an answer to ctx.task)
---   task            string   question answered first when there is no text
---   context         string   reference material the facts are checked against (optional)
---   max_facts       integer  at most this many facts are checked (default 20)
---   extract_tokens  integer  token cap of the extraction call (default 600)
---   verify_tokens   integer  token cap per verification (default 200)
---   gen_tokens      integer  token cap of the answering call (default 500)
--- Result: ctx.result = { answer, score, supported, total, facts = [{fact, supported,
---                        reason}], unsupported, text }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "factscore",
  version = "0.1.0",
  description = "FActScore: split a text into atomic facts, verify each in one batch, score the supported fraction",
  category = "verification",
  paper = "FActScore: Fine-grained Atomic Evaluation of Factual Precision in Long Form Text Generation, Min et al., 2023",
}

M.spec = {
  entries = {
    run = {
      input = { text = "string (or task)", task = "string?", context = "string?", max_facts = "integer?",
                extract_tokens = "integer?", verify_tokens = "integer?", gen_tokens = "integer?" },
      result = { answer = "string", score = "number", supported = "integer", total = "integer",
                 facts = "{fact, supported, reason}[]", unsupported = "string[]", text = "string" },
    },
  },
}

--- The facts of an extraction reply: its list items, else its non-empty lines.
function M.facts_of(reply, max)
  local facts = U.list_items(reply, max)
  if #facts == 0 then
    for line in (tostring(reply or "") .. "\n"):gmatch("(.-)\r?\n") do
      local l = U.trim(line)
      if l ~= "" and (not max or #facts < max) then facts[#facts + 1] = l end
    end
  end
  return facts
end

--- true when a verification reply's VERDICT line (else its last line) starts with
--- SUPPORTED / YES / TRUE.
function M.supported_of(reply)
  local v = (U.tagged(reply, "VERDICT") or U.last_line(reply)):upper()
  if v:match("^NOT") or v:match("^UNSUPPORTED") or v:match("^NO") then return false end
  return v:match("^SUPPORTED") ~= nil or v:match("^YES") ~= nil or v:match("^TRUE") ~= nil
end

function M.run(ctx)
  local text = ctx.text
  local answer
  if text == nil then
    local task = ctx.task or error("factscore: ctx.text (or ctx.task) is required")
    text = alc.llm(string.format("Question:\n%s\n\nAnswer it in a few factual sentences; end with\n"
      .. "ANSWER: <short final answer>", task), { max_tokens = ctx.gen_tokens or 500 })
    answer = U.answer_of(text)
  end
  local extract = alc.llm(string.format(
    "Text:\n%s\n\nBreak the text into atomic facts: short standalone statements that each assert exactly "
      .. "one thing and make sense without the others (replace pronouns by names). Skip opinions and "
      .. "formatting. Reply with a numbered list, one fact per line.", text),
    { max_tokens = ctx.extract_tokens or 600 })
  local facts = M.facts_of(extract, ctx.max_facts or 20)
  local source = ctx.context and ("Reference material:\n" .. ctx.context .. "\n\n") or ""
  local basis = ctx.context and "the reference material" or "well-established knowledge"
  local items = {}
  for i, f in ipairs(facts) do
    items[i] = {
      prompt = string.format("%sClaim:\n%s\n\nIs the claim supported by %s? Explain in one sentence, then "
        .. "end with\nVERDICT: SUPPORTED or VERDICT: NOT SUPPORTED", source, f, basis),
      max_tokens = ctx.verify_tokens or 200,
    }
  end
  local replies = #items > 0 and alc.llm_batch(items) or {}
  local checked, unsupported, n_ok = {}, {}, 0
  for i, f in ipairs(facts) do
    local ok = M.supported_of(replies[i])
    if ok then n_ok = n_ok + 1 else unsupported[#unsupported + 1] = f end
    checked[i] = { fact = f, supported = ok, reason = U.trim(replies[i]) }
  end
  local score = #facts > 0 and n_ok / #facts or 0
  U.record("factscore.facts", #facts)
  U.record("factscore.score", score)
  ctx.result = {
    answer = answer or U.trim(text), score = score, supported = n_ok, total = #facts,
    facts = U.arr(checked), unsupported = U.arr(unsupported), text = text,
  }
  return ctx
end

return M
