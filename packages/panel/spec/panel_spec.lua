local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["panel"] = nil
local panel = require("panel")

describe("panel", function()
  it("has meta and three default roles", function()
    expect(panel.meta.name).to.equal("panel")
    expect(#panel.default_roles).to.equal(3)
  end)

  it("asks every persona in one batch, then synthesises", function()
    local log = mock({ "view A", "view B", "view C", "merged\nANSWER: use both" })
    local ctx = panel.run({ task = "Tabs or spaces?" })
    expect(shape(log)).to.equal("batch3,llm")
    expect(log.calls[1].items[2].system).to.match("skeptic")
    expect(log.prompts[1]).to.match("Tabs or spaces%?")
    expect(log.prompts[4]).to.match("%[2%] a skeptic")
    expect(log.prompts[4]).to.match("view C")
    expect(ctx.result.answer).to.equal("use both")
    expect(ctx.result.views[3]).to.equal({ role = panel.default_roles[3], view = "view C" })
    expect(log.stats["panel.size"]).to.equal(3)
  end)

  it("uses custom roles", function()
    local log = mock({ "x", "y", "final" })
    local ctx = panel.run({ task = "t", roles = { "a poet", "a lawyer" } })
    expect(shape(log)).to.equal("batch2,llm")
    expect(log.calls[1].items[1].system).to.equal("You are a poet.")
    expect(ctx.result.answer).to.equal("final")
  end)

  it("rejects an empty panel", function()
    mock({})
    expect(function() panel.run({ task = "t", roles = {} }) end).to.fail.with("must not be empty")
  end)
end)
