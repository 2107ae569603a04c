local describe, it, expect = lust.describe, lust.it, lust.expect

-- Replaces the global `alc` with canned answers (strings, or functions of the prompt)
-- served in call order; records every prompt and the shape of every call.
local function mock(answers)
  local log = { calls = {}, prompts = {}, stats = {} }
  local n = 0
  local function answer(prompt)
    n = n + 1
    log.prompts[n] = prompt
    local a = answers[n]
    if type(a) == "function" then a = a(prompt) end
    if a == nil then error("no canned answer for prompt " .. n .. ": " .. tostring(prompt)) end
    return a
  end
  _G.alc = {
    llm = function(prompt, opts)
      log.calls[#log.calls + 1] = { kind = "llm", opts = opts or {} }
      return answer(prompt)
    end,
    llm_batch = function(items)
      log.calls[#log.calls + 1] = { kind = "batch", size = #items, items = items }
      local out = {}
      for i, item in ipairs(items) do out[i] = answer(item.prompt) end
      return out
    end,
    stats = { record = function(k, v) log.stats[k] = v end },
    log = function() end,
    progress = function() end,
  }
  return log
end

-- The call sequence as text, e.g. "llm,batch3,llm".
local function shape(log)
  local parts = {}
  for i, c in ipairs(log.calls) do
    parts[i] = c.kind == "llm" and "llm" or ("batch" .. c.size)
  end
  return table.concat(parts, ",")
end
package.loaded["plan_solve"] = nil
local ps = require("plan_solve")

describe("plan_solve", function()
  it("has meta", function()
    expect(ps.meta.name).to.equal("plan_solve")
  end)

  it("plans then solves with the plan", function()
    local log = mock({ "Plan:\n1. read\n2) add", "read, add\nANSWER: 10" })
    local ctx = ps.run({ task = "Add 4 and 6" })
    expect(shape(log)).to.equal("llm,llm")
    expect(log.prompts[1]).to.match("Do not solve it yet")
    expect(log.prompts[2]).to.match("Plan:\n1%. read\n2%. add")
    expect(ctx.result.plan).to.equal({ "read", "add" })
    expect(ctx.result.answer).to.equal("10")
    expect(log.stats["plan_solve.plan_steps"]).to.equal(2)
  end)

  it("passes an unstructured plan through verbatim", function()
    local log = mock({ "just add them", "ANSWER: 10" })
    ps.run({ task = "t", solve_tokens = 42 })
    expect(log.prompts[2]).to.match("Plan:\njust add them")
    expect(log.calls[2].opts.max_tokens).to.equal(42)
  end)
end)
