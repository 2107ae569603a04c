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
package.loaded["analogical"] = nil
local an = require("analogical")

describe("analogical", function()
  it("has meta", function()
    expect(an.meta.name).to.equal("analogical")
  end)

  it("recalls examples and solves with them", function()
    local log = mock({
      "Sure.\nEXAMPLE 1: sum 1..10\nuse n(n+1)/2\nEXAMPLE 2: sum of odds\nn^2",
      "by the formula\nANSWER: 5050",
    })
    local ctx = an.run({ task = "Sum 1..100", n_analogies = 2 })
    expect(shape(log)).to.equal("llm,llm")
    expect(log.prompts[1]).to.match("Recall 2 different problems")
    expect(ctx.result.analogies).to.equal({ "sum 1..10\nuse n(n+1)/2", "sum of odds\nn^2" })
    expect(log.prompts[2]).to.match("1%. sum 1%.%.10\nuse n%(n%+1%)/2\n2%. sum of odds")
    expect(ctx.result.answer).to.equal("5050")
  end)

  it("passes unstructured recollections through", function()
    local log = mock({ "just a memory", "ANSWER: x" })
    local ctx = an.run({ task = "t" })
    expect(log.prompts[2]).to.match("Related solved problems:\njust a memory\n")
    expect(#ctx.result.analogies).to.equal(0)
  end)
end)
