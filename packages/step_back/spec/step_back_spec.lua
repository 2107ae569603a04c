local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

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
