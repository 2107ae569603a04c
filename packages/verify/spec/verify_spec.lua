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
package.loaded["verify"] = nil
local verify = require("verify")

describe("verify", function()
  it("has meta", function()
    expect(verify.meta.name).to.equal("verify")
  end)

  it("stops at the first passing check", function()
    local log = mock({ "ANSWER: 12", "fine\nVERDICT: CORRECT" })
    local ctx = verify.run({ task = "3 * 4" })
    expect(shape(log)).to.equal("llm,llm")
    expect(log.prompts[2]).to.match("Proposed solution:\nANSWER: 12")
    expect(ctx.result.verified).to.be(true)
    expect(ctx.result.answer).to.equal("12")
    expect(ctx.result.attempts).to.equal(1)
  end)

  it("retries with the objections", function()
    local log = mock({ "ANSWER: 13", "wrong\nVERDICT: INCORRECT", "ANSWER: 12", "VERDICT: correct" })
    local ctx = verify.run({ task = "3 * 4" })
    expect(#log.prompts).to.equal(4)
    expect(log.prompts[3]).to.match("Reviewer's objections:\nwrong")
    expect(ctx.result.answer).to.equal("12")
    expect(ctx.result.attempts).to.equal(2)
    expect(log.stats["verify.verified"]).to.be(true)
  end)

  it("gives up after max_retries", function()
    local bad = "VERDICT: INCORRECT"
    local log = mock({ "ANSWER: 1", bad, "ANSWER: 2", bad, "ANSWER: 3", bad })
    local ctx = verify.run({ task = "t" })
    expect(#log.prompts).to.equal(6)
    expect(ctx.result.verified).to.be(false)
    expect(ctx.result.answer).to.equal("3")
    expect(verify.passed("VERDICT: INCORRECT")).to_not.be.truthy()
  end)
end)
