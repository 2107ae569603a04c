-- A small debate strategy: two sides argue in parallel, a judge decides.
local task = ctx.task or "Is a hot dog a sandwich?"

local args = alc.llm_batch({
  { prompt = "Argue FOR, in one sentence: " .. task, system = "You are a debater.", max_tokens = 200 },
  { prompt = "Argue AGAINST, in one sentence: " .. task, system = "You are a debater.", max_tokens = 200 },
})
print("collected " .. #args .. " arguments")

local verdict = alc.llm(
  "Question: " .. task .. "\nFOR: " .. args[1] .. "\nAGAINST: " .. args[2]
    .. "\nWhich side argued better? Reply FOR or AGAINST.",
  { system = "You are a fair judge.", max_tokens = 10 }
)

return { task = task, arguments = args, verdict = verdict }
