local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["sot"] = nil
local sot = require("sot")

describe("sot", function()
  it("has meta", function()
    expect(sot.meta.name).to.equal("sot")
    expect(sot.meta.version).to.equal("0.1.0")
  end)

  it("outlines once, expands all points in one batch and assembles them", function()
    local log = mock({ "1. Intro\n2. Body\n3. End", "Hello.", "Middle.", "Bye." })
    local ctx = sot.run({ task = "Write an essay" })
    expect(shape(log)).to.equal("llm,batch3")
    expect(log.prompts[1]).to.match("at most 6 numbered points")
    expect(log.opts[1].max_tokens).to.equal(300)
    expect(log.prompts[3]).to.match("point 2 %(\"Body\"%)")
    expect(log.opts[3].max_tokens).to.equal(400)
    expect(ctx.result.answer).to.equal("1. Intro\nHello.\n\n2. Body\nMiddle.\n\n3. End\nBye.")
    expect(ctx.result.skeleton).to.equal({ "Intro", "Body", "End" })
    expect(log.stats["sot.sections"]).to.equal(3)
  end)

  it("caps the sections and honours token knobs", function()
    local log = mock({ "- a\n- b\n- c", "A", "B" })
    local ctx = sot.run({ task = "t", max_sections = 2, section_tokens = 90, skeleton_tokens = 40 })
    expect(shape(log)).to.equal("llm,batch2")
    expect(log.opts[1].max_tokens).to.equal(40)
    expect(log.opts[2].max_tokens).to.equal(90)
    expect(#ctx.result.sections).to.equal(2)
  end)

  it("falls back to plain lines without a list", function()
    local log = mock({ "Intro\nEnd", "x", "y" })
    local ctx = sot.run({ task = "t" })
    expect(shape(log)).to.equal("llm,batch2")
    expect(ctx.result.skeleton).to.equal({ "Intro", "End" })
  end)
end)
