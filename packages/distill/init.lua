--- distill: several reasoning traces distilled into one concise answer.
---
--- Map step (one batch): either `n` independent reasoning traces for ctx.task, or,
--- when ctx.text is given, one extraction per chunk of the text keeping only what
--- serves the goal. Reduce step (one call): the traces/extracts are condensed into a
--- single concise answer that keeps the points they agree on and drops the rest.
---
--- Knobs (ctx):
---   task           string   the question (required unless text is given)
---   text           string   source text to distil in chunks (optional)
---   goal           string   what the distillation is for (default: ctx.task, else
---                           "Summarize the key points")
---   n              integer  number of reasoning traces without text (default 4)
---   temperature    number   temperature of the traces (default 0.8)
---   chunk_size     integer  characters per chunk of text (default 4000)
---   chunk_overlap  integer  characters shared by neighbouring chunks (default 200)
---   map_tokens     integer  token cap per trace / extract (default 600)
---   reduce_tokens  integer  token cap of the distillation call (default 500)
--- Result: ctx.result = { answer, distilled, traces, mode, n_traces, kept }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "distill",
  version = "0.1.0",
  description = "Distil: batched reasoning traces (or text chunks) condensed into one concise answer",
  category = "synthesis",
  paper = "Distilling Step-by-Step! Outperforming Larger Language Models with Less Training Data and Smaller Model Sizes, Hsieh et al., 2023",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string (or text)", text = "string?", goal = "string?", n = "integer?",
                temperature = "number?", chunk_size = "integer?", chunk_overlap = "integer?",
                map_tokens = "integer?", reduce_tokens = "integer?" },
      result = { answer = "string", distilled = "string", traces = "string[]", mode = "string",
                 n_traces = "integer", kept = "integer" },
    },
  },
}

--- Splits `text` into pieces of at most `size` characters, neighbours sharing `overlap`.
function M.chunks(text, size, overlap)
  local out, i, len = {}, 1, #text
  if overlap >= size then overlap = 0 end
  while i <= len do
    out[#out + 1] = text:sub(i, i + size - 1)
    if i + size - 1 >= len then break end
    i = i + size - overlap
  end
  if #out == 0 then out[1] = "" end
  return out
end

local function irrelevant(s)
  local t = U.normalize(s)
  return t == "" or t == "none" or t == "nothing relevant" or t == "n/a"
end

function M.run(ctx)
  local text = ctx.text
  local task = ctx.task
  if text == nil and task == nil then error("distill: ctx.task (or ctx.text) is required") end
  local goal = ctx.goal or task or "Summarize the key points"
  local map_tokens = ctx.map_tokens or 600
  local items, mode = {}, nil
  if text ~= nil then
    mode = "chunks"
    local parts = M.chunks(text, ctx.chunk_size or 4000, ctx.chunk_overlap or 200)
    for i, p in ipairs(parts) do
      items[i] = { prompt = string.format(
        "Goal: %s\n\nExcerpt %d of %d:\n%s\n\nList only what in this excerpt matters for the goal, as short "
          .. "notes. If nothing does, reply NONE.", goal, i, #parts, p), max_tokens = map_tokens }
    end
  else
    mode = "traces"
    local n = ctx.n or 4
    if n < 1 then error("distill: ctx.n must be at least 1") end
    for i = 1, n do
      items[i] = { prompt = string.format(
        "Question:\n%s\n\nReason it through step by step on your own, then end with\nANSWER: <answer>", task),
        temperature = ctx.temperature or 0.8, max_tokens = map_tokens }
    end
  end
  local replies = alc.llm_batch(items)
  local kept = {}
  for _, r in ipairs(replies) do
    if not irrelevant(r) then kept[#kept + 1] = U.trim(r) end
  end
  local distilled
  if #kept == 0 then
    distilled = "NONE"
  else
    local what = mode == "traces" and "independent reasoning traces" or "notes extracted from the source"
    distilled = alc.llm(string.format(
      "Goal: %s\n\nBelow are %d %s:\n\n%s\n\nDistil them into one concise, self-contained result: keep the "
        .. "reasoning steps and facts they agree on or that are clearly right, drop repetition and errors, "
        .. "and resolve any conflict explicitly. Be brief. End with\nANSWER: <the distilled answer>",
      goal, #kept, what, U.numbered(kept)), { max_tokens = ctx.reduce_tokens or 500 })
  end
  U.record("distill.kept", #kept)
  ctx.result = {
    answer = U.answer_of(distilled), distilled = distilled, traces = U.arr(kept), mode = mode,
    n_traces = #items, kept = #kept,
  }
  return ctx
end

return M
