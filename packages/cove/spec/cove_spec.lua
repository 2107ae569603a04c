local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["cove"] = nil
local cove = require("cove")

describe("cove", function()
  it("has meta", function()
    expect(cove.meta.name).to.equal("cove")
    expect(cove.meta.version).to.equal("0.1.0")
    expect(cove.meta.paper).to.be.a("string")
  end)

  it("drafts, plans, checks in one batch and revises", function()
    local log = mock({
      "Paris is the capital.\nANSWER: Lyon",
      "1. What is the capital of France?\n2. Where is Lyon?\n3. Is Paris in France?",
      "Paris", "South-east France", "Yes",
      "The checks show Paris.\nANSWER: Paris",
    })
    local ctx = cove.run({ task = "Capital of France?" })
    expect(shape(log)).to.equal("llm,llm,batch3,llm")
    expect(log.prompts[1]).to.match("Capital of France%?")
    expect(log.prompts[2]).to.match("List 3 short")
    expect(log.prompts[3]).to.match("What is the capital of France%?")
    expect(log.prompts[3]:find("Lyon")).to.equal(nil)
    expect(log.prompts[6]).to.match("Q: Where is Lyon%?")
    expect(log.prompts[6]).to.match("A: South%-east France")
    expect(ctx.result.answer).to.equal("Paris")
    expect(ctx.result.draft_answer).to.equal("Lyon")
    expect(#ctx.result.checks).to.equal(3)
    expect(ctx.result.revised).to.equal(true)
    expect(log.stats["cove.questions"]).to.equal(3)
  end)

  it("honours n_questions and keeps the draft without questions", function()
    local log = mock({ "ANSWER: 4", "1. a?\n2. b?\n3. c?", "x", "y", "ANSWER: 5" })
    local ctx = cove.run({ task = "t", n_questions = 2, gen_tokens = 100 })
    expect(shape(log)).to.equal("llm,llm,batch2,llm")
    expect(log.opts[1].max_tokens).to.equal(100)
    expect(ctx.result.answer).to.equal("5")
    log = mock({ "ANSWER: 4", "no questions" })
    ctx = cove.run({ task = "t" })
    expect(shape(log)).to.equal("llm,llm")
    expect(ctx.result.answer).to.equal("4")
    expect(ctx.result.revised).to.equal(false)
  end)

  it("requires a task", function()
    mock({})
    expect(function() cove.run({}) end).to.fail.with("ctx.task is required")
  end)
end)
