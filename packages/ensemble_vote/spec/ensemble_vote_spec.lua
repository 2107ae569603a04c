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
package.loaded["ensemble_vote"] = nil
local ev = require("ensemble_vote")

describe("ensemble_vote", function()
  it("has meta", function()
    expect(ev.meta.name).to.equal("ensemble_vote")
  end)

  it("takes a clear majority without a tie-break", function()
    local log = mock({ "ANSWER: 7", "ANSWER: 7", "ANSWER: 8", "ANSWER: 7" })
    local ctx = ev.run({ task = "3 + 4" })
    expect(shape(log)).to.equal("batch4")
    expect(log.calls[1].items[2].system).to.match("first principles")
    expect(ctx.result.answer).to.equal("7")
    expect(ctx.result.share).to.equal(0.75)
    expect(ctx.result.tie_break).to.be(false)
  end)

  it("asks for a tie-break on a split vote", function()
    local log = mock({ "ANSWER: 7", "ANSWER: 8", "ANSWER: 8", "ANSWER: 7", "ANSWER: 8" })
    local ctx = ev.run({ task = "t" })
    expect(shape(log)).to.equal("batch4,llm")
    expect(log.prompts[5]).to.match("1%. 7 %(2 votes%)\n2%. 8 %(2 votes%)")
    expect(ctx.result.answer).to.equal("8")
    expect(ctx.result.tie_break).to.be(true)
  end)

  it("skips the tie-break when everyone agrees", function()
    local log = mock({ "ANSWER: x", "ANSWER: X." })
    local ctx = ev.run({ task = "t", approaches = { "a", "b" }, threshold = 1 })
    expect(shape(log)).to.equal("batch2")
    expect(ctx.result.answer).to.equal("x")
  end)
end)
