local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["distill"] = nil
local distill = require("distill")

describe("distill", function()
  it("has meta", function()
    expect(distill.meta.name).to.equal("distill")
    expect(distill.meta.version).to.equal("0.1.0")
    expect(distill.run).to.be.a("function")
  end)

  it("batches n traces for a task and distils them in one call", function()
    local log = mock({ "6*7=42\nANSWER: 42", "7*6=42\nANSWER: 42", "guess\nANSWER: 41",
                       "Both products are 42.\nANSWER: 42" })
    local ctx = distill.run({ task = "What is 6*7?", n = 3 })
    expect(shape(log)).to.equal("batch3,llm")
    expect(log.opts[1].temperature).to.equal(0.8)
    expect(log.opts[1].max_tokens).to.equal(600)
    expect(log.prompts[4]).to.match("3 independent reasoning traces")
    expect(log.prompts[4]).to.match("3%. guess\nANSWER: 41")
    expect(log.opts[4].max_tokens).to.equal(500)
    expect(ctx.result.answer).to.equal("42")
    expect(ctx.result.mode).to.equal("traces")
    expect(ctx.result.kept).to.equal(3)
  end)

  it("chunks a text, drops irrelevant chunks and reduces the rest", function()
    expect(#distill.chunks(string.rep("a", 25), 10, 2)).to.equal(3)
    local log = mock({ "- cats sleep a lot", "NONE", "- cats purr", "Cats sleep and purr.\nANSWER: cats sleep and purr" })
    local ctx = distill.run({ text = string.rep("x", 25), goal = "facts about cats", chunk_size = 10, chunk_overlap = 2 })
    expect(shape(log)).to.equal("batch3,llm")
    expect(log.prompts[1]).to.match("Goal: facts about cats")
    expect(log.prompts[4]).to.match("2 notes extracted")
    expect(ctx.result.answer).to.equal("cats sleep and purr")
    expect(ctx.result.kept).to.equal(2)
    expect(log.stats["distill.kept"]).to.equal(2)
  end)

  it("requires a task or text", function()
    mock({})
    expect(function() distill.run({}) end).to.fail.with("is required")
  end)
end)
