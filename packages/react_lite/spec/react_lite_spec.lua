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
package.loaded["react_lite"] = nil
local rl = require("react_lite")

describe("react_lite", function()
  it("has meta", function()
    expect(rl.meta.name).to.equal("react_lite")
  end)

  it("looks things up, then finishes", function()
    local log = mock({
      "Thought: need the year\nAction: LOOKUP[When did Apollo 11 land?]",
      "In July 1969.",
      "Thought: got it\nAction: FINISH[1969]",
    })
    local ctx = rl.run({ task = "Year of the first Moon landing?" })
    expect(shape(log)).to.equal("llm,llm,llm")
    expect(log.prompts[2]).to.match("sentences:\nWhen did Apollo 11 land%?")
    expect(log.prompts[3]).to.match("Observation: In July 1969%.")
    expect(ctx.result.answer).to.equal("1969")
    expect(ctx.result.finished).to.be(true)
    expect(log.stats["react_lite.steps"]).to.equal(2)
  end)

  it("forces an answer after max_steps", function()
    local log = mock({ "Thought: hmm", "Thought: still hmm", "ANSWER: guess" })
    local ctx = rl.run({ task = "t", max_steps = 2 })
    expect(#log.prompts).to.equal(3)
    expect(log.prompts[2]).to.match("No valid action")
    expect(ctx.result.answer).to.equal("guess")
    expect(ctx.result.finished).to.be(false)
  end)

  it("parses actions", function()
    expect({ rl.parse_action("Action: FINISH[ 42 ]") }).to.equal({ "FINISH", "42" })
    expect(rl.parse_action("nothing")).to_not.exist()
  end)
end)
