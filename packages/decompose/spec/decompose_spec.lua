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
package.loaded["decompose"] = nil
local dec = require("decompose")

describe("decompose", function()
  it("has meta", function()
    expect(dec.meta.name).to.equal("decompose")
  end)

  it("splits, solves the parts in one batch and merges", function()
    local log = mock({ "1. intro\n2. body\n3. outro", "I", "B", "O", "IBO\nANSWER: essay" })
    local ctx = dec.run({ task = "Write an essay" })
    expect(shape(log)).to.equal("llm,batch3,llm")
    expect(log.prompts[3]).to.match("Your part:\nbody")
    expect(log.prompts[5]).to.match("Part 3 %(outro%):\nO")
    expect(ctx.result.answer).to.equal("essay")
    expect(ctx.result.subtasks[1]).to.equal({ subtask = "intro", result = "I" })
  end)

  it("falls back to the whole task when nothing is listed", function()
    local log = mock({ "cannot split", "whole", "ANSWER: w" })
    local ctx = dec.run({ task = "tiny" })
    expect(shape(log)).to.equal("llm,batch1,llm")
    expect(log.prompts[2]).to.match("Your part:\ntiny")
    expect(ctx.result.answer).to.equal("w")
  end)

  it("caps the subtasks", function()
    local log = mock({ "- a\n- b\n- c", "x", "y", "ANSWER: z" })
    dec.run({ task = "t", max_subtasks = 2 })
    expect(shape(log)).to.equal("llm,batch2,llm")
  end)
end)
