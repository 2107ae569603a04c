local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

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
