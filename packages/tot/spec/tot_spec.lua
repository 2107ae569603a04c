local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["tot"] = nil
local tot = require("tot")

describe("tot", function()
  it("has meta and spec", function()
    expect(tot.meta.name).to.equal("tot")
    expect(tot.meta.version).to.equal("0.1.0")
    expect(tot.meta.paper).to.match("Tree of Thoughts")
    expect(tot.meta.paper).to.match("2305%.10601")
    expect(tot.spec.entries.run.input.beam_width).to.equal("integer?")
    expect(tot.spec.entries.run.result.explored_paths).to.equal("{rank, path, score}[]")
  end)

  it("reads proposals as list items, or the whole reply", function()
    expect(tot.thoughts_of("1. a\n2. b\n3. c", 2)).to.equal({ "a", "b" })
    expect(tot.thoughts_of("  just one idea ", 3)).to.equal({ "just one idea" })
    expect(tot.thoughts_of("   ", 3)).to.equal({})
  end)

  it("searches three levels of breadth 3 with a beam of 2 by default", function()
    local answers = {}
    local function add(...) for _, a in ipairs({ ... }) do answers[#answers + 1] = a end end
    add("1. a\n2. b\n3. c")                                        -- level 1: root proposes
    add("SCORE: 4", "SCORE: 9", "SCORE: 6")                        -- beams: b (9), c (6)
    add("1. b1\n2. b2\n3. b3", "1. c1\n2. c2\n3. c3")              -- level 2: one batch of two
    add("SCORE: 5", "SCORE: 7", "SCORE: 2", "SCORE: 8", "SCORE: 7", "SCORE: 1") -- beams: c1 (8), b2 (7)
    add("1. c1x\n2. c1y\n3. c1z", "1. b2x\n2. b2y\n3. b2z")         -- level 3
    add("SCORE: 3", "SCORE: 10", "SCORE: 3", "SCORE: 10", "SCORE: 2", "SCORE: 2") -- tie: c1y first
    add("Therefore 24.\nANSWER: 24")
    local log = mock(answers)
    local ctx = tot.run({ task = "Make 24 from 4 4 6 8" })
    expect(shape(log)).to.equal("batch1,batch3,batch2,batch6,batch2,batch6,llm")
    expect(log.prompts[1]).to.match("Propose 3 different possible next steps")
    expect(log.prompts[1]).to.match("%(no steps yet%)")
    expect(log.prompts[2]).to.match("Partial solution:\nStep 1: a\n")
    expect(log.prompts[5]).to.match("Reasoning so far:\nStep 1: b\n")
    expect(log.prompts[6]).to.match("Reasoning so far:\nStep 1: c\n")
    expect(log.prompts[10]).to.match("Step 1: c\nStep 2: c1\n")
    expect(log.prompts[13]).to.match("Step 1: c\nStep 2: c1\n")
    expect(log.prompts[14]).to.match("Step 1: b\nStep 2: b2\n")
    expect(log.prompts[21]).to.match("rated 10/10")
    expect(log.prompts[21]).to.match("Step 1: c\nStep 2: c1\nStep 3: c1y")
    local r = ctx.result
    expect(r.answer).to.equal("24")
    expect(r.conclusion).to.equal("Therefore 24.\nANSWER: 24")
    expect(r.best_path).to.equal({ "c", "c1", "c1y" })
    expect(r.best_score).to.equal(10)
    expect(r.explored_paths).to.equal({
      { rank = 1, path = { "c", "c1", "c1y" }, score = 10 },
      { rank = 2, path = { "b", "b2", "b2x" }, score = 10 },
    })
    expect(r.tree_stats).to.equal({ depth = 3, breadth = 3, beam_width = 2 })
    expect(r.explored).to.equal(15)
    expect(r.depth_reached).to.equal(3)
    expect(r.total_llm_calls).to.equal(21)
    expect(r.budget_limited).to.equal(false)
    expect(log.stats["tot.explored"]).to.equal(15)
  end)

  it("honours breadth, depth and beam_width, and rates unreadable scores lowest", function()
    local log = mock({ "1. x\n2. y", "no idea", "SCORE: 2", "ANSWER: y" })
    local ctx = tot.run({ task = "t", breadth = 2, depth = 1, beam_width = 1 })
    expect(shape(log)).to.equal("batch1,batch2,llm")
    expect(log.prompts[1]).to.match("Propose 2 different")
    expect(ctx.result.best_path).to.equal({ "y" })
    expect(ctx.result.best_score).to.equal(2)
    expect(#ctx.result.explored_paths).to.equal(1)
  end)

  it("concludes from the root with depth 0", function()
    local log = mock({ "ANSWER: 5" })
    local ctx = tot.run({ task = "t", depth = 0 })
    expect(shape(log)).to.equal("llm")
    expect(ctx.result.best_path).to.equal({})
    expect(ctx.result.best_score).to.equal(0)
    expect(ctx.result.answer).to.equal("5")
  end)

  it("stops searching when the next level and the conclusion do not fit in the budget", function()
    -- level 1 costs 1 + 3, level 2 would cost 2 + 6; the budget of 9 leaves 5 after level 1
    local log = mock({ "1. a\n2. b\n3. c", "SCORE: 1", "SCORE: 2", "SCORE: 3", "ANSWER: c" },
      { max_llm_calls = 9 })
    local ctx = tot.run({ task = "t" })
    expect(shape(log)).to.equal("batch1,batch3,llm")
    expect(ctx.result.best_path).to.equal({ "c" })
    expect(ctx.result.depth_reached).to.equal(1)
    expect(ctx.result.budget_limited).to.equal(true)
    expect(ctx.result.total_llm_calls).to.equal(5)
  end)

  it("rejects bad input with clear messages", function()
    mock({})
    expect(function() tot.run({}) end).to.fail.with("tot: ctx.task is required")
    expect(function() tot.run({ task = "t", breadth = 0 }) end).to.fail.with("tot: ctx.breadth must be at least 1")
    expect(function() tot.run({ task = "t", depth = -2 }) end).to.fail.with("tot: ctx.depth must be at least 0")
    expect(function() tot.run({ task = "t", beam_width = 1.5 }) end)
      .to.fail.with("tot: ctx.beam_width must be an integer")
  end)
end)
