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
package.loaded["self_refine"] = nil
local sr = require("self_refine")

describe("self_refine", function()
  it("has meta", function()
    expect(sr.meta.name).to.equal("self_refine")
  end)

  it("refines until the score reaches the threshold", function()
    local log = mock({ "v1", "vague\nSCORE: 4", "v2", "better\nSCORE: 8" })
    local ctx = sr.run({ task = "Write a haiku" })
    expect(shape(log)).to.equal("llm,llm,llm,llm")
    expect(log.prompts[2]).to.match("Answer under review:\nv1")
    expect(log.prompts[3]).to.match("Feedback:\nvague")
    expect(log.prompts[4]).to.match("Answer under review:\nv2")
    expect(ctx.result.answer).to.equal("v2")
    expect(ctx.result.scores).to.equal({ 4, 8 })
    expect(log.stats["self_refine.final_score"]).to.equal(8)
  end)

  it("does not refine after the last feedback round", function()
    local log = mock({ "v1", "SCORE: 2", "v2", "SCORE: 3" })
    local ctx = sr.run({ task = "t", max_iters = 2, threshold = 9 })
    expect(#log.prompts).to.equal(4)
    expect(ctx.result.answer).to.equal("v2")
    expect(ctx.result.score).to.equal(3)
  end)

  it("clamps scores", function()
    mock({ "v1", "SCORE: 42" })
    local ctx = sr.run({ task = "t" })
    expect(ctx.result.score).to.equal(10)
  end)
end)
