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
package.loaded["reflect"] = nil
local reflect = require("reflect")

describe("reflect", function()
  it("has meta", function()
    expect(reflect.meta.name).to.equal("reflect")
  end)

  it("runs draft, then critique and revision for each round", function()
    local log = mock({ "draft 1", "too short", "draft 2", "missing example", "draft 3" })
    local ctx = reflect.run({ task = "Explain tides" })
    expect(shape(log)).to.equal("llm,llm,llm,llm,llm")
    expect(log.prompts[1]).to.match("Explain tides")
    expect(log.prompts[2]).to.match("Candidate answer:\ndraft 1")
    expect(log.prompts[3]).to.match("Critique:\ntoo short")
    expect(log.prompts[4]).to.match("draft 2")
    expect(log.prompts[5]).to.match("missing example")
    expect(ctx.result.answer).to.equal("draft 3")
    expect(ctx.result.rounds_used).to.equal(2)
    expect(ctx.result.stopped_early).to.be(false)
    expect(log.stats["reflect.rounds"]).to.equal(2)
  end)

  it("stops when the critic finds nothing", function()
    local log = mock({ "good draft", "No issues." })
    local ctx = reflect.run({ task = "t", rounds = 5 })
    expect(#log.prompts).to.equal(2)
    expect(ctx.result.answer).to.equal("good draft")
    expect(ctx.result.stopped_early).to.be(true)
  end)

  it("honours a custom stop phrase", function()
    local log = mock({ "d", "fix x", "d2", "LGTM" })
    local ctx = reflect.run({ task = "t", rounds = 3, stop_phrase = "LGTM" })
    expect(#log.prompts).to.equal(4)
    expect(log.prompts[2]).to.match("reply exactly: LGTM")
    expect(ctx.result.answer).to.equal("d2")
  end)
end)
