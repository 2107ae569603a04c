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
package.loaded["rephrase_respond"] = nil
local rr = require("rephrase_respond")

describe("rephrase_respond", function()
  it("has meta", function()
    expect(rr.meta.name).to.equal("rephrase_respond")
  end)

  it("rephrases then answers the restatement", function()
    local log = mock({ "  Was Obama born in an even-numbered year?  ", "1961 is odd\nANSWER: no" })
    local ctx = rr.run({ task = "Was Obama born in an even year?" })
    expect(shape(log)).to.equal("llm,llm")
    expect(log.prompts[1]).to.match("Restate this question")
    expect(log.prompts[2]).to.match("Restated question:\nWas Obama born in an even%-numbered year%?\n")
    expect(ctx.result.rephrased).to.equal("Was Obama born in an even-numbered year?")
    expect(ctx.result.answer).to.equal("no")
  end)

  it("requires a task", function()
    mock({})
    expect(function() rr.run({}) end).to.fail()
  end)
end)
