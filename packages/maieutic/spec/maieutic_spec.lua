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
package.loaded["maieutic"] = nil
local mai = require("maieutic")

describe("maieutic", function()
  it("has meta", function()
    expect(mai.meta.name).to.equal("maieutic")
  end)

  it("keeps the only sound side without a judge", function()
    local log = mock({ "whales breathe air", "whales live in water", "SOUND: YES", "SOUND: NO - fish too" })
    local ctx = mai.run({ task = "Whales are mammals." })
    expect(shape(log)).to.equal("batch2,batch2")
    expect(log.prompts[1]).to.match("statement is TRUE")
    expect(log.prompts[2]).to.match("statement is FALSE")
    expect(log.prompts[4]).to.match("Explanation:\nwhales live in water")
    expect(ctx.result.answer).to.equal("TRUE")
    expect(ctx.result.judged).to.be(false)
    expect(ctx.result.sound).to.equal({ true_side = true, false_side = false })
  end)

  it("calls the judge when both sides hold up", function()
    local log = mock({ "t", "f", "SOUND: yes", "SOUND: YES", "close call\nVERDICT: FALSE" })
    local ctx = mai.run({ task = "s" })
    expect(shape(log)).to.equal("batch2,batch2,llm")
    expect(log.prompts[5]).to.match("Case for TRUE:\nt\n\nCase for FALSE:\nf")
    expect(ctx.result.answer).to.equal("FALSE")
    expect(ctx.result.judged).to.be(true)
  end)

  it("reports UNKNOWN when the judge is unclear", function()
    mock({ "t", "f", "??", "??", "no idea" })
    expect(mai.run({ task = "s" }).result.answer).to.equal("UNKNOWN")
  end)
end)
