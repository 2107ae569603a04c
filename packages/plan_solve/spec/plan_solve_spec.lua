local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["plan_solve"] = nil
local ps = require("plan_solve")

describe("plan_solve", function()
  it("has meta", function()
    expect(ps.meta.name).to.equal("plan_solve")
  end)

  it("plans then solves with the plan", function()
    local log = mock({ "Plan:\n1. read\n2) add", "read, add\nANSWER: 10" })
    local ctx = ps.run({ task = "Add 4 and 6" })
    expect(shape(log)).to.equal("llm,llm")
    expect(log.prompts[1]).to.match("Do not solve it yet")
    expect(log.prompts[2]).to.match("Plan:\n1%. read\n2%. add")
    expect(ctx.result.plan).to.equal({ "read", "add" })
    expect(ctx.result.answer).to.equal("10")
    expect(log.stats["plan_solve.plan_steps"]).to.equal(2)
  end)

  it("passes an unstructured plan through verbatim", function()
    local log = mock({ "just add them", "ANSWER: 10" })
    ps.run({ task = "t", solve_tokens = 42 })
    expect(log.prompts[2]).to.match("Plan:\njust add them")
    expect(log.calls[2].opts.max_tokens).to.equal(42)
  end)
end)
