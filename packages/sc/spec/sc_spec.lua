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
package.loaded["sc"] = nil
local sc = require("sc")

describe("sc", function()
  it("has meta", function()
    expect(sc.meta.name).to.equal("sc")
    expect(sc.meta.category).to.be.a("string")
  end)

  it("samples n answers in one batch and takes the majority", function()
    local log = mock({ "a\nANSWER: Paris", "ANSWER: paris.", "ANSWER: Lyon", "b\nANSWER: Lyon", "ANSWER: Paris" })
    local ctx = sc.run({ task = "Capital of France?" })
    expect(shape(log)).to.equal("batch5")
    expect(log.calls[1].items[1].temperature).to.equal(0.8)
    for i = 1, 5 do expect(log.prompts[i]).to.match("Capital of France%?") end
    expect(ctx.result.answer).to.equal("Paris")
    expect(ctx.result.votes).to.equal(3)
    expect(ctx.result.agreement).to.equal(0.6)
    expect(ctx.result.tally).to.equal({ { answer = "Paris", count = 3 }, { answer = "Lyon", count = 2 } })
    expect(log.stats["sc.n"]).to.equal(5)
  end)

  it("breaks ties by first appearance and honours n", function()
    local log = mock({ "ANSWER: B", "ANSWER: A", "ANSWER: A", "ANSWER: B" })
    local ctx = sc.run({ task = "t", n = 4, temperature = 0.3 })
    expect(shape(log)).to.equal("batch4")
    expect(log.calls[1].items[4].temperature).to.equal(0.3)
    expect(ctx.result.answer).to.equal("B")
  end)

  it("uses the last line without an ANSWER tag", function()
    mock({ "thinking\n12", "12" })
    local ctx = sc.run({ task = "t", n = 2 })
    expect(ctx.result.answer).to.equal("12")
    expect(ctx.result.votes).to.equal(2)
  end)
end)
