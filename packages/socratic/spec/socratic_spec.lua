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
package.loaded["socratic"] = nil
local so = require("socratic")

describe("socratic", function()
  it("has meta", function()
    expect(so.meta.name).to.equal("socratic")
  end)

  it("alternates questions and answers, then concludes", function()
    local log = mock({ "What is a prime?", "Only divisible by 1 and itself.", "Is 9 divisible by 3?", "Yes.",
      "DONE", "so no\nANSWER: not prime" })
    local ctx = so.run({ task = "Is 9 prime?" })
    expect(shape(log)).to.equal("llm,llm,llm,llm,llm,llm")
    expect(log.prompts[1]).to.match("%(no questions yet%)")
    expect(log.prompts[2]).to.match("briefly:\nWhat is a prime%?")
    expect(log.prompts[3]).to.match("Q1: What is a prime%?\nA1: Only divisible")
    expect(log.prompts[6]).to.match("A2: Yes%.")
    expect(#ctx.result.dialogue).to.equal(2)
    expect(ctx.result.answer).to.equal("not prime")
    expect(log.stats["socratic.turns"]).to.equal(2)
  end)

  it("honours the turn limit", function()
    local log = mock({ "q1", "a1", "ANSWER: z" })
    local ctx = so.run({ task = "t", turns = 1 })
    expect(#log.prompts).to.equal(3)
    expect(ctx.result.dialogue).to.equal({ { question = "q1", answer = "a1" } })
  end)

  it("recognises DONE only on its own line", function()
    expect(so.is_done("  done \n")).to.be(true)
    expect(so.is_done("Are we done yet?")).to.be(false)
  end)
end)
