--- sot: skeleton-of-thought.
---
--- One call writes a short outline (numbered points), every point is then expanded
--- independently in one batch, and the expansions are assembled in outline order
--- without a further call.
---
--- Knobs (ctx):
---   task             string   the task needing a long-form answer (required)
---   max_sections     integer  most outline points kept (default 6)
---   section_tokens   integer  token cap per point expansion (default 400)
---   skeleton_tokens  integer  token cap of the outline (default 300)
--- Result: ctx.result = { answer, skeleton = [point], sections = [{point, text}] }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "sot",
  version = "0.1.0",
  description = "Skeleton-of-thought: outline first, expand every point in one parallel batch, assemble in order",
  category = "planning",
  paper = "Skeleton-of-Thought: Prompting LLMs for Efficient Parallel Generation, Ning et al., 2023",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", max_sections = "integer?", section_tokens = "integer?", skeleton_tokens = "integer?" },
      result = { answer = "string", skeleton = "array", sections = "array" },
    },
  },
}

--- Outline points of a skeleton reply: its list items, else its non-empty lines.
function M.points(text, max)
  local pts = U.list_items(text, max)
  if #pts > 0 then return pts end
  for line in (tostring(text or "") .. "\n"):gmatch("(.-)\r?\n") do
    if U.trim(line) ~= "" and #pts < max then pts[#pts + 1] = U.trim(line) end
  end
  return pts
end

function M.run(ctx)
  local task = ctx.task or error("sot: ctx.task is required")
  local max = ctx.max_sections or 6
  if max < 1 then error("sot: ctx.max_sections must be at least 1") end

  local skeleton = alc.llm(string.format(
    "Task:\n%s\n\nDo not answer yet. Write only a skeleton of the answer: at most %d numbered points, "
      .. "each a few words long.", task, max), { max_tokens = ctx.skeleton_tokens or 300 })
  local points = M.points(skeleton, max)
  if #points == 0 then points = { task } end

  local outline = U.numbered(points)
  local items = {}
  for i, p in ipairs(points) do
    items[i] = {
      prompt = string.format(
        "Task:\n%s\n\nOutline of the answer:\n%s\n\nWrite only the content of point %d (\"%s\") in a few "
          .. "sentences. Do not repeat the other points.", task, outline, i, p),
      max_tokens = ctx.section_tokens or 400,
    }
  end
  local texts = alc.llm_batch(items)

  local sections, parts = {}, {}
  for i, p in ipairs(points) do
    sections[i] = { point = p, text = U.trim(texts[i]) }
    parts[i] = string.format("%d. %s\n%s", i, p, sections[i].text)
  end
  U.record("sot.sections", #points)
  ctx.result = { answer = table.concat(parts, "\n\n"), skeleton = U.arr(points), sections = U.arr(sections) }
  return ctx
end

return M
