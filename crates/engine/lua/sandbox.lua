-- The session sandbox: shims over the stock library and the host-yield protocol.
--
-- This chunk runs once per VM, before any user code, with the stock globals still in
-- place. It captures the raw functions it needs in a private array (`K` below), replaces
-- or removes globals, and returns the private table `P` with the entry function the engine
-- turns into the session's root coroutine.
--
-- Only what every session needs is built here. The shims most sessions never call
-- (coroutine resume/wrap/yield/close, `xpcall`, `load`, output, files, dates, clock,
-- environment, argument-less reseeding, `require`, trusted mode) live in
-- `sandbox_more.lua`, loaded on their first use through small forwarding functions, so a
-- paused session does not carry them (engine.md §5.7).
--
-- Yield kinds (engine.md §4.4, §13 note 2): a host request yields `(HOST, token)`, a
-- user `coroutine.yield` yields `(USER, ...)`, a hook preemption yields nothing at all.
-- `P` is the private table shared with the engine and the other chunks; `HOST` and
-- `USER` are the yield tags.
local P, HOST, USER = ...

local host = P.host

-- What the shims call once user code runs, captured before it can run (the `debug`
-- library is never opened, so nothing else reaches these; `loadfile` and
-- `package.searchpath` are kept for trusted mode), in one array: every shim captures `K`
-- alone, not an upvalue per function. `K` must never reach the script: index user values
-- with it only through `rawget`. The first 23 entries are in the order
-- `sandbox_more.lua` unpacks them (append new ones at the end); the `false` places are
-- filled below.
local K = {
  P, loadfile, package.searchpath, coroutine.yield, coroutine.running, pcall, error, load,
  setmetatable, tostring, type, select, rawget, math.tointeger, host.aborting,
  xpcall, getmetatable, false, false, false,
  false, -- [21]: the root coroutine of the session, set by `entry`
  HOST, USER,
  coroutine.isyieldable, host.blocked,
  false, -- [26]: the rest of the sandbox once loaded (`more`)
  false, -- [27]: the root coroutine's error handler
}
-- Places in `K`, each in a `local` of its own: Lua makes only the last name of a
-- `local` statement a compile-time constant (the others would become upvalues).
local YIELD <const> = 4
local RUNNING <const> = 5
local PCALL <const> = 6
local ERROR <const> = 7
local SETMETATABLE <const> = 9
local TOSTRING <const> = 10
local TYPE <const> = 11
local SELECT <const> = 12
local RAWGET <const> = 13
local ABORTING <const> = 15
local XPCALL <const> = 16
local GETMETATABLE <const> = 17
local STDOUT <const> = 18
local SHIM_FILES <const> = 19
local RETHROW <const> = 20
local ROOT <const> = 21
local HOST_TAG <const> = 22
local ISYIELDABLE <const> = 24
local BLOCKED <const> = 25
local MORE <const> = 26
local ON_ERROR <const> = 27

-- The chain of user coroutines resumed through the shims (engine.md §4.3): a host
-- request may pause only when no frame in it was resumed from a context that cannot
-- yield. Such frames are counted in the VM host (`K[BLOCKED]`, one C call per update: a
-- preemption can fall between two Lua instructions, never inside a C function;
-- `sandbox_more.lua` updates the count).
local function can_host_yield()
  return K[ISYIELDABLE]() and K[BLOCKED]() == 0
end
P.can_host_yield = can_host_yield

-- Re-raises an error caught while the VM is aborting, so nothing can swallow an abort.
K[RETHROW] = function(ok, ...)
  if not ok and K[ABORTING]() then K[ERROR]((...), 0) end
  return ok, ...
end

pcall = function(f, ...)
  return K[RETHROW](K[PCALL](f, ...))
end

local more -- the loader of the rest of the sandbox, below

-- Finalizers run with hooks off (also when a cancelled VM is dropped), so the sandbox
-- refuses metatables that carry `__gc`. A call that fails (a bad argument, a `__gc` field,
-- a protected metatable) is handed over in tail position to the rest of the sandbox, which
-- raises the error it is.
setmetatable = function(...)
  local t, mt = ...
  local type = K[TYPE]
  if type(t) == "table" and (type(mt) == "table" and K[RAWGET](mt, "__gc") == nil
      or mt == nil and K[SELECT]("#", ...) >= 2) then
    local ok, r = K[PCALL](K[SETMETATABLE], t, mt)
    if ok then return r end
  end
  return more().setmetatable_refused(...)
end

dofile, loadfile = nil, nil
string.dump = nil
debug = nil

-- A forwarder to `more()[name]`, called in tail position so error levels and tracebacks
-- see the script's frames, not the forwarder's. All forwarders share one prototype; the
-- names are those of the field the forwarder fills where one is free (a string every VM
-- already holds).
local function forward(name)
  return function(...) return more()[name](...) end
end

load = forward("load")
xpcall = forward("xpcall")
print = forward("print")
warn = forward("warn")

-- The standard files: the handles exist from the start, their methods come with the rest.
local shim_files = {}
local file_mt = {
  __index = forward("__index"),
  __name = "FILE*",
  __tostring = forward("__tostring"),
}
local stdout = K[SETMETATABLE]({}, file_mt)
local stderr = K[SETMETATABLE]({}, file_mt)
shim_files[stdout], shim_files[stderr] = "stdout", "stderr"
K[STDOUT], K[SHIM_FILES] = stdout, shim_files

-- The stock `io` library is not opened: its file functions are not available here, and
-- the sandbox's `io` holds only these.
io = {
  stdout = stdout, stderr = stderr, write = forward("write"), type = forward("type"),
  open = forward("open"), flush = forward("flush"),
}
package.loaded.io = io

os.time = forward("time")
os.date = forward("date")
os.clock = forward("clock")
os.getenv = forward("getenv")
os.execute, os.remove, os.rename, os.exit, os.tmpname, os.setlocale = nil, nil, nil, nil, nil, nil

-- A removed function leaves its node behind (a table's hash part is resized only when it
-- next grows), so the two libraries that lost functions are rebuilt with what is left:
-- `string` takes 16 nodes instead of 32, `os` 8 instead of 16. The string metatable's
-- `__index` follows.
do
  local loaded = package.loaded
  for _, name in next, { "string", "os" } do
    local t = {}
    for k, v in next, loaded[name] do t[k] = v end
    _G[name], loaded[name] = t, t
  end
  K[GETMETATABLE]("").__index = string
end

-- Randomness: seeded per session (the engine seeds through `P.randomseed`, the stock
-- function); an argument-less reseed takes the next value of the session's derived seed
-- stream (`sandbox_more.lua`).
P.randomseed = math.randomseed
math.randomseed = forward("randomseed")

-- Module loading: only through the engine's resolver (lua-api.md §1.8).
package.path, package.cpath = "", ""
package.searchpath, package.loadlib = nil, nil
package.loaded.debug = nil

-- The rest of the sandbox (`sandbox_more.lua`), loaded on first use; `K` is what it shares
-- with this chunk.
function more()
  local m = K[MORE]
  if not m then
    m = K[1].host.sandbox_more()(K)
    K[MORE] = m
  end
  return m
end

coroutine.resume = forward("resume")
coroutine.wrap = forward("wrap")
-- Only a coroutine resumed through the shims above can yield to its user, so this one
-- lives with them.
coroutine.yield = forward("yield")
coroutine.close = forward("close")

package.searchers = {
  forward("preload_searcher"),
  forward("engine_searcher"),
}
require = forward("require")

-- The error handler of the root coroutine: message and traceback, kept apart (the
-- table is marked by `K` as a key: no script can make one).
K[ON_ERROR] = function(e)
  if K[ABORTING]() then return e end
  local type, tostring = K[TYPE], K[TOSTRING]
  local te, message = type(e), nil
  if te == "string" then
    message = e
  elseif te == "number" then
    message = tostring(e)
  else
    local mt = K[GETMETATABLE](e)
    if type(mt) == "table" and K[RAWGET](mt, "__tostring") ~= nil then
      local ok, s = K[PCALL](tostring, e)
      if ok and type(s) == "string" then message = s end
    end
    message = message or "error object: " .. te
  end
  return { [K] = true, message = message, traceback = K[1].host.traceback() }
end

--- The body of the session's root coroutine: `true` and the script's first result (the
--- session's result), or `false`, the message and the traceback.
function P.entry(main, ...)
  K[ROOT] = K[RUNNING]()
  local ok, info = K[XPCALL](main, K[ON_ERROR], ...)
  if ok then return true, info end
  -- `rawget`: the error value may be the script's own table (the handler passes it on
  -- while aborting), whose `__index` must never see `K`.
  if K[TYPE](info) == "table" and K[RAWGET](info, K) then
    return false, info.message, info.traceback
  end
  -- The handler did not run: a memory error, or an error inside the handler.
  return false, info, nil, true
end

--- Issues a host request prepared by a Layer-0 validator and returns the reply.
function P.host_yield(token)
  return K[YIELD](K[HOST_TAG], token)
end

--- The rest of the sandbox, for the engine: `package_main` (the main function of a
--- package run) and `enable_trusted` (trusted mode) are called from there.
P.more = more

return P
