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
package.loaded["debate"] = nil
local debate = require("debate")

describe("debate", function()
  it("has meta", function()
    expect(debate.meta.name).to.equal("debate")
  end)

  it("runs one batch of two turns per round, then the judge", function()
    local log = mock({ "a1", "b1", "a2", "b2", "reasons\nWINNER: B\nANSWER: no" })
    local ctx = debate.run({ task = "Is P = NP?" })
    expect(shape(log)).to.equal("batch2,batch2,llm")
    expect(log.prompts[1]).to.match("debater A")
    expect(log.prompts[2]).to.match("debater B")
    expect(log.prompts[1]).to.match("%(no turns yet%)")
    expect(log.prompts[3]).to.match("A: a1\nB: b1")
    expect(log.prompts[5]).to.match("Round 2\nA: a2\nB: b2")
    expect(ctx.result.winner).to.equal("B")
    expect(ctx.result.answer).to.equal("no")
    expect(#ctx.result.transcript).to.equal(2)
  end)

  it("honours rounds and reads ties", function()
    local log = mock({ "a", "b", "hmm" })
    local ctx = debate.run({ task = "t", rounds = 1, side_a = "defend X", side_b = "defend Y" })
    expect(shape(log)).to.equal("batch2,llm")
    expect(log.prompts[1]).to.match("defend X")
    expect(ctx.result.winner).to.equal("TIE")
  end)

  it("parses winners", function()
    expect(debate.parse_winner("WINNER: a (clearly)")).to.equal("A")
    expect(debate.parse_winner("winner: tie")).to.equal("TIE")
    expect(debate.parse_winner("nothing")).to.equal("TIE")
  end)
end)
