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
package.loaded["step_back"] = nil
local sb = require("step_back")

describe("step_back", function()
  it("has meta", function()
    expect(sb.meta.name).to.equal("step_back")
  end)

  it("abstracts first, then applies the principles", function()
    local log = mock({ "  Ideal gas law: PV = nRT  ", "so it doubles\nANSWER: doubles" })
    local ctx = sb.run({ task = "What happens to P if T doubles?", domain_hint = "physics" })
    expect(shape(log)).to.equal("llm,llm")
    expect(log.prompts[1]).to.match("methods in physics govern")
    expect(log.prompts[2]).to.match("Relevant principles:\nIdeal gas law: PV = nRT\n")
    expect(ctx.result.principles).to.equal("Ideal gas law: PV = nRT")
    expect(ctx.result.answer).to.equal("doubles")
  end)

  it("works without a domain hint", function()
    local log = mock({ "p", "ANSWER: a" })
    sb.run({ task = "q" })
    expect(log.prompts[1]).to_not.match(" in nil")
    expect(log.prompts[1]).to.match("methods govern")
  end)
end)
