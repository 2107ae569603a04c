local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

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
