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
package.loaded["least_to_most"] = nil
local ltm = require("least_to_most")

describe("least_to_most", function()
  it("has meta", function()
    expect(ltm.meta.name).to.equal("least_to_most")
  end)

  it("answers each sub-question with the earlier answers in view", function()
    local log = mock({ "1. How many apples?\n2. How many left?", "5", "3", "so\nANSWER: 3" })
    local ctx = ltm.run({ task = "Apples problem" })
    expect(shape(log)).to.equal("llm,llm,llm,llm")
    expect(log.prompts[2]).to.match("%(nothing yet%)")
    expect(log.prompts[2]).to.match("Now answer: How many apples%?")
    expect(log.prompts[3]).to.match("Q1: How many apples%?\nA1: 5")
    expect(log.prompts[4]).to.match("A2: 3")
    expect(ctx.result.answer).to.equal("3")
    expect(ctx.result.subproblems[2]).to.equal({ question = "How many left?", answer = "3" })
  end)

  it("caps the number of sub-questions", function()
    local log = mock({ "1. a\n2. b\n3. c", "x", "y", "ANSWER: z" })
    local ctx = ltm.run({ task = "t", max_subproblems = 2 })
    expect(#log.prompts).to.equal(4)
    expect(#ctx.result.subproblems).to.equal(2)
  end)

  it("goes straight to the answer without a list", function()
    local log = mock({ "no list here", "ANSWER: 1" })
    local ctx = ltm.run({ task = "t" })
    expect(#log.prompts).to.equal(2)
    expect(ctx.result.answer).to.equal("1")
  end)
end)
