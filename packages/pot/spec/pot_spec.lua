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
package.loaded["pot"] = nil
local pot = require("pot")

describe("pot", function()
  it("has meta", function()
    expect(pot.meta.name).to.equal("pot")
  end)

  it("evaluates the program and phrases the answer", function()
    local log = mock({
      "CALC apples = 3 * 4\nCALC left = apples - 5\nRESULT left",
      "ANSWER: 7 apples",
    })
    local ctx = pot.run({ task = "Apples" })
    expect(shape(log)).to.equal("llm,llm")
    expect(log.prompts[2]).to.match("apples = 3 %* 4 = 12\nleft = apples %- 5 = 7\nResult: 7")
    expect(ctx.result.value).to.equal(7)
    expect(ctx.result.answer).to.equal("7 apples")
    expect(#ctx.result.steps).to.equal(2)
  end)

  it("answers with the value alone when explain is off", function()
    local log = mock({ "CALC x = 2 ^ 10\nCALC y = x / 4" })
    local ctx = pot.run({ task = "t", explain = false })
    expect(#log.prompts).to.equal(1)
    expect(ctx.result.answer).to.equal("256")
  end)

  it("falls back to the reply's answer without a program", function()
    local log = mock({ "I just know it.\nANSWER: 5" })
    local ctx = pot.run({ task = "t" })
    expect(#log.prompts).to.equal(1)
    expect(ctx.result.value).to_not.exist()
    expect(ctx.result.answer).to.equal("5")
  end)

  it("refuses anything but arithmetic", function()
    expect(pot.evaluate("os.exit()", {})).to_not.exist()
    local v, err = pot.evaluate("a + 1", {})
    expect(err).to.match("unknown name 'a'")
    expect(pot.evaluate("(1 + 2) * 3 % 4", {})).to.equal(1)
    local value, steps, errors = pot.execute("CALC a = 1 / 0\nCALC b = 2")
    expect(#errors).to.equal(1)
    expect(value).to.equal(2)
  end)
end)
